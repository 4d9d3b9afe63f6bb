/**
 * Issue 14, findings 2 and 6, replayed as an attacker on the provisioning segment would: a real `corral
 * master` (DHCP server mode, HAProxy) in its own namespace on a test bridge, two nodes that take real
 * DHCP leases (busybox udhcpc) — node A runs the real agent (node-images/agent/corral-agent) and becomes
 * diskless, node B plays its installer and first-boot reporter with curl and becomes deployed behind
 * HAProxy — and an attacker namespace on the same bridge with curl.
 *
 * Each `it` is one finding's test and failed on the code before the fix (enlist re-pointed the IP, the
 * install script carried the token, `booted` could be replayed, 1 MB of unknown fields and any number of
 * MACs were accepted).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { TestNet, waitFor, type Host } from '../helpers/netns.js';
import { CLI, startMasterProcess, type MasterProcess } from '../helpers/master-process.js';

const SUBNET = '10.77.21';
const MASTER_IP = `${SUBNET}.1`;
const ATTACKER_IP = `${SUBNET}.66`;
const PORT = 8089;
const BASE = `http://${MASTER_IP}:${PORT}`;
const MAC_A = '52:54:00:14:0a:01';
const MAC_B = '52:54:00:14:0b:01';
const PASSWORD = 'enlist-trust-password';
const AGENT = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'node-images',
  'agent',
  'corral-agent',
);
const unmet = unmetNeeds({ root: true, commands: ['haproxy', 'udhcpc', 'curl', 'busybox', 'ganesha.nfsd'] });

interface Reply {
  status: number;
  text: string;
  json: Record<string, unknown>;
  headers: string;
}

describe('hostile segment: enlist, identity, deploy token and growth (issue 14)', () => {
  before(() => failIfUnmet(unmet));
  let net: TestNet | undefined;
  let master: MasterProcess | undefined;
  let dir = '';
  let dataDir = '';
  let masterHost: Host;
  let nodeA: Host;
  let nodeB: Host;
  let attacker: Host;
  const leases: Record<string, string> = {};
  const creds: Record<string, string> = {};

  /** curl from a namespace; -D - keeps the headers. Never throws on an HTTP error status. */
  function curl(
    from: Host,
    method: string,
    path: string,
    opts: { body?: string; bodyFile?: string; headers?: Record<string, string> } = {},
  ): Reply {
    const args = ['curl', '-sS', '-m', '10', '-X', method, '-D', '-', '-o', '-', '-w', '\n%{http_code}'];
    for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
    if (opts.body !== undefined || opts.bodyFile) {
      args.push('-H', 'content-type: application/json');
      args.push('--data-binary', opts.bodyFile ? `@${opts.bodyFile}` : (opts.body ?? ''));
    }
    args.push(`${from === masterHost ? `http://127.0.0.1:${PORT}` : BASE}${path}`);
    const out = net!.nsExec(from.ns, args);
    const cut = out.lastIndexOf('\n');
    const status = Number(out.slice(cut + 1));
    const rest = out.slice(0, cut);
    const split = rest.indexOf('\r\n\r\n');
    const headers = rest.slice(0, split);
    const text = rest.slice(split + 4);
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // not JSON (a boot script, a tar)
    }
    return { status, text, json, headers };
  }
  const admin = { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` };
  const api = (method: string, path: string, body?: unknown): Reply =>
    curl(masterHost, method, `/api/v1${path}`, {
      headers: admin,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const nodeRecord = (
    mac: string,
  ): { ip: string | null; state: string; inventory: Record<string, unknown> } =>
    (api('GET', `/nodes/${mac}`).json['node'] ?? {}) as {
      ip: string | null;
      state: string;
      inventory: Record<string, unknown>;
    };
  const code = (r: Reply): unknown => (r.json['error'] as { code?: string } | undefined)?.code;
  const bearer = (c: string | undefined): Record<string, string> => ({ authorization: `Bearer ${c ?? ''}` });

  /** A real DHCP exchange (busybox udhcpc) in the host's namespace; the script sets the leased address. */
  function dhcp(h: Host): string {
    const out = join(dir, `${h.ns}.lease`);
    const script = join(dir, `${h.ns}.udhcpc`);
    writeFileSync(
      script,
      `#!/bin/sh\ncase "$1" in bound|renew) ip addr add "$ip/\${mask:-24}" dev "$interface" && echo "$ip" >'${out}' ;; esac\nexit 0\n`,
    );
    chmodSync(script, 0o755);
    net!.nsExec(h.ns, [
      'timeout',
      '30',
      'udhcpc',
      '-f',
      '-q',
      '-n',
      '-t',
      '5',
      '-T',
      '2',
      '-i',
      h.ifname,
      '-s',
      script,
    ]);
    return readFileSync(out, 'utf8').trim();
  }

  /** The real agent's `credential` (one enlistment, mode as given) from the node's namespace. */
  function agentCredential(h: Host, mac: string, mode: string, work: string): string {
    net!.nsExec(h.ns, [
      'env',
      `CORRAL_SERVER=${BASE}`,
      `CORRAL_MAC=${mac}`,
      `CORRAL_MODE=${mode}`,
      `CORRAL_WORK=${work}`,
      'CORRAL_POST_TRIES=2',
      'CORRAL_MAX_BACKOFF=1',
      'busybox',
      'sh',
      AGENT,
      'credential',
    ]);
    return readFileSync(join(work, 'credential'), 'utf8').trim();
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-enlist-trust-'));
    dataDir = join(dir, 'data');
    // A shared root and an image, written by the CLI before the master starts (as an operator would).
    const root = join(dir, 'root');
    mkdirSync(join(root, 'sbin'), { recursive: true });
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'sbin', 'init'), '#!/bin/sh\n', { mode: 0o755 });
    execFileSync('node', [CLI, 'sharedroot', 'create', 'web', '--from-dir', root, '--data-dir', dataDir]);
    const img = join(dir, 'img');
    mkdirSync(join(img, 'etc'), { recursive: true });
    writeFileSync(join(img, 'etc', 'os-release'), 'ID=tiny\n');
    execFileSync('tar', ['-czf', join(dir, 'tiny.tar.gz'), '-C', img, '.']);
    execFileSync('node', [
      CLI,
      'image',
      'import',
      join(dir, 'tiny.tar.gz'),
      '--name',
      'tiny',
      '--data-dir',
      dataDir,
    ]);
    // Stand-in node environment files: enough for the master to render install scripts.
    mkdirSync(join(dataDir, 'node-image'), { recursive: true });
    writeFileSync(join(dataDir, 'node-image', 'vmlinuz'), 'k');
    writeFileSync(join(dataDir, 'node-image', 'initrd.img'), 'i');
    const configFile = join(dir, 'corral.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        console: { https: false },
        monitor: { enabled: false, nodeSshSeconds: 0 },
        // The real nfs-ganesha, supervised by the master in its namespace: node A's read-write export.
        sharedRoot: { enabled: true },
        tftp: { enabled: false },
        lb: { pollMs: 300 },
        nodes: { enlistRate: { perIpBurst: 5, perIpPerMinute: 1, globalBurst: 100, globalPerMinute: 60 } },
      }),
    );
    net = new TestNet('cet');
    masterHost = net.addHost('m', `${MASTER_IP}/24`);
    nodeA = net.addHost('na', null, MAC_A);
    nodeB = net.addHost('nb', null, MAC_B);
    attacker = net.addHost('x', `${ATTACKER_IP}/24`);
    master = await startMasterProcess({
      netns: masterHost.ns,
      host: MASTER_IP,
      args: [
        '--data-dir',
        dataDir,
        '--address',
        MASTER_IP,
        '--interface',
        masterHost.ifname,
        '--dhcp-range',
        `${SUBNET}.100-${SUBNET}.150`,
        '--http-port',
        String(PORT),
        '--config',
        configFile,
      ],
      env: { CORRAL_ADMIN_PASSWORD: PASSWORD, CORRAL_LOG_LEVEL: 'info' },
      logFile: join(dir, 'master.log'),
      timeoutMs: 30_000,
    });
    leases['a'] = dhcp(nodeA);
    leases['b'] = dhcp(nodeB);
    assert.notEqual(leases['a'], leases['b']);
  });

  after(async () => {
    await master?.stop().catch(() => undefined);
    await net?.destroy();
    if (process.env['ENLIST_TRUST_KEEP']) console.log(`# kept ${dir}`);
    else if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('finding 2: an enlist naming a known MAC from another address changes nothing; the identity needs the credential and the address', async () => {
    // The legitimate node enlists from its lease (the real agent does it below, after a reboot).
    const first = curl(nodeA, 'POST', '/api/v1/enlist', {
      body: JSON.stringify({ mac: MAC_A, mode: 'discover', inventory: { memoryBytes: 2 ** 30 } }),
    });
    assert.equal(first.status, 201, first.text);
    assert.equal(nodeRecord(MAC_A).ip, leases['a']);
    const diskless = api('POST', `/nodes/${MAC_A}/diskless`, { root: 'web', persistent: true });
    assert.equal(diskless.status, 200, diskless.text);
    const inventoryBefore = nodeRecord(MAC_A).inventory;
    // Its persistent directory is exported read-write to its lease only.
    const ganesha = join(dataDir, 'sharedroot', 'nfs', 'ganesha.conf');
    const exportsNow = (): string => {
      try {
        return readFileSync(ganesha, 'utf8');
      } catch {
        return '';
      }
    };
    const persistentClients = (): string | undefined =>
      /Clients = ([^;]+);\s*Access_Type = RW;/.exec(exportsNow())?.[1];
    await waitFor('the persistent export in ganesha.conf', persistentClients, 30_000);
    assert.equal(persistentClients(), leases['a']);

    // The takeover of today: name the MAC from the attacker's address (no credential, then a made-up one).
    const takeover = { mac: MAC_A, inventory: { memoryBytes: 1 } };
    const r1 = curl(attacker, 'POST', '/api/v1/enlist', { body: JSON.stringify(takeover) });
    assert.equal(r1.status, 401, r1.text);
    assert.equal(code(r1), 'NODE_CREDENTIAL_REQUIRED');
    assert.equal(r1.json['credential'], undefined);
    const r2 = curl(attacker, 'POST', '/api/v1/enlist', {
      body: JSON.stringify(takeover),
      headers: bearer('f'.repeat(64)),
    });
    assert.equal(r2.status, 403);
    assert.equal(code(r2), 'NODE_CREDENTIAL_INVALID');
    const after = nodeRecord(MAC_A);
    assert.equal(after.ip, leases['a'], 'the node keeps its leased address');
    assert.deepEqual(after.inventory, inventoryBefore);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(persistentClients(), leases['a'], "the read-write export stays the node's");
    assert.ok(!exportsNow().includes(ATTACKER_IP));
    creds['a'] = String(first.json['credential']);
    assert.match(creds['a'], /^[0-9a-f]{64}$/);

    // Its identity (private host key): not to the attacker, not without the credential, and not to the
    // attacker even with a leaked credential (the address is checked too); to the node with both.
    const path = `/boot/sharedroot/${MAC_A}/identity.tar`;
    assert.equal(code(curl(attacker, 'GET', path)), 'NODE_CREDENTIAL_REQUIRED');
    assert.equal(code(curl(nodeA, 'GET', path)), 'NODE_CREDENTIAL_REQUIRED');
    const leaked = curl(attacker, 'GET', path, { headers: bearer(creds['a']) });
    assert.equal(leaked.status, 403);
    assert.equal(code(leaked), 'SHAREDROOT_IDENTITY_REFUSED');
    const own = curl(nodeA, 'GET', path, { headers: bearer(creds['a']) });
    assert.equal(own.status, 200);
    assert.match(own.text, /ssh_host_ed25519_key/);

    // The node reboots (its tmpfs, and the credential, are gone): the initramfs asks again from its lease.
    const again = agentCredential(nodeA, MAC_A, 'sharedroot', join(dir, 'agent-a2'));
    assert.notEqual(again, creds['a']);
    assert.equal(code(curl(nodeA, 'GET', path, { headers: bearer(creds['a']) })), 'NODE_CREDENTIAL_INVALID');
    assert.equal(curl(nodeA, 'GET', path, { headers: bearer(again) }).status, 200);
    creds['a'] = again;

    const events = api('GET', `/events?node=${MAC_A}&kind=node.enlist-refused`).json['events'] as unknown[];
    assert.ok(events.length >= 1, 'the refused takeover is recorded against the node');

    // Only an operator moves the recorded address (validated, audited).
    const bad = api('PATCH', `/nodes/${MAC_A}`, { ip: '10.77.21.999' });
    assert.equal(code(bad), 'BODY_INVALID');
    assert.equal(api('PATCH', `/nodes/${MAC_A}`, { ip: `${SUBNET}.140` }).status, 200);
    assert.equal(nodeRecord(MAC_A).ip, `${SUBNET}.140`);
    assert.equal(api('PATCH', `/nodes/${MAC_A}`, { ip: leases['a'] }).status, 200);
  });

  it('finding 2: the deploy token is on no boot script, the plan needs the credential, and `booted` works once', async () => {
    // Node B enlists (as its agent would) and is deployed.
    const enl = curl(nodeB, 'POST', '/api/v1/enlist', {
      body: JSON.stringify({
        mac: MAC_B,
        mode: 'discover',
        inventory: {
          firmware: 'bios',
          memoryBytes: 2 ** 30,
          disks: [{ name: 'vda', sizeBytes: 8 * 2 ** 30 }],
        },
      }),
    });
    assert.equal(enl.status, 201, enl.text);
    creds['b'] = String(enl.json['credential']);
    const dep = api('POST', `/nodes/${MAC_B}/deploy`, { image: 'tiny' });
    assert.equal(dep.status, 202, dep.text);
    const deployment = (dep.json['deployment'] as { id: number }).id;

    // Anyone can ask for B's boot script: it names the deployment, never the token.
    const script = curl(attacker, 'GET', `/boot/ipxe?mac=${MAC_B}`);
    assert.equal(script.status, 200);
    assert.match(
      script.text,
      /corral\.mode=install corral\.server=\S+ corral\.mac=\S+ \S+ corral\.deploy=\d+ \|\|/,
    );
    assert.doesNotMatch(script.text, /token/i);

    // The installer's view: plan and node.conf with the credential, for its deployment.
    const conf = curl(nodeB, 'GET', `/boot/deploy/${MAC_B}/node.conf?deployment=${deployment}`, {
      headers: bearer(creds['b']),
    });
    assert.equal(conf.status, 200, conf.text);
    const token = /^CORRAL_TOKEN=(\S+)$/m.exec(conf.text)?.[1] ?? '';
    assert.match(token, /^[0-9a-f]{32}$/);

    assert.ok(!script.text.includes(token));
    // The SSH host key the master made for B's installed system: with the credential only (issue 14).
    const hostKey = `/boot/deploy/${MAC_B}/ssh_host_ed25519_key?deployment=${deployment}`;
    const key = curl(nodeB, 'GET', hostKey, { headers: bearer(creds['b']) });
    assert.equal(key.status, 200, key.text);
    assert.match(key.text, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    assert.equal(code(curl(attacker, 'GET', hostKey)), 'NODE_CREDENTIAL_REQUIRED');
    const keyPub = curl(nodeB, 'GET', `/boot/deploy/${MAC_B}/ssh_host_ed25519_key.pub`, {
      headers: bearer(creds['b']),
    }).text;
    assert.match(keyPub, /^ssh-ed25519 /);
    // The plan, even with the token in hand, is not for the attacker (old-style ?token= included).
    for (const headers of [{}, bearer('a'.repeat(64))]) {
      const r = curl(attacker, 'GET', `/boot/deploy/${MAC_B}/node.conf?token=${token}`, { headers });
      assert.ok(r.status === 401 || r.status === 403, `${r.status} ${r.text}`);
    }

    const report = (from: Host, what: string, body: unknown, cred?: string): Reply =>
      curl(from, 'POST', `/boot/deploy/${MAC_B}/${what}`, {
        body: JSON.stringify(body),
        ...(cred ? { headers: bearer(cred) } : {}),
      });
    assert.equal(report(nodeB, 'result', { token, ok: true }, creds['b']).status, 200);
    // Installed: that key is now the one exec and monitoring pin for B (remote/host-keys.ts).
    const pinned = join(dataDir, 'sharedroot', 'nodes', MAC_B.replace(/:/g, '-'), 'ssh');
    assert.equal(readFileSync(join(pinned, 'ssh_host_ed25519_key.pub'), 'utf8'), keyPub);
    assert.equal(readFileSync(join(pinned, 'ssh_host_ed25519_key'), 'utf8'), key.text);
    // Once installed, the plan (and the token in it) is no longer served.
    const late = curl(nodeB, 'GET', `/boot/deploy/${MAC_B}/node.conf`, { headers: bearer(creds['b']) });
    assert.equal(code(late), 'DEPLOY_NOT_ACTIVE');
    // The attacker's `booted` with the token but without the credential is refused; the node's works once.
    assert.equal(code(report(attacker, 'booted', { token, hostname: 'evil' })), 'NODE_CREDENTIAL_REQUIRED');
    const booted = report(nodeB, 'booted', { token, hostname: 'node-2' }, creds['b']);
    assert.equal(booted.status, 200, booted.text);
    assert.equal(nodeRecord(MAC_B).state, 'deployed');
    const replay = report(nodeB, 'booted', { token, hostname: 'node-2' }, creds['b']);
    assert.equal(replay.status, 409);
    assert.equal(code(replay), 'DEPLOY_NOT_ACTIVE');
    assert.equal(nodeRecord(MAC_B).ip, leases['b']);

    // HAProxy sends the service's traffic to B's lease, and keeps doing so after the attacker's tries.
    assert.equal(api('PATCH', `/nodes/${MAC_B}`, { role: 'app' }).status, 200);
    const svc = api('POST', '/services', { name: 'web', port: 18080, backendPort: 8000, role: 'app' });
    assert.ok(svc.status === 201 || svc.status === 200, svc.text);
    const cfg = join(dataDir, 'haproxy', 'haproxy.cfg');
    const readCfg = (): string => {
      try {
        return readFileSync(cfg, 'utf8');
      } catch {
        return '';
      }
    };
    await waitFor('haproxy.cfg with node B', () => readCfg().includes(`${leases['b']}:8000`), 20_000);
    curl(attacker, 'POST', '/api/v1/enlist', { body: JSON.stringify({ mac: MAC_B, inventory: {} }) });
    report(attacker, 'booted', { token });
    await new Promise((r) => setTimeout(r, 1000)); // a few lb polls
    assert.equal(nodeRecord(MAC_B).ip, leases['b']);
    assert.ok(readCfg().includes(`${leases['b']}:8000`));
    assert.ok(!readCfg().includes(ATTACKER_IP), 'the attacker is no HAProxy server');
  });

  it('finding 6: oversize and unknown-field enlists are refused with stable codes', () => {
    const big = join(dir, 'big.json');
    writeFileSync(
      big,
      JSON.stringify({ mac: '02:14:06:00:00:01', inventory: { dmi: { vendor: 'x'.repeat(70_000) } } }),
    );
    const tooLarge = curl(attacker, 'POST', '/api/v1/enlist', { bodyFile: big });
    assert.equal(tooLarge.status, 413);
    assert.equal(code(tooLarge), 'ENLIST_TOO_LARGE');
    const unknown = curl(attacker, 'POST', '/api/v1/enlist', {
      body: JSON.stringify({ mac: '02:14:06:00:00:02', inventory: { junk: 'x'.repeat(1000) } }),
    });
    assert.equal(unknown.status, 400);
    assert.equal(code(unknown), 'BODY_INVALID');
    assert.match(String((unknown.json['error'] as { message: string }).message), /junk/);
  });

  it('finding 6: a flood of new MACs from one address is limited and the refusals recorded', () => {
    const statuses: number[] = [];
    let retryAfter = '';
    for (let i = 0; i < 30; i++) {
      const mac = `02:14:06:01:00:${i.toString(16).padStart(2, '0')}`;
      const r = curl(attacker, 'POST', '/api/v1/enlist', { body: JSON.stringify({ mac, inventory: {} }) });
      statuses.push(r.status);
      if (r.status === 429) {
        assert.equal(code(r), 'ENLIST_RATE_LIMITED');
        retryAfter = /^retry-after: (\d+)/im.exec(r.headers)?.[1] ?? '';
      }
    }
    assert.equal(statuses.filter((s) => s === 201).length, 5, statuses.join(' '));
    assert.equal(statuses.filter((s) => s === 429).length, 25, statuses.join(' '));
    assert.match(retryAfter, /^\d+$/);
    const nodes = api('GET', '/nodes').json['nodes'] as { mac: string }[];
    assert.equal(nodes.filter((n) => n.mac.startsWith('02:14:06')).length, 5);

    const health = curl(attacker, 'GET', '/api/v1/health').json['enlist'] as {
      refused: Record<string, number>;
    };
    assert.equal(health.refused['rate-limited'], 25);
    assert.equal(health.refused['too-large'], 1);
    assert.equal(health.refused['invalid'], 1);
    assert.equal(health.refused['credential'], 3);
    const events = api('GET', '/events?kind=node.enlist-refused&limit=100').json['events'] as {
      data: { reason: string };
    }[];
    const byReason = (r: string): number => events.filter((e) => e.data.reason === r).length;
    assert.equal(byReason('rate-limited'), 1, 'one event for the flood, not 25');
    // Legitimate traffic still flows: node A's agent (another address) refreshes with its credential.
    const a = curl(nodeA, 'POST', '/api/v1/enlist', {
      body: JSON.stringify({ mac: MAC_A, inventory: {} }),
      headers: bearer(creds['a']),
    });
    assert.equal(a.status, 200, a.text);
  });
});
