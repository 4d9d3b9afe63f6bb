/**
 * End to end, apps on the cluster engine (issue 21) on nodes Corral deployed: two BIOS lab VMs PXE-boot,
 * enlist, get the tag `engine` and are deployed in parallel with `debian-12-engine` (the Debian image
 * with docker.io, built by `corral image build-debian --variant engine` while they boot). The master runs
 * with HA on (keepalived holds the VIP and HAProxy serves on it; no backup master is started), the DNS
 * server (knot), the registry (Debian's docker-registry) and apps. Then, on that one pair of VMs:
 *   1. the engine layer (cloud-init) makes dockerd trust the master's registry; Corral forms the swarm,
 *      one manager and one worker, and says plainly that it has no quorum tolerance;
 *   2. a base image (a busybox tree, pushed with `corral registry push-base --tree`: the Debian base
 *      layer unpacks for 10+ min under TCG, docs/apps.md) and an app of 3 instances with per-instance
 *      host ports (`network: "bridge"`, so 3 fit on 2 nodes) serving through the VIP from the witness;
 *   3. `dig SRV _web._tcp.cluster @master` lists exactly the running instances (node and published port)
 *      after every step below;
 *   4. SIGKILL to one instance's process on the worker (over SSH): the engine restarts it;
 *   5. a version whose health check fails: the rollout stops and rolls back, v1 answers;
 *   6. the console's app page shows the instances (node and port), their restarts and the rollout
 *      picture (the rolling-update figures come from the apps-swarm integration test: docs/apps.md);
 *   7. the worker's VM is powered off (QEMU killed): its instances move to the manager while the VIP is
 *      probed every 0.5 s, and the SRV set follows.
 * Figures are printed as `# apps-lab figures: ...` (docs/apps.md).
 * Real peers: QEMU/SeaBIOS/iPXE, the Linux installer environment, Debian's systemd, cloud-init, OpenSSH,
 * dockerd/containerd (Debian docker.io) in swarm mode, Debian's docker-registry, HAProxy, keepalived, knot,
 * dig, curl, and the console (its HTML through the login form).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLab, type Lab } from '../../master/lab/lab.js';
import { silentLogger } from '../../master/util/logger.js';
import { CLI } from '../../master/lab/master-process.js';
import { sshArgs } from '../../master/deploy/ssh.js';
import { api as apiCall } from '../helpers/api.js';
import { waitFor } from '../helpers/netns.js';
import { Browser } from '../helpers/browser.js';
import { requirePeers, requireRoot } from '../helpers/peers.js';
import { debianImage } from '../helpers/debian-image.js';
import { busyboxTree, webApp, failingVersion } from '../helpers/swarm-lab.js';

const exec = promisify(execFile);
const DEPLOY_TIMEOUT_MS = 1_200_000;
const LB_PORT = 8080;
const ENGINE_IMAGE = 'debian-12-engine';

interface ApiNode {
  mac: string;
  name: string;
  state: string;
  ip: string | null;
}
interface Instance {
  slot: number;
  state: string;
  node: string | null;
  version: number | null;
  restarts: number;
  ports: { target: number; published: number; protocol: string }[];
}
interface App {
  name: string;
  version: number;
  engineVersion: number | null;
  update: { state: string; message: string | null } | null;
  instances: Instance[];
}
interface Engine {
  managers: number;
  quorumNote: string | null;
  nodes: { name: string; role: string; state: string }[];
}

let lab: Lab | undefined;
let dir = '';
let dataDir = '';
let tornDown = false;
let image: Promise<unknown> | undefined;
/** Each step's figure, printed together at the end (and as far as they got on a failure). */
const figures: string[] = [];

before(async () => {
  requireRoot('network namespaces and QEMU');
  requirePeers('qemu-system-x86_64', 'haproxy', 'keepalived', 'knotd', 'docker-registry', 'dig', 'curl');
  dir = mkdtempSync(join(tmpdir(), 'corral-e2e-apps-'));
  dataDir = join(dir, 'master');
  lab = await startLab({
    dir,
    ha: true,
    vms: [{ firmware: 'bios' }, { firmware: 'bios' }],
    logger: silentLogger(),
    memoryMb: 1024,
    diskGb: 4,
    subnetPrefix: '10.95.0',
    masterConfig: {
      nodes: { namePattern: 'eng-{n}', discoverAction: 'wait', pollSeconds: 3 },
      deploy: { stallSeconds: 600 },
      dns: { enabled: true },
      // The base image is the busybox tree pushed below, not the Debian tree (see the header).
      registry: { enabled: true, baseImage: '' },
      apps: {
        enabled: true,
        reconcileSeconds: 3,
        commandTimeoutSeconds: 60,
        // Two nodes: a second manager would not let Raft survive a loss (two of two needed), and losing
        // it would stop the swarm. The console says so (quorumNote, asserted).
        engine: { managers: 1, heartbeatSeconds: 2 },
      },
    },
  });
  // Built while the VMs PXE-boot and enlist (cached in /var/cache/corral after the first build).
  image = debianImage(dataDir, ENGINE_IMAGE, 'engine');
  image.catch(() => undefined);
});

