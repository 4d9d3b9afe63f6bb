/**
 * Enrolment rules end to end (issue 16) against a real `startMaster` on loopback with a temporary data
 * directory: rules declared over the API; machines enlist through the real, unauthenticated enlist route
 * with realistic agent inventories; a rule names, tags and roles the machine and starts its deploy through
 * the real deployer (deployment record, node `deploying`, the agent told to reboot); the installer's
 * result and first-boot reports through the real /boot/deploy routes take it to `deployed`; a service
 * bound to the rule's tag then sends traffic to it through the real HAProxy with no operator step. Also:
 * the dry run, limits, the event and audit entries naming the rule, tag edits and `?tag=` filtering, and
 * hostile input (bad regex, huge limit, unknown image) refused with stable codes.
 */
import { requirePeers } from '../helpers/peers.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildConfig } from '../../master/config.js';
import { importImage } from '../../master/images/registry.js';
import { startMaster, type Master } from '../../master/master.js';
import type { NodeRecord } from '../../master/store/nodes.js';
import { silentLogger } from '../../master/util/logger.js';
import { hasCommand, waitFor } from '../helpers/netns.js';
import { Browser } from '../helpers/browser.js';
import { CLI, exitOf } from '../../master/lab/master-process.js';
import { spawn } from 'node:child_process';

const PASSWORD = 'enrolment-rules-test-pw';
const GiB = 2 ** 30;
// A missing HAProxy fails the service test (test/helpers/peers.ts), it never skips.
const noHaproxy = !hasCommand('haproxy');

/** A Dell-like server's report, as node-images/agent/corral-agent prints it. */
function serverInventory(serial: string, nicMac: string): Record<string, unknown> {
  return {
    cpu: { model: 'Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz', count: 48 },
    memoryBytes: 192 * GiB,
    firmware: 'uefi',
    disks: [
      {
        name: 'sda',
        sizeBytes: 480 * 10 ** 9,
        model: 'SSDSC2KB480G8R',
        serial: `D${serial}`,
        rotational: false,
      },
    ],
    nics: [{ name: 'eno1', mac: nicMac, link: 'up', speedMbps: 10000 }],
    dmi: { vendor: 'Dell Inc.', product: 'PowerEdge R640', serial },
  };
}
const VM_INVENTORY = {
  cpu: { model: 'QEMU Virtual CPU version 2.5+', count: 1 },
  memoryBytes: 512 * 2 ** 20,
  firmware: 'bios',
  disks: [{ name: 'vda', sizeBytes: 4 * GiB }],
  nics: [{ name: 'eth0', mac: '52:54:00:16:00:09', link: 'up', speedMbps: null }],
  dmi: { vendor: 'QEMU', product: 'Standard PC (i440FX + PIIX, 1996)', serial: null },
};
interface DryRun {
  rule: { name: string };
  catches: { name: string; mac: string; as: string | null }[];
  passes: { mac: string; why: string }[];
}
const DELL = ['b8:ca:3a:16:00:01', 'b8:ca:3a:16:00:02', 'b8:ca:3a:16:00:03'] as const;

