/**
 * Apps (issue 21), the pure parts: the declaration's validation, the docker arguments an app becomes, the
 * instance table from the engine's tasks, the quorum note and the rollout picture.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AppSpecSchema } from '../../master/apps/app-spec.js';
import { serviceCreateArgs, serviceUpdateArgs, shellJoin } from '../../master/apps/docker-args.js';
import { engineLayer } from '../../master/apps/engine-layer.js';
import { parseYaml } from '../../master/cloudinit/yaml.js';
import { installPath } from '../../master/util/paths.js';
import { createRenderer } from '../../web-ui/render.js';
import { rolloutSvg } from '../../master/apps/rollout-picture.js';
import { quorumNote } from '../../master/apps/swarm.js';
import { instancesOf, publishedText, type EngineTask } from '../../master/apps/tasks.js';
import { Apps, hash } from '../../master/apps/service.js';
import { APPS_CONFIG_DEFAULTS } from '../../master/apps/config.js';
import type { Docker, DockerResult } from '../../master/apps/engine.js';
import type { LoadBalancer } from '../../master/lb/load-balancer.js';
import { ServiceSpecSchema, type ServiceSpec } from '../../master/lb/service-spec.js';
import { silentLogger } from '../../master/util/logger.js';
import { tempRepos } from '../helpers/repos.js';

const base = AppSpecSchema.parse({
  name: 'web',
  command: ['sh', '-c', "echo it's up"],
  instances: 3,
  placement: { tag: 'edge' },
  ports: [{ port: 8000, lbPort: 80 }],
  env: { B: '2', A: '1' },
  healthCheck: { command: ['wget', '-q', 'http://127.0.0.1:8000/'] },
});

test('an app becomes docker service create: host network, labels, constraints, spread, policies', () => {
  assert.deepEqual(serviceCreateArgs(base, 1, 'reg:5000/corral/base:debian-12'), [
    'service', 'create', '--detach', '--name', 'web', '--network', 'host',
    '--label', 'corral.app=web', '--container-label', 'corral.app=web', '--container-label', 'corral.version=1',
    '--constraint', 'node.labels.corral.tag.edge==true', '--placement-pref', 'spread=node.id',
    '--replicas-max-per-node', '1', '--env', 'A=1', '--env', 'B=2',
    '--health-cmd', 'wget -q http://127.0.0.1:8000/', '--health-interval', '5s', '--health-timeout', '3s',
    '--health-retries', '3', '--health-start-period', '0s',
    '--replicas', '3', '--stop-grace-period', '10s', '--restart-condition', 'any', '--restart-delay', '1s', '--restart-max-attempts', '0',
    '--update-parallelism', '1', '--update-delay', '5s', '--update-failure-action', 'rollback',
    '--update-monitor', '10s', '--update-order', 'stop-first', '--rollback-parallelism', '1',
    '--rollback-delay', '0s', '--rollback-monitor', '10s', '--rollback-failure-action', 'pause',
    'reg:5000/corral/base:debian-12', 'sh', '-c', "echo it's up",
  ]); // prettier-ignore
});

test('an update adds and removes env and constraints, relabels the version, quotes args for the shell', () => {
  const next = AppSpecSchema.parse({ ...base, env: { A: '1', C: 'x y' }, placement: { role: 'web' } });
  const args = serviceUpdateArgs(base, next, 1, 2, 'img:2');
  const at = (flag: string): string[] => args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));
  assert.deepEqual(at('--container-label-add'), ['corral.version=2']);
  assert.deepEqual(at('--env-rm'), ['B']);
  assert.deepEqual(at('--env-add'), ['C=x y']);
  assert.deepEqual(at('--constraint-rm'), ['node.labels.corral.tag.edge==true']);
  assert.deepEqual(at('--constraint-add'), ['node.labels.corral.role==web']);
  assert.deepEqual(at('--args'), [`sh -c 'echo it'\\''s up'`]);
  assert.equal(args[args.length - 1], 'web');
  // Same version (only instances changed): no relabel, so the engine does not replace the tasks.
  assert.deepEqual(
    serviceUpdateArgs(base, { ...base, instances: 5 }, 1, 1, 'img').filter(
      (a) => a === '--container-label-add',
    ),
    [],
  );
});

const bridged = AppSpecSchema.parse({
  name: 'api',
  image: 'reg:5000/api:1',
  instances: 4,
  network: 'bridge',
  ports: [
    { port: 8000, lbPort: 80 },
    { port: 5353, protocol: 'udp' },
  ],
});

test('a bridge app publishes each port in host mode with no published port, and may share nodes', () => {
  assert.equal(base.network, 'host');
  assert.deepEqual(serviceCreateArgs(bridged, 1, 'reg:5000/api:1'), [
    'service', 'create', '--detach', '--name', 'api',
    '--publish', 'mode=host,target=8000,protocol=tcp', '--publish', 'mode=host,target=5353,protocol=udp',
    '--label', 'corral.app=api', '--container-label', 'corral.app=api', '--container-label', 'corral.version=1',
    '--placement-pref', 'spread=node.id', '--no-healthcheck',
    '--replicas', '4', '--stop-grace-period', '10s', '--restart-condition', 'any', '--restart-delay', '1s', '--restart-max-attempts', '0',
    '--update-parallelism', '1', '--update-delay', '5s', '--update-failure-action', 'rollback',
    '--update-monitor', '10s', '--update-order', 'stop-first', '--rollback-parallelism', '1',
    '--rollback-delay', '0s', '--rollback-monitor', '10s', '--rollback-failure-action', 'pause',
    'reg:5000/api:1',
  ]); // prettier-ignore
  assert.deepEqual(serviceUpdateArgs(bridged, { ...bridged, instances: 6 }, 1, 1, 'reg:5000/api:1'), [
    'service', 'update', '--detach', '--image', 'reg:5000/api:1', '--args', '',
    '--replicas-max-per-node', '0', '--no-healthcheck',
    '--replicas', '6', '--stop-grace-period', '10s', '--restart-condition', 'any', '--restart-delay', '1s', '--restart-max-attempts', '0',
    '--update-parallelism', '1', '--update-delay', '5s', '--update-failure-action', 'rollback',
    '--update-monitor', '10s', '--update-order', 'stop-first', '--rollback-parallelism', '1',
    '--rollback-delay', '0s', '--rollback-monitor', '10s', '--rollback-failure-action', 'pause',
    'api',
  ]); // prettier-ignore
  // The host app's update keeps its one-per-node limit.
  const hostUpdate = serviceUpdateArgs(base, base, 1, 1, 'img');
  assert.equal(hostUpdate[hostUpdate.indexOf('--replicas-max-per-node') + 1], '1');
});

test('shell quoting survives quotes, spaces and $', () => {
  assert.equal(shellJoin(['a', 'b c', "d'e", '$HOME']), `a 'b c' 'd'\\''e' '$HOME'`);
});

test('declarations are refused with the field named', () => {
  const bad = (input: unknown): string => {
    const r = AppSpecSchema.safeParse(input);
    assert.equal(r.success, false);
    return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
  };
  assert.match(bad({ name: 'web' }), /command: give a command, an image, or both/);
  assert.match(bad({ name: 'Web', image: 'x' }), /^name:/);
  assert.match(bad({ name: 'web', image: 'x; rm -rf /' }), /^image:/);
  assert.match(
    bad({ name: 'web', image: 'x', placement: { role: 'a', tag: 'b' } }),
    /role or a tag, not both/,
  );
  assert.match(
    bad({
      name: 'web',
      image: 'x',
      ports: [
        { port: 1, lbPort: 2 },
        { port: 3, lbPort: 4 },
      ],
    }),
    /one port/,
  );
  assert.match(bad({ name: 'web', image: 'x', env: { 'A-B': '1' } }), /env/);
  assert.match(bad({ name: 'web', image: 'x', network: 'overlay' }), /^network:/);
});

const task = (
  id: string,
  slot: number,
  version: number,
  state: string,
  desired: string,
  created: string,
): EngineTask => ({
  ID: id,
  Slot: slot,
  NodeID: `node-${id}`,
  CreatedAt: created,
  DesiredState: desired,
  Status: { State: state },
  Spec: { ContainerSpec: { Labels: { 'corral.version': String(version) } } },
});

test('instances: the current task per slot, restarts counted within its version', () => {
  const inst = instancesOf(
    [
      task('a', 1, 1, 'failed', 'shutdown', '2026-01-01T00:00:01Z'),
      task('b', 1, 1, 'running', 'running', '2026-01-01T00:00:05Z'),
      task('c', 2, 1, 'shutdown', 'shutdown', '2026-01-01T00:00:01Z'),
      task('d', 2, 2, 'starting', 'running', '2026-01-01T00:00:06Z'),
    ],
    (id) => id.toUpperCase(),
  );
  assert.deepEqual(
    inst.map((i) => [i.slot, i.state, i.node, i.version, i.restarts]),
    [
      [1, 'running', 'NODE-B', 1, 1],
      [2, 'starting', 'NODE-D', 2, 0],
    ],
  );
});

test("instances: a task's host-mode published ports, as docker inspect reports them", () => {
  const [t] = JSON.parse(`[{"ID":"x1","Slot":1,"NodeID":"n1","CreatedAt":"2026-01-01T00:00:01Z",
    "DesiredState":"running","Spec":{"ContainerSpec":{"Labels":{"corral.version":"3"}}},
    "Status":{"Timestamp":"2026-01-01T00:00:02Z","State":"running","Message":"started",
      "ContainerStatus":{"ContainerID":"c1","PID":42,"ExitCode":0},
      "PortStatus":{"Ports":[{"Protocol":"tcp","TargetPort":8000,"PublishedPort":30001,"PublishMode":"host"},
        {"Protocol":"udp","TargetPort":5353,"PublishedPort":0,"PublishMode":"host"}]}}}]`) as EngineTask[];
  const [i] = instancesOf([t!], () => 'dep-1');
  assert.deepEqual(i!.ports, [{ target: 8000, published: 30001, protocol: 'tcp' }]);
  // A host-network task has an empty PortStatus.
  assert.deepEqual(instancesOf([task('a', 1, 1, 'running', 'running', 'x')], (id) => id)[0]!.ports, []);
});

const ok = (stdout: string): DockerResult => ({ ok: true, stdout, stderr: '', error: null });

/** A manager running `api` as declared, with three bridge tasks: two on dep-1, one on dep-2. */
class BridgeEngine implements Docker {
  constructor(private readonly applied: string) {}
  async run(_node: unknown, args: readonly string[]): Promise<DockerResult> {
    const [a, b] = args;
    if (a === 'service' && b === 'inspect')
      return ok(
        JSON.stringify([
          {
            Spec: {
              Labels: { 'corral.app': 'api', 'corral.applied': this.applied },
              TaskTemplate: { ContainerSpec: { Labels: { 'corral.version': '1' } } },
            },
          },
        ]),
      );
    if (a === 'service' && b === 'ps') return ok('t1\nt2\nt3\nt4\n');
    if (a === 'inspect') {
      const t = (id: string, slot: number, node: string, published: number, state = 'running') => ({
        ID: id,
        Slot: slot,
        NodeID: node,
        CreatedAt: '2026-01-01T00:00:01Z',
        DesiredState: 'running',
        Spec: { ContainerSpec: { Labels: { 'corral.version': '1' } } },
        Status: {
          State: state,
          PortStatus: {
            Ports: [{ Protocol: 'tcp', TargetPort: 8000, PublishedPort: published, PublishMode: 'host' }],
          },
        },
      });
      return ok(
        JSON.stringify([
          t('t1', 1, 'dep-2', 30003),
          t('t2', 2, 'dep-1', 30002),
          t('t3', 3, 'dep-1', 30001),
          t('t4', 4, 'dep-3', 30004, 'starting'),
        ]),
      );
    }
    return { ok: false, stdout: '', stderr: `not scripted: ${args.join(' ')}`, error: 'exited 1' };
  }
}