after(async () => {
  tornDown = true;
  if (figures.length) console.log(`# apps-lab figures: ${figures.join('; ')}`);
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
  const r = await apiCall<T>({ url: lab!.hostUrl, password: lab!.adminPassword }, method, path, body);
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
};

function masterTail(): string {
  return `\n--- master log tail:\n${lab!.master.logs().slice(-4000)}`;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms: number): Promise<T> {
  try {
    return await waitFor(
      what,
      async () => {
        if (tornDown) throw new Error('the lab was torn down');
        return fn().catch(() => undefined);
      },
      ms,
      1000,
    );
  } catch (err) {
    return assert.fail(`${(err as Error).message}${masterTail()}`);
  }
}

const inNs = (ns: string, argv: string[], timeoutMs: number) =>
  exec('ip', ['netns', 'exec', ns, ...argv], { timeout: timeoutMs });

/** The app through the VIP from the witness host (a client outside the cluster): the body, or null. */
async function viaVip(): Promise<string | null> {
  const ha = lab!.ha!;
  try {
    const r = await inNs(ha.witness.ns, ['curl', '-sf', '-m', '2', `http://${ha.vip}:${LB_PORT}/`], 5000);
    return r.stdout.trim();
  } catch {
    return null;
  }
}

/** `dig SRV _web._tcp.cluster @master` from the witness: "port target" per answer, sorted. */
async function srv(): Promise<string[]> {
  const r = await inNs(
    lab!.ha!.witness.ns,
    ['dig', '+short', '+time=2', '+tries=2', `@${lab!.masterAddress}`, 'SRV', '_web._tcp.cluster'],
    15_000,
  );
  return r.stdout
    .split('\n')
    .filter((l) => /^\d+ \d+ \d+ \S+$/.test(l.trim()))
    .map((l) => {
      const [, , port, target] = l.trim().split(/\s+/);
      return `${port} ${target}`;
    })
    .sort();
}

/** What the SRV set must be: one answer per running instance, its published port on its node. */
function expectedSrv(a: App): string[] {
  return running(a)
    .map((i) => `${i.ports.find((p) => p.target === 8000)?.published ?? '?'} ${i.node}.cluster.`)
    .sort();
}

/** Waits until the SRV set is exactly the running instances (knot reloads a second or two after HAProxy). */
async function srvMatches(step: string): Promise<string[]> {
  let last: string[] = [];
  let want: string[] = [];
  try {
    return await waitFor(
      `SRV = the running instances (${step})`,
      async () => {
        want = expectedSrv(await app());
        last = await srv().catch(() => []);
        return want.length > 0 && JSON.stringify(last) === JSON.stringify(want) ? last : undefined;
      },
      60_000,
      1000,
    );
  } catch {
    return assert.fail(
      `${step}: SRV ${JSON.stringify(last)} != running ${JSON.stringify(want)}${masterTail()}`,
    );
  }
}

const app = async (): Promise<App> => (await api<{ app: App }>('GET', '/apps/web')).app;
const running = (a: App): Instance[] => a.instances.filter((i) => i.state === 'running');
const restarts = (a: App): number => a.instances.reduce((s, i) => s + i.restarts, 0);

async function nodeOf(vm: number): Promise<ApiNode | undefined> {
  const mac = lab!.vms[vm]!.spec.mac;
  return (await api<{ nodes: ApiNode[] }>('GET', '/nodes')).nodes.find((n) => n.mac === mac);
}

/** A command on a deployed node over SSH, from the master's namespace with the master's key. */
async function ssh(ip: string, command: string): Promise<string> {
  const r = await inNs(
    lab!.masterNs,
    ['ssh', ...sshArgs(join(dataDir, 'ssh', 'id_ed25519'), ip, command)],
    60_000,
  );
  return r.stdout.trim();
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Bridge network: each instance its own node port, so 3 fit on 2 nodes. */
const SPEC = { ...webApp(LB_PORT, { healthSeconds: 2, monitorSeconds: 6 }), network: 'bridge' };

let manager: ApiNode | undefined;
let worker: ApiNode | undefined;
let workerVm = -1;

test('two engine nodes deployed in parallel with debian-12-engine; the swarm forms', async () => {
  const discovered = await Promise.all(
    [0, 1].map((vm) =>
      until(
        `VM ${vm} discovered`,
        async () => ((await nodeOf(vm))?.state === 'discovered' ? nodeOf(vm) : undefined),
        300_000,
      ),
    ),
  );
  for (const n of discovered) await api('PUT', `/nodes/${n.name}/tags`, { tags: ['engine'] });
  // The base image, pushed into the master's registry from the master's own namespace (it listens there).
  const tree = busyboxTree(join(dir, 'base-tree'));
  const pushed = inNs(
    lab!.masterNs,
    ['node', CLI, 'registry', 'push-base', '--config', join(dir, 'master.json'), '--tree', tree],
    300_000,
  );
  const tImage = Date.now();
  await image;
  figures.push(`engine image ready ${seconds(Date.now() - tImage)} after both nodes were discovered`);
  const t0 = Date.now();
  for (const n of discovered) await api('POST', `/nodes/${n.name}/deploy`, { image: ENGINE_IMAGE });
  await Promise.all(
    [0, 1].map((vm) =>
      until(
        `VM ${vm} deployed`,
        async () => ((await nodeOf(vm))?.state === 'deployed' ? true : undefined),
        DEPLOY_TIMEOUT_MS,
      ),
    ),
  );
  figures.push(`two engine deploys in parallel ${seconds(Date.now() - t0)}`);
  await pushed;

  const t1 = Date.now();
  const engine = await until(
    'the swarm: one manager (the leader) and one worker',
    async () => {
      const e = (await api<{ engine: Engine }>('GET', '/apps/engine')).engine;
      const roles = e.nodes.map((n) => n.role).sort();
      return e.managers === 1 && JSON.stringify(roles) === '["leader","worker"]' ? e : undefined;
    },
    300_000,
  );
  figures.push(`both deployed -> swarm formed ${seconds(Date.now() - t1)}`);
  // Where that time went: the master's engine log lines since both nodes were deployed.
  for (const line of lab!.master.logs().split('\n')) {
    const m = /"time":(\d+).*"msg":"([^"]*(swarm|engine node|docker)[^"]*)"/.exec(line);
    if (m && Number(m[1]) >= t1 - 180_000) console.log(`# swarm log ${seconds(Number(m[1]) - t1)}: ${m[2]}`);
  }
  assert.match(engine.quorumNote ?? '', /no quorum tolerance/);
  const nodes = await Promise.all([0, 1].map((vm) => nodeOf(vm)));
  manager = nodes.find((n) => n?.name === engine.nodes.find((x) => x.role === 'leader')!.name);
  workerVm = nodes.findIndex((n) => n?.name === engine.nodes.find((x) => x.role === 'worker')!.name);
  worker = nodes[workerVm];
  assert.ok(manager?.ip && worker?.ip, JSON.stringify(nodes));
  // The engine layer (cloud-init) reached the node: dockerd trusts the master's registry.
  assert.match(await ssh(worker.ip, 'cat /etc/docker/daemon.json'), /insecure-registries.*10\.95\.0\.1:5000/);
});

test('an app of 3 instances serves through the VIP; a killed process restarts; a failing version rolls back', async () => {
  assert.ok(manager && worker, 'the engine nodes were deployed');
  const t0 = Date.now();
  await api('POST', '/apps', SPEC);
  await until(
    '3 instances running and v1 through the VIP',
    async () => (running(await app()).length === 3 && (await viaVip()) === 'v1' ? true : undefined),
    600_000,
  );
  figures.push(`declaration -> serving through the VIP (3 instances) ${seconds(Date.now() - t0)}`);
  const a1 = await app();
  // Per-instance host ports: 3 instances on 2 nodes, each its own published port.
  assert.deepEqual(
    [...new Set(running(a1).map((i) => i.node))].sort(),
    [manager.name, worker.name].sort(),
    JSON.stringify(a1.instances),
  );
  const first = await srvMatches('serving');
  assert.equal(first.length, 3);

  // 4. Kill one instance's process on the worker: the engine restarts it.
  const before = restarts(a1);
  const pid = await ssh(
    worker.ip!,
    "docker inspect -f '{{.State.Pid}}' $(docker ps -q --filter label=corral.app=web | head -n 1)",
  );
  assert.match(pid, /^\d+$/, `the app's PID on ${worker.name}: ${pid}`);
  const t1 = Date.now();
  await ssh(worker.ip!, `kill -KILL ${pid}`);
  await until(
    'the killed instance restarted (restarts +1, 3 running)',
    async () => {
      const a = await app();
      return restarts(a) > before && running(a).length === 3 ? a : undefined;
    },
    300_000,
  );
  figures.push(`restart after SIGKILL of the app's process ${seconds(Date.now() - t1)}`);
  await srvMatches('after the restart');

  // 5. A version whose health check fails: the engine's health gate stops it and rolls back.
  const t2 = Date.now();
  await api('PUT', '/apps/web', failingVersion(SPEC));
  const rolled = await until(
    'rollback_completed, declaration back at v1, 3 running v1',
    async () => {
      const a = await app();
      return a.update?.state === 'rollback_completed' &&
        a.version === 1 &&
        running(a).filter((i) => i.version === 1).length === 3
        ? a
        : undefined;
    },
    900_000,
  );
  figures.push(`failed rollout -> rolled back ${seconds(Date.now() - t2)}`);
  assert.match(rolled.update?.message ?? '', /rollback/i);
  await until(
    'v1 through the VIP after the rollback',
    async () => ((await viaVip()) === 'v1' ? true : undefined),
    60_000,
  );
  await srvMatches('after the rollback');
});

test('the console shows the instances, their restarts and the rollout picture', async () => {
  assert.ok(manager && worker, 'the engine nodes were deployed');
  const a = await app();
  const browser = new Browser(lab!.hostUrl);
  assert.equal((await browser.login('admin', lab!.adminPassword)).status, 303);
  const page = await (await browser.get('/apps/web')).text();
  for (const i of running(a)) {
    assert.ok(page.includes(i.node!), `the page names ${i.node}`);
    assert.ok(page.includes(String(i.ports[0]?.published)), `the page shows port ${i.ports[0]?.published}`);
  }
  assert.match(page, /[Rr]estarts/);
  // The failed version's tasks and the rollback are in the picture (versions per instance over time).
  assert.match(page, /<svg[^>]*class="rollout"/);
  const obs = (await api<{ observations: { version: number | null }[] }>('GET', '/apps/web/rollout'))
    .observations;
  assert.ok(obs.some((o) => o.version === 2) && obs.some((o) => o.version === 1), 'both versions observed');
});

test("the worker's VM is powered off: its instances move to the manager and the VIP keeps answering", async () => {
  assert.ok(manager && worker, 'the engine nodes were deployed');
  let probes = 0;
  let failures = 0;
  let probing = true;
  const prober = (async () => {
    for (let i = 0; probing && i < 2400; i++) {
      probes++;
      if ((await viaVip()) !== 'v1') failures++;
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  const t0 = Date.now();
  lab!.vms[workerVm]!.kill();
  try {
    await until(
      'SRV without the lost node',
      async () => ((await srv()).every((s) => s.endsWith(` ${manager!.name}.cluster.`)) ? true : undefined),
      300_000,
    );
    figures.push(`power loss -> SRV without the lost node ${seconds(Date.now() - t0)}`);
    await until(
      '3 instances running on the manager',
      async () => {
        const a = await app();
        const r = running(a);
        return r.length === 3 && r.every((i) => i.node === manager!.name) ? a : undefined;
      },
      600_000,
    );
    figures.push(`power loss -> 3 running on the surviving node ${seconds(Date.now() - t0)}`);
  } finally {
    probing = false;
    await prober;
  }
  figures.push(`VIP probes failed during the power loss (every 0.5 s) ${failures} of ${probes}`);
  const after = await srvMatches('after the move');
  assert.equal(after.length, 3);
  assert.equal(await viaVip(), 'v1');
  // A service that kept answering: most probes through the VIP got v1 while the node was gone.
  assert.ok(failures < probes / 2, `${failures} of ${probes} probes failed`);

  const rss = await ssh(manager.ip!, 'ps -o rss= -C dockerd,containerd');
  const mib = rss
    .split('\n')
    .filter(Boolean)
    .reduce((s, l) => s + Number(l.trim()), 0);
  figures.push(`dockerd + containerd RSS on the manager ${Math.round(mib / 1024)} MiB`);
});