describe('enrolment rules through a real master', { timeout: 120_000 }, () => {
  let dir = '';
  let master: Master;
  let base = '';
  let backend: Server | undefined;

  const auth = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
  async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
  }
  /** Each node's credential, kept as the agent keeps it (its first enlistment issues it). */
  const creds = new Map<string, string>();
  /** POST /api/v1/enlist as the agent does (with its credential once it has one). */
  async function enlist(
    mac: string,
    inventory: unknown,
  ): Promise<{ status: number; body: { action: string; credential?: string } }> {
    const data = JSON.stringify({ mac, mode: 'discover', inventory });
    const url = new URL(`${base}/api/v1/enlist`);
    const cred = creds.get(mac);
    const answer = await new Promise<{ status: number; body: { action: string; credential?: string } }>(
      (resolve, reject) => {
        const req = request(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(data),
              ...(cred ? { authorization: `Bearer ${cred}` } : {}),
            },
          },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { action: string } }),
            );
          },
        );
        req.on('error', reject);
        req.end(data);
      },
    );
    if (answer.body.credential) creds.set(mac, answer.body.credential);
    return answer;
  }
  type NodeView = NodeRecord & { events: { kind: string; actor: string | null; message: string }[] };
  const node = async (id: string): Promise<NodeView> => {
    const r = await api<{ node: NodeRecord; events: NodeView['events'] }>('GET', `/nodes/${id}`);
    return { ...r.body.node, events: r.body.events };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-enrolment-'));
    const config = buildConfig(
      {
        dataDir: join(dir, 'data'),
        http: { port: 0, bind: '127.0.0.1' },
        tftp: { enabled: false },
        console: { https: false },
        monitor: { enabled: false },
        nodeImage: { autoBuild: false },
        lb: { enabled: !noHaproxy, pollMs: 200 },
      },
      { address: '127.0.0.1' },
    );
    master = await startMaster(config, { logger: silentLogger(), initialAdminPassword: PASSWORD });
    base = `http://127.0.0.1:${master.httpPort}`;
    // A real (tiny) image in the catalogue, imported the way `corral image import` does.
    const root = join(dir, 'tiny-root');
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc', 'os-release'), 'ID=tiny\nVERSION_ID=1\n');
    execFileSync('tar', ['-czf', join(dir, 'tiny.tar.gz'), '-C', root, '.']);
    await importImage({
      repos: master.repos,
      dataDir: config.dataDir,
      logger: silentLogger(),
      source: join(dir, 'tiny.tar.gz'),
      name: 'tiny',
    });
  });

  after(async () => {
    await new Promise((r) => (backend ? backend.close(r) : r(undefined)));
    await master?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses hostile rules with stable codes and saves nothing', async () => {
    const bad: [unknown, string][] = [
      [{ name: 'r1', match: { product: '/PowerEdge (R6/' } }, 'RULE_PATTERN_INVALID'],
      [{ name: 'r1', limit: 10 ** 12 }, 'RULE_INVALID'],
      [
        { name: 'r1', outcome: { action: { type: 'deploy', image: 'no-such-image' } } },
        'RULE_TARGET_UNKNOWN',
      ],
      [
        { name: 'r1', outcome: { action: { type: 'deploy', image: 'tiny', layout: 'nope' } } },
        'RULE_TARGET_UNKNOWN',
      ],
      [{ name: 'r1', outcome: { tags: ['Not A Tag'] } }, 'TAG_INVALID'],
      [{ name: 'r1', outcome: { name: 'web-{rack}' } }, 'RULE_INVALID'],
    ];
    for (const [body, code] of bad) {
      const r = await api<{ error: { code: string; message: string; hint: string } }>('POST', '/rules', body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.code, code, r.body.error.message);
      assert.ok(r.body.error.hint.length > 10);
    }
    assert.deepEqual((await api<{ rules: unknown[] }>('GET', '/rules')).body.rules, []);
  });

  it('a rule catches the first two Dell servers: named, tagged, roled and deploying; the third waits', async () => {
    const created = await api<{ rule: { id: number; position: number } }>('POST', '/rules', {
      name: 'dell-web',
      limit: 2,
      match: { vendor: 'Dell*', product: '/^PowerEdge R[67]40$/', memoryGiB: { min: 64 }, mac: ['b8:ca:3a'] },
      outcome: {
        name: 'web-{n}',
        role: 'web',
        tags: ['web', 'rack:a3'],
        action: { type: 'deploy', image: 'tiny' },
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // A catch-all placed after it: tags what the first rule leaves, and leaves it waiting.
    const rest = await api('POST', '/rules', { name: 'rest', outcome: { tags: ['unsorted'] } });
    assert.equal(rest.status, 201);

    const enlistedAt = Date.now();
    for (const [i, mac] of DELL.entries()) {
      const r = await enlist(mac, serverInventory(`7XK2J9${i}`, mac));
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const vm = await enlist('52:54:00:16:00:09', VM_INVENTORY);
    assert.equal(vm.status, 201);

    await waitFor(
      'both web nodes deploying',
      async () => (await node(DELL[1])).state === 'deploying',
      20_000,
      50,
    );
    // A figure, not a bound: first enlistment sent → second web node deploying (two host keys made).
    console.log(`enlist → 2 nodes deploying by rule: ${Date.now() - enlistedAt} ms`);
    const [a, b, c] = [await node(DELL[0]), await node(DELL[1]), await node(DELL[2])];
    assert.deepEqual(
      [a.name, a.role, a.tags, a.enrolledBy, a.state],
      ['web-1', 'web', ['rack:a3', 'web'], 'dell-web', 'deploying'],
    );
    assert.deepEqual([b.name, b.state], ['web-2', 'deploying']);
    // The limit: the third Dell server is caught by the next rule instead.
    await waitFor(
      'the third is tagged by the catch-all',
      async () => (await node(DELL[2])).enrolledBy === 'rest',
      10_000,
      100,
    );
    assert.deepEqual([(await node(DELL[2])).tags, (await node(DELL[2])).state], [['unsorted'], 'discovered']);
    assert.equal(c.role, null);

    // The deployment exists, made by the deploy service, on the rule's behalf.
    const deps = await api<{ deployments: { status: string; imageName: string }[] }>(
      'GET',
      `/nodes/${DELL[0]}/deployments`,
    );
    assert.equal(deps.body.deployments.length, 1);
    assert.equal(deps.body.deployments[0]?.imageName, 'tiny');
    const events = a.events.map((e) => `${e.kind}:${e.actor}`);
    assert.ok(events.includes('enrolment.matched:rule:dell-web'), events.join(' '));
    assert.ok(events.includes('deploy.started:rule:dell-web'), events.join(' '));

    // The agent's next poll is told to reboot into the installer.
    const again = await enlist(DELL[0], serverInventory('7XK2J90', DELL[0]));
    assert.deepEqual([again.status, again.body.action], [200, 'reboot']);

    // The audit log names the rule for each automatic act.
    const audit = await api<{
      entries?: { actor: string; action: string; target: string }[];
      audit?: { actor: string; action: string; target: string }[];
    }>('GET', '/audit?actor=rule:dell-web');
    const rows = audit.body.entries ?? audit.body.audit ?? [];
    const acts = rows.map((r) => `${r.action} ${r.target}`).sort();
    assert.deepEqual(acts, [
      'enrolment.deploy web-1',
      'enrolment.deploy web-2',
      'enrolment.matched web-1',
      'enrolment.matched web-2',
    ]);

    const rules = await api<{ rules: { name: string; caught: number }[] }>('GET', '/rules');
    assert.deepEqual(
      rules.body.rules.map((r) => [r.name, r.caught]),
      [
        ['dell-web', 2],
        ['rest', 2],
      ],
    );
  });

  it('the dry run shows what each rule would catch now, and what it passes and why', async () => {
    // The catch-all off; dell-web may take one more (limit 3, caught 2).
    assert.equal((await api('PATCH', '/rules/rest', { enabled: false })).status, 200);
    assert.equal((await api('PATCH', '/rules/dell-web', { limit: 3 })).status, 200);
    await enlist('b8:ca:3a:16:00:04', serverInventory('7XK2J94', 'b8:ca:3a:16:00:04'));
    await waitFor(
      'web-3 enrolled',
      async () => (await node('b8:ca:3a:16:00:04')).enrolledBy === 'dell-web',
      10_000,
      100,
    );
    assert.equal((await node('b8:ca:3a:16:00:04')).name, 'web-3');
    // The next one finds dell-web at its limit and the catch-all disabled: it stays as it was.
    await enlist('b8:ca:3a:16:00:05', serverInventory('7XK2J95', 'b8:ca:3a:16:00:05'));
    await waitFor(
      'the rules to pass node 5',
      async () => (await node('b8:ca:3a:16:00:05')).events.some((ev) => ev.kind === 'enrolment.unmatched'),
      20_000,
      100,
    );
    const dry = await waitFor(
      'the dry run sees node 5',
      async () => {
        const r = await api<{ rules: DryRun[] }>('GET', '/rules/dry-run');
        return r.body.rules.find((x) => x.rule.name === 'dell-web')?.passes.length ? r.body.rules : undefined;
      },
      10_000,
      100,
    );
    const e = new Map(dry.map((x) => [x.rule.name, x]));
    assert.deepEqual(e.get('dell-web')?.catches, []);
    assert.deepEqual(
      e.get('dell-web')?.passes.map((p) => [p.mac, p.why]),
      [['b8:ca:3a:16:00:05', 'limit 3 reached']],
    );
    // (The VM and the third server were enrolled by the catch-all already: no rule acts on them again.)
    assert.deepEqual(
      e.get('rest')?.passes.map((p) => [p.mac, p.why]),
      [['b8:ca:3a:16:00:05', 'rule disabled']],
    );
    // Raising the limit: the dry run names what node 5 would be called, without doing it.
    await api('PATCH', '/rules/dell-web', { limit: 4 });
    const n5 = await node('b8:ca:3a:16:00:05');
    const dry2 = await api<{ rules: DryRun[] }>('GET', '/rules/dry-run');
    assert.deepEqual(dry2.body.rules.find((x) => x.rule.name === 'dell-web')?.catches, [
      { name: n5.name, mac: n5.mac, as: 'web-4' },
    ]);
    assert.equal((await node(n5.mac)).enrolledBy, null, 'a dry run changes nothing');
    // `apply` runs the rules for real on what they may act on.
    const applied = await api<{ results: { rule: string | null; node: string }[] }>(
      'POST',
      '/rules/apply',
      {},
    );
    assert.deepEqual(
      applied.body.results.filter((r) => r.rule).map((r) => [r.rule, r.node]),
      [['dell-web', 'web-4']],
      JSON.stringify(applied.body),
    );
    assert.equal((await node(n5.mac)).state, 'deploying');
  });

  it('reorders, and tags by hand; ?tag= filters the node list', async () => {
    const moved = await api<{ rule: { position: number } }>('POST', '/rules/rest/move', { position: 1 });
    assert.equal(moved.body.rule.position, 1);
    assert.deepEqual(
      (await api<{ rules: { name: string }[] }>('GET', '/rules')).body.rules.map((r) => r.name),
      ['rest', 'dell-web'],
    );
    const tagged = await api<{ node: NodeRecord }>('POST', `/nodes/${DELL[2]}/tags`, {
      add: ['spare'],
      remove: ['unsorted'],
    });
    assert.deepEqual(tagged.body.node.tags, ['spare']);
    const bad = await api<{ error: { code: string } }>('PUT', `/nodes/${DELL[2]}/tags`, { tags: ['UPPER'] });
    assert.equal(bad.body.error.code, 'TAG_INVALID');
    const list = await api<{ nodes: NodeRecord[] }>('GET', '/nodes?tag=web');
    assert.deepEqual(
      list.body.nodes.map((n) => n.name),
      ['web-1', 'web-2', 'web-3', 'web-4'],
    );
    const both = await api<{ nodes: NodeRecord[] }>('GET', '/nodes?tag=web&tag=rack:a3&state=deploying');
    assert.equal(both.body.nodes.length, 4);
    const del = await api<{ node: NodeRecord }>('DELETE', `/nodes/${DELL[2]}/tags/spare`);
    assert.deepEqual(del.body.node.tags, []);
  });

  it('a service bound to the tag serves web-1 through HAProxy once it is deployed, with no operator step', async () => {
    requirePeers('haproxy');
    backend = createServer((_req, res) => res.end('hello from web-1\n'));
    await new Promise<void>((r) => backend!.listen(0, '127.0.0.1', () => r()));
    const backendPort = (backend.address() as AddressInfo).port;
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const frontPort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const svc = await api<{ service: { servers: unknown[] } }>('POST', '/services', {
      name: 'web',
      port: frontPort,
      protocol: 'http',
      tag: 'web',
      backendPort,
      check: { type: 'tcp' },
      intervalMs: 200,
      rise: 1,
      fall: 1,
    });
    assert.equal(svc.status, 201, JSON.stringify(svc.body));
    assert.deepEqual(svc.body.service.servers, [], 'nobody deployed yet');

    // The installer's reports, with the deployment's token, through the real boot routes.
    const d = master.repos.deployments.latestFor(DELL[0])!;
    const post = (what: string, body: unknown) =>
      fetch(`${base}/boot/deploy/${DELL[0]}/${what}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${creds.get(DELL[0])}` },
        body: JSON.stringify(body),
      });
    const result = await post('result', { token: d.token, ok: true });
    assert.equal(result.status, 200, await result.text());
    const bootedAt = Date.now();
    assert.equal((await post('booted', { token: d.token, hostname: 'web-1' })).status, 200);
    assert.equal((await node(DELL[0])).state, 'deployed');

    const cfg = join(master.config.dataDir, 'haproxy', 'haproxy.cfg');
    await waitFor(
      'haproxy.cfg lists web-1',
      () => readFileSync(cfg, 'utf8').includes(`server web-1 127.0.0.1:${backendPort}`),
      10_000,
      100,
    );
    const body = await waitFor(
      'a request through HAProxy reaches web-1',
      async () => {
        const r = await fetch(`http://127.0.0.1:${frontPort}/`).catch(() => undefined);
        return r?.ok ? await r.text() : undefined;
      },
      10_000,
      50,
    );
    assert.equal(body, 'hello from web-1\n');
    console.log(`first boot reported → serving through HAProxy: ${Date.now() - bootedAt} ms (lb.pollMs 200)`);
    // Untagging takes it out again.
    await api('DELETE', `/nodes/${DELL[0]}/tags/web`);
    await waitFor(
      'web-1 leaves haproxy.cfg',
      () => !readFileSync(cfg, 'utf8').includes('server web-1 '),
      10_000,
      100,
    );
  });
  it('the CLI: rules add/list/disable/move/dry-run/rm, node tag +a -b, node list --tag', async () => {
    const home = join(dir, 'cli-home');
    const cli = (
      args: string[],
      input = '',
    ): Promise<{ code: number | string; stdout: string; stderr: string }> => {
      const child = spawn('node', [CLI, ...args], {
        env: { ...process.env, CORRAL_CONFIG_DIR: home },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin.end(input);
      return exitOf(child, 20_000).then((code) => ({ code, stdout, stderr }));
    };
    const ok = async (args: string[]): Promise<string> => {
      const r = await cli(args);
      assert.equal(r.code, 0, `corral ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    assert.equal((await cli(['login', base, '--password-stdin'], `${PASSWORD}\n`)).code, 0);

    assert.match(
      await ok([
        'rules',
        'add',
        'small-vms',
        '--vendor',
        'QEMU',
        '--memory-gib',
        '..1',
        '--tags',
        'vm',
        '--wait',
        '--position',
        '1',
      ]),
      /rule small-vms added at position 1/,
    );
    const listed = await ok(['rules', 'list']);
    assert.match(listed, /^#\s+NAME\s+ON\s+CAUGHT\s+MATCH\s+OUTCOME$/m);
    assert.match(listed, /^1\s+small-vms\s+yes\s+0\s+vendor=QEMU memoryGiB=\.\.1\s+tags vm, wait$/m);
    assert.match(
      listed,
      /dell-web\s+yes\s+4\/4\s+.*name web-\{n\}, role web, tags web,rack:a3, deploy tiny$/m,
    );
    assert.match(await ok(['rules', 'disable', 'small-vms']), /rule small-vms disabled/);
    assert.match(await ok(['rules', 'move', 'small-vms', '3']), /rule small-vms is now at position 3/);
    const dry = await ok(['rules', 'dry-run']);
    assert.match(dry, /^3\. small-vms \(disabled\): tags vm, wait$/m);
    const bad = await cli(['rules', 'add', 'bad', '--product', '/PowerEdge (R6/']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /match\.product: \/PowerEdge \(R6\/ is not a regular expression/);
    const range = await cli(['rules', 'add', 'bad', '--cpus', '8..x']);
    assert.equal(range.code, 2);
    assert.match(range.stderr, /--cpus takes N, MIN\.\.MAX/);
    assert.match(await ok(['rules', 'rm', 'small-vms']), /rule small-vms deleted/);

    assert.equal((await ok(['node', 'tag', 'web-2', '+blue', '-rack:a3'])).trim(), 'web-2: blue web');
    const tagged = await ok(['node', 'list', '--tag', 'blue']);
    assert.match(tagged, /^web-2\s+b8:ca:3a:16:00:02\s+deploying\s+web\s+blue,web\s/m);
    assert.doesNotMatch(tagged, /web-3/);
    assert.match(await ok(['node', 'show', 'web-2']), /^enrolled {3}by rule dell-web$/m);
  });
  it('the console: the rules page with its dry run, add/disable/move/delete by form, tags on the node page and the node list filter', async () => {
    const b = new Browser(base);
    assert.equal((await b.login('admin', PASSWORD)).status, 303);
    const csrf = await b.csrfToken();
    const page = async (path: string): Promise<string> => {
      const r = await b.get(path);
      assert.equal(r.status, 200, path);
      return r.text();
    };
    const post = async (path: string, form: Record<string, string>): Promise<string> => {
      const r = await b.post(path, { _csrf: csrf, ...form });
      assert.equal(r.status, 303, `${path}: ${await r.text()}`);
      return decodeURIComponent(r.headers.get('location') ?? '');
    };

    let html = await page('/rules');
    assert.match(html, /<h1>Enrolment rules<\/h1>/);
    assert.match(
      html,
      /<tr data-rule="dell-web">[\s\S]*?4 of 4[\s\S]*?vendor Dell\*; product \/\^PowerEdge R\[67\]40\$\/[\s\S]*?name web-\{n\}, role web, tags web,rack:a3, deploy tiny/,
    );
    assert.match(
      html,
      /<a href="\/rules" aria-current="page">.*<span>Enrolment rules<\/span><\/a>/,
      'in the navigation',
    );

    // Add a rule by form: at position 1, matching the spare Dell server (left with no tags) by serial.
    const added = await post('/rules', {
      name: 'spare',
      enabled: 'yes',
      limit: '1',
      position: '1',
      serial: '7XK2J9?',
      'memory-gib': '100..',
      'name-pattern': 'spare-{serial}',
      tags: 'spare',
      action: 'wait',
      layout: 'default',
    });
    assert.match(added, /ok=Rule spare added at position 1/);
    html = await page('/rules');
    // Its dry run: the un-enrolled servers it would catch (none: every one was enrolled) - and the error path.
    assert.match(
      html,
      /<tr data-rule="spare">[\s\S]*?<td class="dry-run">\s*<span class="muted">nothing<\/span>/,
    );
    const bad = await post('/rules', { name: 'bad', enabled: 'yes', product: '/(/', action: 'wait' });
    assert.match(bad, /err=match\.product: \/\(\/ is not a regular expression/);
    const unknown = await post('/rules', { name: 'bad', enabled: 'yes', action: 'deploy', image: '' });
    assert.match(unknown, /err=outcome\.action\.image/);

    // A machine that enlists now shows in the dry run of the (disabled) rule as what it would become.
    const spareRule = (await api<{ rule: { id: number } }>('GET', '/rules/spare')).body.rule;
    assert.match(await post(`/rules/${spareRule.id}/disable`, {}), /Rule spare disabled/);
    await enlist('b8:ca:3a:16:00:07', serverInventory('7XK2J97', 'b8:ca:3a:16:00:07'));
    await waitFor(
      'node 7 passed by the rules',
      async () => (await node('b8:ca:3a:16:00:07')).events.some((e) => e.kind === 'enrolment.unmatched'),
      20_000,
      100,
    );
    assert.match(await post(`/rules/${spareRule.id}/enable`, {}), /Rule spare enabled/);
    html = await page('/rules');
    assert.match(
      html,
      /<div data-catches="b8:ca:3a:16:00:07"><a href="\/nodes\/b8:ca:3a:16:00:07">node-\d+<\/a> → spare-7xk2j97<\/div>/,
    );
    assert.match(await post(`/rules/${spareRule.id}/move`, { position: '2' }), /now at position 2/);
    assert.match(await post('/rules/apply', {}), /spare-7xk2j97 by spare/);
    assert.match(await post(`/rules/${spareRule.id}/delete`, {}), /Rule spare deleted/);

    // Tags on the node page, and the node list's tag filter.
    html = await page('/nodes/b8:ca:3a:16:00:07');
    assert.match(html, /<dt>Tags<\/dt><dd><a class="tag" href="\/nodes\?tag=spare">spare<\/a> <\/dd>/);
    assert.match(html, /<dt>Enrolled by<\/dt><dd>rule <a href="\/rules">spare<\/a><\/dd>/);
    assert.match(
      await post('/nodes/b8:ca:3a:16:00:07/tags', { tags: 'spare, rack:b1' }),
      /spare-7xk2j97: tags rack:b1 spare/,
    );
    assert.match(await post('/nodes/b8:ca:3a:16:00:07/tags', { tags: 'Bad Tag' }), /err=.*is not a tag/);
    // Bulk: the tag added to two selected nodes at once (the form repeats `mac`).
    const form = new URLSearchParams({ _csrf: csrf, action: 'tag:add', tag: 'rack:b1', confirm: 'yes' });
    form.append('mac', DELL[1]);
    form.append('mac', 'b8:ca:3a:16:00:04');
    const bulk = await fetch(`${base}/nodes/bulk`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        cookie: [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: form.toString(),
    });
    assert.equal(bulk.status, 303);
    assert.match(decodeURIComponent(bulk.headers.get('location') ?? ''), /ok=.*web-2.*web-3/);
    assert.deepEqual((await node(DELL[1])).tags, ['blue', 'rack:b1', 'web']);
    html = await page('/nodes?tag=rack:b1');
    assert.match(html, />web-2<\/a>/);
    assert.match(html, />web-3<\/a>/);
    form.set('action', 'tag:remove');
    assert.equal(
      (
        await fetch(`${base}/nodes/bulk`, {
          method: 'POST',
          redirect: 'manual',
          headers: {
            cookie: [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: form.toString(),
        })
      ).status,
      303,
    );
    html = await page('/nodes?tag=rack:b1');
    assert.match(html, />spare-7xk2j97<\/a>/);
    assert.doesNotMatch(html, />web-2<\/a>/, 'the bulk removal took it off again');
    assert.match(html, /<option value="rack:b1" selected>rack:b1<\/option>/);
  });
});