/** The load balancer's side Apps uses: its services and putService, recorded. */
function lbStub(): { lb: LoadBalancer; puts: unknown[] } {
  let stored: ServiceSpec[] = [];
  const puts: unknown[] = [];
  const lb = {
    enabled: true,
    services: () => stored,
    putService: async (input: unknown) => {
      puts.push(input);
      const spec = ServiceSpecSchema.parse(input);
      stored = [spec];
      return spec;
    },
  };
  return { lb: lb as unknown as LoadBalancer, puts };
}

test('a bridge app is balanced over its running instances, each on the port the engine published for it', async () => {
  const t = tempRepos();
  const spec = AppSpecSchema.parse({ ...bridged, ports: [{ port: 8000, lbPort: 80 }] });
  const { lb, puts } = lbStub();
  const apps = new Apps({
    config: APPS_CONFIG_DEFAULTS,
    repos: t.repos,
    docker: new BridgeEngine(hash(JSON.stringify(spec))),
    logger: silentLogger(),
    baseImage: 'reg:5000/corral/base',
    lb,
  });
  type Reconciling = { reconcileApp(name: string, m: unknown): Promise<void> };
  const reconcile = (): Promise<void> =>
    (apps as unknown as Reconciling).reconcileApp('api', { name: 'm', mac: 'm', host: '10.0.0.1' });
  try {
    await apps.put(spec, 'admin', 'create');
    await reconcile();
    assert.equal(puts.length, 1);
    const want = puts[0] as Record<string, unknown>;
    assert.deepEqual(want['members'], [
      { node: 'dep-1', port: 30001 },
      { node: 'dep-1', port: 30002 },
      { node: 'dep-2', port: 30003 },
    ]);
    assert.equal(want['nodes'], undefined);
    assert.equal(want['backendPort'], 8000);
    assert.deepEqual(
      apps.get('api').instances.map((i) => `${i.node} ${publishedText(i)}`),
      ['dep-2 30003->8000/tcp', 'dep-1 30002->8000/tcp', 'dep-1 30001->8000/tcp', 'dep-3 30004->8000/tcp'],
    );
    // The same members again: nothing to change.
    await reconcile();
    assert.equal(puts.length, 1);
  } finally {
    t.cleanup();
  }
});

