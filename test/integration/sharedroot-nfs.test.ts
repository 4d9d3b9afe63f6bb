/**
 * The real nfs-ganesha under Corral's supervisor (master/sharedroot/nfs-server.ts), inside a network
 * namespace of the test's own: a rendered config starts and serves TCP 2049; a config ganesha rejects is
 * reported as NFS_CONFIG_INVALID while the previous one is started again; a killed daemon is restarted.
 * ganesha has no check mode, so "validated" here means: started with it and it logged NFS SERVER
 * INITIALIZED with no CONFIG error. (The NFS client side is exercised by the e2e lab test, in QEMU VMs.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NfsServer } from '../../master/sharedroot/nfs-server.js';
import { exportId, renderGaneshaConfig } from '../../master/sharedroot/ganesha-config.js';
import { silentLogger } from '../../master/util/logger.js';
import { CorralError } from '../../master/util/errors.js';
import { TestNet, hasCommand, waitFor } from '../helpers/netns.js';

function listening(ns: string, address: string): boolean {
  try {
    execFileSync('ip', ['netns', 'exec', ns, 'bash', '-c', `exec 3<>/dev/tcp/${address}/2049`], {
      stdio: 'ignore',
      timeout: 5000,
    });
    return true;
  } catch {
    return false;
  }
}

test(
  'nfs-ganesha: a rendered config runs; a rejected one keeps the previous; a killed daemon restarts',
  { timeout: 120_000 },
  async () => {
    assert.ok(
      hasCommand('ganesha.nfsd'),
      'nfs-ganesha is not installed: run scripts/setup.sh (nfs-ganesha, nfs-ganesha-vfs)',
    );
    const dir = mkdtempSync(join(tmpdir(), 'corral-nfs-'));
    const net = new TestNet('nfs');
    let server: NfsServer | undefined;
    try {
      const host = net.addHost('srv', '10.76.0.1/24');
      // The supervisor spawns `bin`: a wrapper that execs ganesha inside the test's namespace (same PID).
      const wrapper = join(dir, 'ganesha-in-ns');
      writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${host.ns} ganesha.nfsd "$@"\n`);
      chmodSync(wrapper, 0o755);
      const tree = join(dir, 'tree');
      mkdirSync(join(tree, 'etc'), { recursive: true });
      mkdirSync(join(dir, 'recovery'));
      server = new NfsServer({
        dir: join(dir, 'nfs'),
        bin: wrapper,
        logger: silentLogger(),
        startTimeoutMs: 20_000,
      });

      const good = renderGaneshaConfig({
        port: 2049,
        recoveryDir: join(dir, 'recovery'),
        exports: [
          {
            id: exportId('/roots/t/1'),
            path: tree,
            pseudo: '/roots/t/1',
            access: 'RO',
            clients: ['*'],
            comment: 'test',
          },
        ],
      });
      let t0 = Date.now();
      await server.apply(good);
      const startMs = Date.now() - t0;
      assert.equal(server.status().running, true);
      assert.ok(listening(host.ns, host.address), 'ganesha does not accept TCP on 2049');
      assert.equal(await server.currentConfig(), good);
      const firstPid = server.status().pid;

      // ganesha's own parser rejects an unknown parameter: the error names it, the good config runs again.
      const bad = good.replace('Squash = None;', 'Squash = None;\n\tNo_Such_Param = 1;');
      t0 = Date.now();
      await assert.rejects(server.apply(bad), (e: unknown) => {
        assert.ok(e instanceof CorralError && e.code === 'NFS_CONFIG_INVALID', String(e));
        assert.match(e.message, /No_Such_Param|Unknown parameter|errors/i);
        return true;
      });
      const rejectMs = Date.now() - t0;
      assert.equal(server.status().running, true, 'the previous config is running again');
      assert.equal(await server.currentConfig(), good);
      assert.ok(listening(host.ns, host.address));

      // Supervision: a daemon that dies is started again with the current config.
      const pid = server.status().pid!;
      assert.notEqual(pid, firstPid);
      process.kill(pid, 'SIGKILL');
      await waitFor(
        'ganesha to be restarted',
        () => (server!.status().running && server!.status().pid !== pid) || undefined,
        30_000,
        200,
      );
      await waitFor(
        'the restarted ganesha to listen',
        () => listening(host.ns, host.address) || undefined,
        20_000,
        300,
      );
      assert.equal(server.status().restarts, 1);
      process.stdout.write(
        `# ganesha start ${startMs} ms, rejected config + restart of the previous ${rejectMs} ms\n`,
      );
      assert.match(readFileSync(join(dir, 'nfs', 'ganesha.log'), 'utf8'), /NFS SERVER INITIALIZED/);
    } finally {
      await server?.close();
      await net.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
