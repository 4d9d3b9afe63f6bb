/**
 * Issue 14, finding 7: HTTP Basic credentials over plain HTTP are refused. A real `corral master` in a
 * namespace with the default config (HTTPS on), a client host on the same test bridge, real curl:
 * - Basic over http:// → 403 AUTH_INSECURE_TRANSPORT naming the https:// URL, the password unchecked;
 * - the same credentials over https:// (verifying the master's generated certificate) → 200;
 * - the node-facing routes stay on plain HTTP: /boot (firmware) and /api/v1/health answer without TLS.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { startMasterProcess, type MasterProcess } from '../helpers/master-process.js';
import { TestNet, type Host } from '../helpers/netns.js';

const PASSWORD = 'transport-test-password';
const SUBNET = '10.77.16';
const unmet = unmetNeeds({ root: true, commands: ['curl'] });

let net: TestNet | undefined;
let dir = '';
let masterHost: Host;
let client: Host;
let master: MasterProcess | undefined;

/** curl from the client host; returns status and body. */
function curl(args: string[]): { status: number; body: string } {
  const out = net!.nsExec(client.ns, ['curl', '-sS', '-m', '10', '-w', '\n%{http_code}', ...args]).trimEnd();
  const i = out.lastIndexOf('\n');
  return { status: Number(out.slice(i + 1)), body: out.slice(0, i) };
}

before(async () => {
  failIfUnmet(unmet);
  dir = mkdtempSync('/tmp/corral-basic-');
  net = new TestNet('cba');
  masterHost = net.addHost('bm', `${SUBNET}.1/24`);
  client = net.addHost('bc', `${SUBNET}.2/24`);
  const cfg = join(dir, 'corral.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      address: masterHost.address,
      http: { port: 8080 },
      console: { httpsPort: 8443 },
      tftp: { enabled: false },
      lb: { enabled: false },
      monitor: { enabled: false },
    }),
  );
  master = await startMasterProcess({
    args: ['--config', cfg],
    netns: masterHost.ns,
    host: masterHost.address,
    env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
    timeoutMs: 30_000,
  });
});

after(async () => {
  await master?.stop('SIGKILL').catch(() => undefined);
  await net?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(
  'Basic over plain HTTP is refused with the https:// URL; over HTTPS it works; boot stays on HTTP',
  { timeout: 60_000 },
  () => {
    const http = `http://${masterHost.address}:8080`;
    const https = `https://${masterHost.address}:8443`;
    const refused = curl(['-u', `admin:${PASSWORD}`, `${http}/api/v1/nodes`]);
    assert.equal(refused.status, 403, refused.body);
    const body = JSON.parse(refused.body) as {
      error: { code: string; message: string; details: { https: string } };
    };
    assert.equal(body.error.code, 'AUTH_INSECURE_TRANSPORT');
    assert.equal(body.error.details.https, `${https}/api/v1/nodes`);
    assert.match(body.error.message, /use https:\/\//);
    // A wrong password gets the same answer: nothing is checked (or counted) over plain HTTP.
    assert.equal(curl(['-u', 'admin:wrong', `${http}/api/v1/nodes`]).status, 403);

    const ok = curl([
      '--cacert',
      join(dir, 'data', 'tls', 'cert.pem'),
      '-u',
      `admin:${PASSWORD}`,
      `${https}/api/v1/nodes`,
    ]);
    assert.equal(ok.status, 200, ok.body);
    assert.ok(Array.isArray((JSON.parse(ok.body) as { nodes: unknown[] }).nodes));

    // No Basic challenge on plain HTTP from another host (it would invite the password in clear); over
    // HTTPS the challenge is there.
    const challenge = (url: string, extra: string[] = []): string =>
      net!
        .nsExec(client.ns, ['curl', '-sS', '-m', '10', '-o', '/dev/null', '-D', '-', ...extra, url])
        .split('\r\n')
        .filter((l) => /^www-authenticate:/i.test(l))
        .join('');
    assert.equal(challenge(`${http}/api/v1/nodes`), '', 'no WWW-Authenticate on plain HTTP');
    assert.match(
      challenge(`${https}/api/v1/nodes`, ['--cacert', join(dir, 'data', 'tls', 'cert.pem')]),
      /^www-authenticate: Basic/i,
    );

    assert.equal(curl([`${http}/api/v1/health`]).status, 200, 'unauthenticated node-facing API on HTTP');
    const boot = curl([`${http}/boot/ipxe?mac=52:54:00:77:16:10`]);
    assert.equal(boot.status, 200, boot.body);
    assert.match(boot.body, /^#!ipxe/);
  },
);