test('the network of an app, and the ports of a bridge app, cannot change: remove it and declare it again', async () => {
  const t = tempRepos();
  const docker: Docker = { run: async () => ({ ok: false, stdout: '', stderr: 'no', error: 'exited 1' }) };
  const apps = new Apps({
    config: APPS_CONFIG_DEFAULTS,
    repos: t.repos,
    docker,
    logger: silentLogger(),
    baseImage: 'reg:5000/corral/base',
  });
  try {
    await apps.put(base, 'admin', 'create');
    await assert.rejects(apps.put({ ...base, network: 'bridge' }, 'admin', 'replace'), {
      code: 'CONFLICT',
      message: "app 'web' runs on the host network, which cannot change: remove the app and declare it again",
    });
    assert.equal(apps.get('web').spec.network, 'host');
    await apps.put(bridged, 'admin', 'create');
    await assert.rejects(apps.put({ ...bridged, network: 'host' }, 'admin', 'replace'), { code: 'CONFLICT' });
    await assert.rejects(apps.put({ ...bridged, ports: [{ port: 8001 }] }, 'admin', 'replace'), {
      code: 'CONFLICT',
      message: /ports of app 'api' \(bridge network\) cannot change/,
    });
    // Its instances, and a host app's ports, may change.
    await apps.put({ ...bridged, instances: 8 }, 'admin', 'replace');
    await apps.put({ ...base, ports: [{ port: 9000, lbPort: 81 }] }, 'admin', 'replace');
  } finally {
    t.cleanup();
  }
});

