/**
 * test/unit/ means no sockets and no downloads (issue 15): a unit test runs anywhere, fast, without root.
 * This reads every test source under test/unit/ and fails on the shapes that open a socket, start a
 * master or a namespace, or fetch a kernel or packages. Such a test belongs in test/integration/.
 * A text check, so it can be fooled on purpose; it is here to catch the honest mistake.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { installPath } from '../../master/util/paths.js';

/** What gives a socket, a daemon or a download away, and why it is refused. */
const FORBIDDEN: readonly { pattern: RegExp; why: string }[] = [
  // A type-only import (`import type { IncomingMessage } from 'node:http'`) is erased: no socket.
  {
    pattern: /^(?!import type\b).*from 'node:(net|dgram|http|https|http2|tls)'/m,
    why: 'imports a socket module',
  },
  { pattern: /\.listen\(/, why: 'listens on a port' },
  { pattern: /\bawait fetch\(/, why: 'makes an HTTP request' },
  { pattern: /\bstartMaster\b/, why: 'starts a master' },
  { pattern: /\b(TestNet|LabNet)\b/, why: 'creates network namespaces' },
  {
    pattern: /helpers\/(master-process|ports|api|browser|sshd|lb-backend|tftp-serve|dhcp-serve)\.js/,
    why: 'uses a helper that runs a server',
  },
  { pattern: /\b(ensureKernel|buildNodeImage|buildOsImage)\(/, why: 'downloads Debian packages' },
];

function violations(source: string): string[] {
  return FORBIDDEN.filter((f) => f.pattern.test(source)).map((f) => f.why);
}

test('the guard recognises what it refuses, and passes a pure test', () => {
  assert.deepEqual(violations("import { createServer } from 'node:http';"), ['imports a socket module']);
  assert.deepEqual(violations("import dgram from 'node:dgram';"), ['imports a socket module']);
  assert.deepEqual(violations("import type { IncomingMessage } from 'node:http';"), []);
  assert.deepEqual(violations('server.listen(0, host)'), ['listens on a port']);
  assert.deepEqual(violations('const m = await startMaster(config, o);'), ['starts a master']);
  assert.deepEqual(violations("const net = new TestNet('x');"), ['creates network namespaces']);
  assert.deepEqual(violations('await ensureKernel({ cacheDir })'), ['downloads Debian packages']);
  assert.deepEqual(violations("import { decide } from '../../master/dhcp/policy.js';\ndecide(req);"), []);
});

test('no test under test/unit/ opens a socket, starts a daemon or downloads', () => {
  const dir = installPath('test', 'unit');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'unit-tree.test.ts');
  assert.ok(files.length > 10, `test sources found in ${dir}`);
  const bad = files.flatMap((f) =>
    violations(readFileSync(join(dir, f), 'utf8')).map(
      (why) => `${f}: ${why} (move it to test/integration/)`,
    ),
  );
  assert.deepEqual(bad, []);
});
