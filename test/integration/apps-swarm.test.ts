/**
 * Apps on the cluster engine (issue 21), against real peers: four engine nodes (namespaces on a bridge,
 * each with OpenSSH and its own dockerd), the real `corral master` driving them over SSH, HAProxy on the
 * master, curl from a client namespace. One lab, the scenario in order: the swarm forms (3 managers),
 * an app with 3 instances serves through HAProxy, a killed container is restarted by the engine, a stopped
 * node's instance is rescheduled while the service keeps answering, and a version whose health check fails
 * stops rolling out and is rolled back while the old version answers. Figures are printed (docs/apps.md).
 * Four nodes, not three: an app with ports runs at most one instance per node (host networking), so a
 * lost node's instance needs a free node to move to.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { requirePeers, requireRoot } from '../helpers/peers.js';
import { SwarmLab, IMAGE } from '../helpers/swarm-lab.js';

interface Instance {
  slot: number;
  state: string;
  node: string | null;
  version: number | null;
  restarts: number;
}
interface App {
  name: string;
  version: number;
  engineVersion: number | null;
  update: { state: string; message: string | null } | null;
  instances: Instance[];
  lbService: string | null;
}

const LB_PORT = 9080;
let lab: SwarmLab;
let passed = false;

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end)
      throw new Error(`timed out after ${ms} ms waiting for ${what}\n${lab.masterLog().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const app = async (): Promise<App> => (await lab.api<{ app: App }>('GET', '/apps/web')).app;
const running = (a: App): Instance[] => a.instances.filter((i) => i.state === 'running');

before(async () => {
  requireRoot('network namespaces and dockerd');
  requirePeers('dockerd', 'docker', '/usr/sbin/sshd', 'haproxy', 'curl', 'busybox');
  lab = await SwarmLab.start(4, {
    reconcileSeconds: 2,
    commandTimeoutSeconds: 30,
    engine: { heartbeatSeconds: 1 },
  });
});

after(async () => {
  // The master's log tells what the engine said when a step did not happen.
  if (!passed) console.log(lab?.masterLog().slice(-6000));
  await lab?.destroy();
});

test(
  'apps on a swarm: serve, restart, reschedule, failed rollout rolls back',
  { timeout: 420_000 },
  async () => {
    // The swarm forms from the inventory: 3 managers of 4 engine nodes, no quorum note.
    const engine = await until(
      'the swarm with 3 managers',
      async () => {
        const e = (
          await lab.api<{
            engine: { managers: number; quorumNote: string | null; nodes: { role: string }[] };
          }>('GET', '/apps/engine')
        ).engine;
        return e.managers === 3 && e.nodes.every((n) => n.role !== 'none') ? e : undefined;
      },
      60_000,
    );
    assert.equal(engine.quorumNote, null);
    // The engine nodes' cloud-init layer (dockerd trusts the master registry) was stored at start.
    const layers = (
      await lab.api<{ layers: { scope: string; target: string; content: string }[] }>(
        'GET',
        '/cloud-init/layers',
      )
    ).layers;
    assert.match(
      layers.find((l) => l.scope === 'tag' && l.target === 'engine')?.content ?? '',
      /insecure-registries.*10\.89\.0\.1:5000/,
    );
    assert.equal(engine.nodes.filter((n) => n.role === 'worker').length, 1);

    const spec = {
      name: 'web',
      image: IMAGE,
      command: [
        'sh',
        '-c',
        'echo "start $V"; mkdir -p /w && echo "$V" > /w/index.html && exec httpd -f -p 8000 -h /w',
      ],
      instances: 3,
      ports: [{ port: 8000, lbPort: LB_PORT }],
      env: { V: 'v1' },
      healthCheck: {
        command: ['wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8000/'],
        intervalSeconds: 1,
        timeoutSeconds: 1,
        retries: 2,
      },
      // httpd as PID 1 ignores SIGTERM: without this every stop waits docker's default 10 s.
      stopGraceSeconds: 1,
      restart: { condition: 'any', delaySeconds: 0 },
      update: { parallelism: 1, delaySeconds: 1, failureAction: 'rollback', monitorSeconds: 4 },
    };
    const t0 = Date.now();
    await lab.api('POST', '/apps', spec);
    await until(
      '3 running instances behind HAProxy',
      async () => {
        const a = await app();
        return running(a).length === 3 && a.lbService === 'web' && lab.fetch(LB_PORT)?.trim() === 'v1'
          ? a
          : undefined;
      },
      60_000,
    );
    const declToServing = Date.now() - t0;
    console.log(`# serving after ${declToServing} ms`);
    const nodesOf = (a: App): Set<string | null> => new Set(running(a).map((i) => i.node));
    assert.equal(nodesOf(await app()).size, 3, 'spread: one instance per node');
    const lbSvc = (await lab.api<{ service: { spec: { nodes: string[] } } }>('GET', '/services/web')).service;
    assert.equal(lbSvc.spec.nodes.length, 3);

    // Kill the process in one container: the engine starts a new task in its slot (restarts goes up).
    const before1 = await app();
    const victim = before1.instances[0]!;
    const node = lab.nodes.find((n) => n.name === victim.node)!;
    const t1 = Date.now();
    const cid = lab.docker(node, ['ps', '-q', '--filter', 'label=corral.app=web']).trim().split('\n')[0]!;
    lab.docker(node, ['kill', cid]);
    await until(
      'the killed instance restarted',
      async () => {
        const i = (await app()).instances.find((x) => x.slot === victim.slot);
        return i && i.restarts > victim.restarts && i.state === 'running' ? i : undefined;
      },
      60_000,
    );
    const restartMs = Date.now() - t1;
    console.log(`# restarted after ${restartMs} ms`);

    // Stop one node's engine: its instance moves to the free node; the service answers throughout.
    // Not the raft leader's: with the leader gone too the swarm first elects a new one and its workers
    // reconnect, and one run under load (coordinator, load ~10) saw no reschedule within 90 s; that case
    // is a limit written in docs/apps.md, not what this step measures.
    const now = await app();
    const roles = (
      await lab.api<{ engine: { nodes: { name: string; role: string }[] } }>('GET', '/apps/engine')
    ).engine.nodes;
    const leader = roles.find((r) => r.role === 'leader')?.name;
    const lostName = running(now).find((i) => i.node !== leader)!.node;
    const lost = lab.nodes.find((n) => n.name === lostName)!;
    const t2 = Date.now();
    await lab.stopDockerd(lost);
    let failures = 0;
    let probes = 0;
    const moved = await until(
      'the lost node instance rescheduled',
      async () => {
        probes++;
        if (lab.fetch(LB_PORT) === null) failures++;
        const a = await app();
        return running(a).length === 3 && !nodesOf(a).has(lost.name) ? a : undefined;
      },
      90_000,
    );
    const rescheduleMs = Date.now() - t2;
    console.log(`# rescheduled after ${rescheduleMs} ms`);
    assert.equal(nodesOf(moved).size, 3);
    await until(
      'HAProxy members without the lost node',
      async () => {
        const s = (await lab.api<{ service: { spec: { nodes: string[] } } }>('GET', '/services/web')).service;
        return s.spec.nodes.includes(lost.name) ? undefined : s;
      },
      30_000,
    );
    assert.equal(lab.fetch(LB_PORT)?.trim(), 'v1');

    // A version whose health check fails: the rollout stops and the engine rolls back; v1 still answers.
    const t3 = Date.now();
    let lastState: string | undefined;
    let lastSeen = '';
    await lab.api('PUT', '/apps/web', {
      ...spec,
      env: { V: 'v2' },
      healthCheck: { ...spec.healthCheck, command: ['false'] },
    });
    const back = await until(
      'the rollback of version 2',
      async () => {
        const a = await app();
        if (a.update?.state !== lastState)
          console.log(`# ${Date.now() - t3} ms: rollout ${(lastState = a.update?.state)}`);
        lastSeen = JSON.stringify({ version: a.version, update: a.update, instances: a.instances });
        return a.version === 1 && a.update?.state === 'rollback_completed' && running(a).length === 3
          ? a
          : undefined;
      },
      // 24 s and 80 s measured (load 3 and ~10): the engine's own monitor and rollback pace, not ours.
      200_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message.split('\n')[0]}; last seen: ${lastSeen}`);
    });
    const rolloutMs = Date.now() - t3;
    assert.ok(
      back.instances.every((i) => i.version === 1),
      JSON.stringify(back.instances),
    );
    assert.equal(lab.fetch(LB_PORT)?.trim(), 'v1');
    const rollout = (
      await lab.api<{ observations: { version: number | null }[] }>('GET', '/apps/web/rollout')
    ).observations;
    assert.ok(
      rollout.some((o) => o.version === 2),
      'the rollout picture saw version 2',
    );
    const logs = (await lab.api<{ lines: string[] }>('GET', '/apps/web/logs?tail=20')).lines;
    assert.ok(
      logs.some((l) => l.includes('start v1')),
      logs.join('\n'),
    );

    const rss = lab.nodes.filter((n) => n !== lost).map((n) => Math.round(lab.engineRssKiB(n) / 1024));
    console.log(
      `# apps figures: declaration->serving (3 instances) ${declToServing} ms; restart after kill ${restartMs} ms; ` +
        `reschedule after dockerd stop ${rescheduleMs} ms (${failures}/${probes} probes through HAProxy failed meanwhile); ` +
        `failed rollout -> rolled back ${rolloutMs} ms; dockerd+containerd RSS per node ${rss.join(', ')} MiB`,
    );
    passed = true;
  },
);