test('fewer than three managers is said plainly', () => {
  assert.equal(quorumNote(3), null);
  assert.match(quorumNote(1)!, /no quorum tolerance/);
  assert.match(quorumNote(0)!, /no swarm manager/);
});

test('the rollout picture: one cell per slot and moment, coloured by version, escaped', () => {
  const svg = rolloutSvg([
    { app: 'web', at: 't1', slot: 1, version: 1, state: 'running', node: 'n<1>' },
    { app: 'web', at: 't2', slot: 1, version: 2, state: 'starting', node: 'n1' },
    { app: 'web', at: 't2', slot: 2, version: 1, state: 'running', node: 'n2' },
  ]);
  assert.equal((svg.match(/data-version=/g) ?? []).length, 3);
  assert.match(svg, /data-version="2" data-state="starting"/);
  assert.ok(!svg.includes('n<1>'));
  assert.match(svg, /instance 2/);
});

test('the engine nodes cloud-init layer: daemon.json trusts the master registry, and parses as YAML', () => {
  const parsed = parseYaml(engineLayer('10.0.0.1:5000'));
  assert.ok('value' in parsed);
  const value = parsed.value as { write_files: { path: string; content: string }[]; runcmd: string[][] };
  assert.equal(value.write_files[0]!.path, '/etc/docker/daemon.json');
  assert.deepEqual(JSON.parse(value.write_files[0]!.content), { 'insecure-registries': ['10.0.0.1:5000'] });
  assert.deepEqual(value.runcmd, [['systemctl', 'restart', 'docker']]);
});

