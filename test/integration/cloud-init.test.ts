/**
 * cloud-init (issue 16) against a real `corral master` on loopback (DHCP off, so a node's address is the
 * one it first enlisted from): two nodes enlist with curl from their own loopback addresses (127.0.0.2,
 * 127.0.0.3). Layers are set through the API; each node reads its NoCloud files with curl as cloud-init
 * would, and the other node's request for them is refused and recorded. The served user-data passes
 * the real `cloud-init schema`, and the network-config renders with cloud-init's own networkd renderer.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { freePort } from '../helpers/ports.js';
import { Browser } from '../helpers/browser.js';
import { basic, startMasterProcess, type MasterProcess } from '../helpers/master-process.js';

const PASSWORD = 'cloud-init-test-password';
const MAC_A = '52:54:00:16:0a:01';
const MAC_B = '52:54:00:16:0b:01';
const IP_A = '127.0.0.2';
const IP_B = '127.0.0.3';
// A missing peer fails the run (test/helpers/peers.ts), it never skips.
const unmet = unmetNeeds({ commands: ['curl', 'cloud-init'] });

interface Reply {
  status: number;
  text: string;
}

describe('cloud-init NoCloud datasource on a real master', () => {
  before(() => failIfUnmet(unmet));
  let m: MasterProcess | undefined;
  let dir = '';
  const creds: Record<string, string> = {};

  /** curl from a given loopback source address, as a node on that address would ask. */
  function curl(from: string, path: string, headers: Record<string, string> = {}): Reply {
    const args = ['-sS', '-m', '10', '--interface', from, '-o', '-', '-w', '\n%{http_code}'];
    for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
    const out = execFileSync('curl', [...args, `${m!.url}${path}`], { encoding: 'utf8' });
    const cut = out.lastIndexOf('\n');
    return { status: Number(out.slice(cut + 1)), text: out.slice(0, cut) };
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON replies, checked field by field
  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(`${m!.url}/api/v1${path}`, {
      signal: AbortSignal.timeout(10_000),
      method,
      // A fresh connection each time: a pooled one may meet the server's keep-alive timeout mid-test.
      headers: { ...basic('admin', PASSWORD), 'content-type': 'application/json', connection: 'close' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-cloud-init-'));
    // Console on the same plain-HTTP port (loopback only): no HTTPS listener on 443 beside other tests.
    writeFileSync(join(dir, 'corral.json'), JSON.stringify({ console: { https: false } }));
    m = await startMasterProcess({
      args: [
        '--config',
        join(dir, 'corral.json'),
        '--data-dir',
        join(dir, 'data'),
        '--address',
        '127.0.0.1',
        '--http-port',
        String(await freePort()),
        '--tftp-port',
        '0',
      ],
      env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
      timeoutMs: 30_000,
    });
  });
  after(async () => {
    await m?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('enlisted nodes are recorded at their own addresses', async () => {
    for (const [mac, ip] of [
      [MAC_A, IP_A],
      [MAC_B, IP_B],
    ] as const) {
      const body = JSON.stringify({ mac, inventory: { memoryBytes: 2 ** 30, cpu: { count: 1 } } });
      const out = execFileSync(
        'curl',
        [
          '-sS',
          '-m',
          '10',
          '--interface',
          ip,
          '-H',
          'content-type: application/json',
          '--data-binary',
          body,
          `${m!.url}/api/v1/enlist`,
        ],
        { encoding: 'utf8' },
      );
      const reply = JSON.parse(out) as { credential?: string };
      assert.match(reply.credential ?? '', /^[0-9a-f]{64}$/, out);
      creds[mac] = reply.credential!;
    }
    const a = await api('GET', `/nodes/${MAC_A}`);
    assert.equal(a.json.node?.ip ?? a.json.ip, IP_A);
    assert.equal((await api('PATCH', `/nodes/${MAC_A}`, { role: 'web' })).status, 200);
  });

  it('layers: an invalid one is refused with its code; valid ones are stored', async () => {
    const bad = await api('PUT', '/cloud-init/layers/role/web', { content: 'runcmd: [unclosed\n' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'CLOUDINIT_LAYER_INVALID');
    assert.match(bad.json.error.message, /not YAML \(line 2\)/);
    const unknownVar = await api('PUT', '/cloud-init/layers/global', {
      content: 'runcmd: ["echo {{hostnme}}"]\n',
    });
    assert.equal(unknownVar.json.error.code, 'CLOUDINIT_LAYER_INVALID');
    const badScope = await api('PUT', '/cloud-init/layers/rack/a', { content: 'a: 1\n' });
    assert.equal(badScope.json.error.code, 'CLOUDINIT_LAYER_INVALID');

    const set = async (path: string, content: string): Promise<void> => {
      const r = await api('PUT', `/cloud-init/layers/${path}`, { content });
      assert.equal(r.status, 200, JSON.stringify(r.json));
    };
    await set(
      'global',
      '#cloud-config\nwrite_files:\n  - path: /etc/corral-master\n    content: "{{master}}\\n"\n',
    );
    await set('role/web', 'packages: [nginx]\nruncmd:\n  - echo {{role}} {{hostname}} {{ip}} > /run/web\n');
    await set(`node/${MAC_B}`, 'runcmd:\n  - echo secret-of-b > /root/b\n');
    const list = await api('GET', '/cloud-init/layers');
    assert.deepEqual(
      list.json.layers.map((l: { scope: string; target: string }) => `${l.scope}:${l.target}`),
      ['global:', `node:${MAC_B}`, 'role:web'],
    );
    assert.equal(
      (await api('GET', '/cloud-init/layers/role/nope')).json.error.code,
      'CLOUDINIT_LAYER_NOT_FOUND',
    );
  });

  it("a node's own request (from its address) gets its data; it passes the real cloud-init schema", () => {
    const base = `/boot/cloud-init/${MAC_A}/`;
    const meta = curl(IP_A, `${base}meta-data`);
    assert.equal(meta.status, 200, meta.text);
    assert.match(meta.text, /^instance-id: corral-525400160a01-none$/m);
    assert.match(meta.text, /^local-hostname: node-1$/m);
    const ud = curl(IP_A, `${base}user-data`);
    assert.equal(ud.status, 200);
    assert.equal(
      ud.text,
      `#cloud-config\nwrite_files:\n  - path: /etc/corral-master\n    content: |\n      ${m!.url}\n` +
        `packages:\n  - nginx\nruncmd:\n  - echo web node-1 ${IP_A} > /run/web\n`,
    );
    assert.doesNotMatch(ud.text, /secret-of-b/);
    const vd = curl(IP_A, `${base}vendor-data`);
    assert.deepEqual(vd, { status: 200, text: '' });

    const file = join(dir, 'user-data-a');
    writeFileSync(file, ud.text);
    const schema = spawnSync('cloud-init', ['schema', '--config-file', file], { encoding: 'utf8' });
    assert.equal(schema.status, 0, `${schema.stdout}${schema.stderr}`);
    assert.match(schema.stdout, /Valid cloud-config/);

    const net = curl(IP_A, `${base}network-config`);
    assert.equal(net.status, 200);
    const netFile = join(dir, 'network-config-a');
    writeFileSync(netFile, net.text);
    const outDir = join(dir, 'net-a');
    execFileSync('cloud-init', [
      'devel',
      'net-convert',
      '--network-data',
      netFile,
      '--kind',
      'yaml',
      '--output-kind',
      'networkd',
      '--distro',
      'debian',
      '--directory',
      outDir,
    ]);
    const netDir = join(outDir, 'etc/systemd/network');
    const unit = readFileSync(join(netDir, readdirSync(netDir)[0]!), 'utf8');
    assert.match(unit, new RegExp(`MACAddress=${MAC_A}`));
    assert.match(unit, /DHCP=ipv4/);
  });

  it("another node's request for A's data is refused, logged and recorded as an event; its credential does not help", async () => {
    const path = `/boot/cloud-init/${MAC_B}/user-data`;
    const stolen = curl(IP_A, path);
    assert.equal(stolen.status, 403, stolen.text);
    assert.equal(JSON.parse(stolen.text).error.code, 'CLOUDINIT_REFUSED');
    assert.doesNotMatch(stolen.text, /secret-of-b/);
    const withOwnCred = curl(IP_A, path, { authorization: `Bearer ${creds[MAC_A]}` });
    assert.equal(withOwnCred.status, 403, "A's credential is not B's");
    // B itself, from its own address, gets it; and with its credential from anywhere (the installer).
    assert.equal(curl(IP_B, path).status, 200);
    const byCred = curl(IP_A, path, { authorization: `Bearer ${creds[MAC_B]}` });
    assert.equal(byCred.status, 200);
    assert.match(byCred.text, /secret-of-b/);

    const events = await api('GET', `/events?node=${MAC_B}&kind=cloudinit.refused`);
    const ev = events.json.events as { message: string; data: { ip: string } }[];
    assert.equal(ev.length, 1, 'one event per minute per node, with the count');
    assert.equal(ev[0]!.data.ip, IP_A);
    assert.match(ev[0]!.message, /refused/);
    assert.match(m!.logs(), /cloud-init request.*for 52:54:00:16:0b:01 refused/);
  });

  it('the API preview is what the node reads', async () => {
    const p = await api('GET', `/cloud-init/nodes/node-1`);
    assert.equal(p.status, 200);
    assert.equal(p.json.userData, curl(IP_A, `/boot/cloud-init/${MAC_A}/user-data`).text);
    assert.deepEqual(p.json.layers, ['global', 'role web']);
  });

  it("the console page previews a node's user-data", async () => {
    const b = new Browser(m!.url);
    assert.equal((await b.login('admin', PASSWORD)).status, 303);
    const page = await b.get('/cloud-init?node=node-1');
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /Layers merged for <strong>node-1<\/strong>: global → role web/);
    assert.match(html, /echo web node-1 127\.0\.0\.2 &gt; \/run\/web/, 'user-data shown, HTML-escaped');
    assert.match(html, /data-layer="node 52:54:00:16:0b:01"/);
  });
});
