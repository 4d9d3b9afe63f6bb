/**
 * The shared config-install step (master/daemons/config-install.ts) with fake check commands:
 * /bin/true accepts, /bin/false refuses. Only files in a temp directory; no sockets.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  installConfig,
  installConfigSync,
  previousPath,
  runCheck,
  runCheckSync,
  stagedPath,
} from '../../master/daemons/config-install.js';
import { CorralError } from '../../master/util/errors.js';

const accept = (staged: string): Promise<void> =>
  runCheck({ bin: '/bin/true', args: [staged], invalid: 'LB_CONFIG_INVALID', what: 'true' });
const refuse = (staged: string): Promise<void> =>
  runCheck({ bin: '/bin/false', args: [staged], invalid: 'LB_CONFIG_INVALID', what: 'false' });

function withDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-install-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

describe('config install step', () => {
  it(
    'installs a checked file, keeps the previous one as .prev, and leaves no temp file',
    withDir(async (dir) => {
      const path = join(dir, 'd.conf');
      assert.equal(await installConfig({ path, text: 'one\n', mode: 0o640 }, accept), true);
      assert.equal(readFileSync(path, 'utf8'), 'one\n');
      assert.ok(!existsSync(previousPath(path)), 'nothing was installed before');
      assert.equal(statSync(path).mode & 0o777, 0o640);
      assert.equal(await installConfig({ path, text: 'two\n', mode: 0o640 }, accept), true);
      assert.equal(readFileSync(path, 'utf8'), 'two\n');
      assert.equal(readFileSync(previousPath(path), 'utf8'), 'one\n');
      assert.deepEqual(readdirSync(dir).sort(), ['d.conf', 'd.conf.prev']);
    }),
  );

  it(
    'a refused file leaves the installed file and .prev untouched and is deleted',
    withDir(async (dir) => {
      const path = join(dir, 'd.conf');
      await installConfig({ path, text: 'one\n', mode: 0o600 }, accept);
      await installConfig({ path, text: 'two\n', mode: 0o600 }, accept);
      await assert.rejects(installConfig({ path, text: 'bad\n', mode: 0o600 }, refuse), (e: unknown) => {
        assert.ok(e instanceof CorralError && e.code === 'LB_CONFIG_INVALID', String(e));
        assert.match(e.message, /^false rejected the generated config/);
        return true;
      });
      assert.equal(readFileSync(path, 'utf8'), 'two\n');
      assert.equal(readFileSync(previousPath(path), 'utf8'), 'one\n');
      assert.ok(!existsSync(stagedPath(path)));
    }),
  );

  it(
    'the check sees the staged file in the same directory, before the rename',
    withDir(async (dir) => {
      const path = join(dir, 'd.conf');
      writeFileSync(path, 'old\n');
      let seen: { staged: string; text: string; installed: string } | undefined;
      await installConfig({ path, text: 'new\n', mode: 0o644 }, (staged) => {
        seen = { staged, text: readFileSync(staged, 'utf8'), installed: readFileSync(path, 'utf8') };
        return Promise.resolve();
      });
      assert.deepEqual(seen, { staged: stagedPath(path), text: 'new\n', installed: 'old\n' });
    }),
  );

  it(
    'an identical file is left alone unless forced',
    withDir(async (dir) => {
      const path = join(dir, 'd.conf');
      await installConfig({ path, text: 'same\n', mode: 0o644 }, accept);
      let checks = 0;
      const counting = (): Promise<void> => {
        checks++;
        return Promise.resolve();
      };
      assert.equal(await installConfig({ path, text: 'same\n', mode: 0o644 }, counting), false);
      assert.equal(checks, 0);
      assert.equal(await installConfig({ path, text: 'same\n', mode: 0o644, force: true }, counting), true);
      assert.equal(checks, 1);
    }),
  );

  it(
    'the synchronous form behaves the same, and a missing check binary is its own code',
    withDir((dir) => {
      const path = join(dir, 'k.conf');
      const check = (bin: string) => (staged: string) =>
        runCheckSync({
          bin,
          args: ['-t', '-f', staged],
          invalid: 'KEEPALIVED_CONFIG_INVALID',
          missing: 'LB_HAPROXY_MISSING',
          what: 'fake -t',
        });
      installConfigSync({ path, text: 'a\n', mode: 0o600 }, check('/bin/true'));
      assert.throws(() => installConfigSync({ path, text: 'b\n', mode: 0o600 }, check('/bin/false')), {
        code: 'KEEPALIVED_CONFIG_INVALID',
      });
      assert.equal(readFileSync(path, 'utf8'), 'a\n');
      assert.throws(
        () => installConfigSync({ path, text: 'c\n', mode: 0o600 }, check(join(dir, 'no-such-bin'))),
        { code: 'LB_HAPROXY_MISSING' },
      );
      assert.equal(readFileSync(path, 'utf8'), 'a\n');
      assert.ok(!existsSync(previousPath(path)));
      assert.ok(!existsSync(stagedPath(path)));
    }),
  );
});