test('the console pages render the engine, the instances and the rollout picture', () => {
  const renderer = createRenderer({
    viewsDir: installPath('web-ui', 'views'),
    now: () => Date.parse('2026-12-06T12:00:00Z'),
  });
  const engine = {
    engineNodes: 2,
    managers: 2,
    wantedManagers: 3,
    quorumNote: quorumNote(2),
    nodes: [{ name: 'n1', role: 'leader', state: 'ready', availability: 'active' }],
  };
  const app = {
    name: 'web',
    spec: base,
    version: 2,
    engineVersion: 2,
    update: { state: 'updating', message: null },
    instances: [
      { slot: 1, state: 'running', node: 'n1', version: 2, restarts: 3, error: null, ports: [] },
      {
        slot: 2,
        state: 'running',
        node: 'n1',
        version: 2,
        restarts: 0,
        error: null,
        ports: [{ target: 8000, published: 30002, protocol: 'tcp' }],
      },
    ],
    lbService: 'web',
    error: null,
  };
  const list = renderer.render('apps', { apps: [app], engine });
  assert.match(list, /data-quorum>2 manager\(s\), fewer than 3/);
  assert.match(list, /href="\/apps\/web"/);
  const page = renderer.render('app', {
    app,
    command: base.command!.join(' '),
    rollout: rolloutSvg([{ app: 'web', at: 't1', slot: 1, version: 2, state: 'running', node: 'n1' }]),
    logs: ['2026-12-06T12:00:00Z web.1 start'],
    logError: null,
    canAdmin: true,
  });
  assert.match(
    page,
    /<tr data-slot="1"><td class="num">1<\/td><td>running<\/td><td>n1<\/td><td>v2<\/td><td class="num">3<\/td>/,
  );
  assert.match(
    page,
    /<tr data-slot="2"><td class="num">2<\/td><td>running<\/td><td>n1 <span class="mono" data-published="30002" title="its port 8000\/tcp">:30002<\/span><\/td>/,
  );
  assert.match(page, /<svg[^>]*class="rollout"/);
  assert.match(page, /web\.1 start/);
  assert.match(page, /action="\/apps\/web\/revert"/);
});
