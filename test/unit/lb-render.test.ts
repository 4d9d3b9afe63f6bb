/**
 * The load balancer's pure parts: service validation, membership from the inventory, haproxy.cfg
 * rendering (golden file, and accepted by the real `haproxy -c`), and the runtime API parsers on answers
 * captured from HAProxy 2.6. HAProxy binding a VIP it does not hold (a namespace) is
 * test/integration/lb-vip-bind.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { golden } from '../helpers/golden.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { membersOf } from '../../master/lb/membership.js';
import { parseHaproxyVersion, renderHaproxyConfig } from '../../master/lb/render.js';
import { ServiceSpecSchema } from '../../master/lb/service-spec.js';
import { forcedAdmin, healthOf, parseServersState, parseShowStat } from '../../master/lb/stat.js';
import type { NodeRecord, NodeState } from '../../master/store/nodes.js';
import { installPath } from '../../master/util/paths.js';
import { frontendAddress } from '../../master/lb/load-balancer.js';
import { testConfig } from '../helpers/repos.js';
import { nodeRecord } from '../helpers/node-record.js';

function node(name: string, state: NodeState, role: string | null, ip: string | null, n: number): NodeRecord {
  return nodeRecord({
    mac: `52:54:00:00:00:${n.toString(16).padStart(2, '0')}`,
    name,
    seqNo: n,
    ip,
    state,
    role,
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
  });
}

const NODES = [
  node('node-10', 'deployed', 'app', '10.0.0.20', 10),
  node('node-2', 'deployed', 'app', '10.0.0.12', 2),
  node('node-3', 'retiring', 'app', '10.0.0.13', 3),
  node('node-4', 'failed', 'app', '10.0.0.14', 4),
  node('node-5', 'deployed', 'db', '10.0.0.15', 5),
  node('node-6', 'diskless', 'app', '10.0.0.16', 6),
  node('node-7', 'deployed', 'app', null, 7),
  node('node-8', 'deploying', 'app', '10.0.0.18', 8),
];

const web = ServiceSpecSchema.parse({
  name: 'web',
  port: 8080,
  role: 'app',
  backendPort: 8000,
  check: { type: 'http', path: '/healthz', expectStatus: 204 },
  intervalMs: 500,
  rise: 2,
  fall: 2,
});
const db = ServiceSpecSchema.parse({
  name: 'pg',
  port: 5432,
  protocol: 'tcp',
  nodes: ['node-5', '52:54:00:00:00:0a'],
  backendPort: 5432,
  balance: 'leastconn',
});

test('service spec: defaults, exactly one of role/nodes, safe names and paths', () => {
  assert.deepEqual(
    { ...db, nodes: undefined },
    {
      name: 'pg',
      port: 5432,
      protocol: 'tcp',
      nodes: undefined,
      backendPort: 5432,
      balance: 'leastconn',
      check: { type: 'tcp' },
      intervalMs: 2000,
      rise: 2,
      fall: 3,
    },
  );
  const bad = (body: Record<string, unknown>): string => {
    const r = ServiceSpecSchema.safeParse({ name: 'x', port: 80, backendPort: 80, role: 'app', ...body });
    assert.equal(r.success, false, JSON.stringify(body));
    return r.error!.issues[0]!.path.join('.');
  };
  assert.equal(bad({ nodes: ['a'] }), 'role');
  assert.equal(bad({ members: [{ node: 'a', port: 30001 }] }), 'role');
  assert.equal(bad({ role: undefined, members: [] }), 'members');
  assert.equal(bad({ role: undefined, members: [{ node: 'a', port: 0 }] }), 'members.0.port');
  assert.equal(bad({ role: undefined }), 'role');
  assert.equal(bad({ name: 'Web Front' }), 'name');
  assert.equal(bad({ port: 0 }), 'port');
  assert.equal(bad({ check: { type: 'http', path: '/a b' } }), 'check.path');
  assert.equal(bad({ check: { type: 'http', path: '/\nbind :1' } }), 'check.path');
  assert.equal(bad({ extra: 1 }), '');
});

test('membership: deployed or diskless nodes with an address and the role (or listed), natural order', () => {
  assert.deepEqual(
    membersOf(web, NODES).map((m) => `${m.name}=${m.address}:${m.port}`),
    ['node-2=10.0.0.12:8000', 'node-6=10.0.0.16:8000', 'node-10=10.0.0.20:8000'],
  );
  assert.deepEqual(
    membersOf(db, NODES).map((m) => m.name),
    ['node-5', 'node-10'],
  );
  assert.deepEqual(membersOf(web, []), []);
});

test('membership of a members service: one server per instance, named <node>-p<port>, on serving nodes only', () => {
  const nodes = [
    node('dep-1', 'deployed', null, '10.0.0.31', 31),
    node('dep-2', 'deployed', null, '10.0.0.32', 32),
    node('dep-3', 'retiring', null, '10.0.0.33', 33),
  ];
  const api = ServiceSpecSchema.parse({
    name: 'api',
    port: 80,
    protocol: 'tcp',
    backendPort: 8000,
    members: [
      { node: 'dep-2', port: 30003 },
      { node: 'dep-1', port: 30002 },
      { node: '52:54:00:00:00:1f', port: 30001 },
      { node: 'dep-1', port: 30001 },
      { node: 'dep-3', port: 30004 },
      { node: 'gone', port: 30005 },
    ],
  });
  const servers = membersOf(api, nodes);
  assert.deepEqual(
    servers.map((m) => `${m.name} ${m.node} ${m.address}:${m.port}`),
    [
      'dep-1-p30001 dep-1 10.0.0.31:30001',
      'dep-1-p30002 dep-1 10.0.0.31:30002',
      'dep-2-p30003 dep-2 10.0.0.32:30003',
    ],
  );
  // Role, tag and nodes services keep the node's name as the server's.
  assert.deepEqual(
    membersOf(web, NODES).map((m) => m.name === m.node),
    [true, true, true],
  );
  const text = renderHaproxyConfig({
    bind: '10.0.0.1',
    paths: { adminSocket: '/run/a.sock', serverStateFile: '/run/state' },
    services: [{ spec: api, servers }],
  });
  assert.match(
    text,
    /server dep-1-p30001 10\.0\.0\.31:30001\n\s+server dep-1-p30002 10\.0\.0\.31:30002\n\s+server dep-2-p30003 10\.0\.0\.32:30003\n/,
  );
});

test('haproxy.cfg renders to the golden file, and the real haproxy -c accepts it', () => {
  const text = renderHaproxyConfig({
    version: [2, 6],
    bind: '10.0.0.1',
    paths: {
      adminSocket: '/var/lib/corral/haproxy/admin.sock',
      serverStateFile: '/var/lib/corral/haproxy/server-state',
    },
    services: [
      { spec: web, servers: membersOf(web, NODES) },
      { spec: db, servers: membersOf(db, NODES) },
      { spec: { ...web, name: 'empty', port: 8081, role: 'none' }, servers: [] },
    ],
  });
  golden('lb/haproxy-three-services.cfg', text);

  const dir = mkdtempSync(join(tmpdir(), 'corral-lb-'));
  try {
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, text.replaceAll('/var/lib/corral/haproxy', dir));
    execFileSync('haproxy', ['-c', '-q', '-f', file], { stdio: 'pipe' });
    // And the check is real: a broken line is refused.
    writeFileSync(file, text.replace('balance roundrobin', 'balance nosuchalgo'));
    assert.throws(() => execFileSync('haproxy', ['-c', '-q', '-f', file], { stdio: 'pipe' }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Captured from HAProxy 2.6.12 on loopback: node-1 up, node-2 refused, node-3 drained, node-4 in
// maintenance, node-5 answering 503 (see docs/load-balancing.md for how to capture again).
const SHOW_STAT = readFileSync(installPath('test', 'fixtures', 'lb', 'show-stat.csv'), 'utf8');
const SERVERS_STATE = readFileSync(installPath('test', 'fixtures', 'lb', 'show-servers-state.txt'), 'utf8');

test('show stat: servers only, with health, check result and sessions', () => {
  const rows = parseShowStat(SHOW_STAT);
  assert.deepEqual(
    rows.map((r) => [r.server, r.status, r.health, r.checkStatus, r.checkCode, r.checkDesc]),
    [
      ['node-1', 'UP', 'up', 'L7OK', 200, 'Layer7 check passed'],
      ['node-2', 'DOWN', 'down', 'L4CON', null, 'Layer4 connection problem'],
      ['node-3', 'DRAIN', 'drain', 'L7OK', 200, 'Layer7 check passed'],
      ['node-4', 'MAINT', 'maint', '', null, ''],
      ['node-5', 'DOWN', 'down', 'L7STS', 503, 'Layer7 wrong status'],
    ],
  );
  assert.equal(rows[0]?.totalSessions, 2);
  assert.equal(rows[1]?.lastChangeSeconds, 3);
  assert.equal(healthOf('DOWN 1/2'), 'down');
  assert.equal(healthOf('UP 1/2'), 'up');
  assert.equal(healthOf('no check'), 'unchecked');
  assert.deepEqual(parseShowStat(''), []);
});

test('show servers state: operational and forced admin states', () => {
  const rows = parseServersState(SERVERS_STATE);
  assert.deepEqual(
    rows.map((r) => [r.server, r.opState, forcedAdmin(r.adminState)]),
    [
      ['node-1', 2, 'ready'],
      ['node-2', 0, 'ready'],
      ['node-3', 2, 'drain'],
      ['node-4', 0, 'maint'],
      ['node-5', 0, 'ready'],
    ],
  );
  assert.deepEqual(parseServersState('1\n# be_id be_name\n'), []);
  assert.equal(forcedAdmin(0x02), 'ready', 'inherited maintenance is not an operator state');
  assert.equal(forcedAdmin(0x09), 'maint', 'forced maintenance wins over drain');
});

test('directives follow the HAProxy version: idle-close-on-response only from 2.7', () => {
  assert.deepEqual(
    parseHaproxyVersion('HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/'),
    [2, 6],
  );
  assert.deepEqual(parseHaproxyVersion('HA-Proxy version 1.8.19 2019/02/11'), [1, 8]);
  assert.equal(parseHaproxyVersion('nginx version: nginx/1.22.1'), undefined);
  const render = (version: [number, number]): string =>
    renderHaproxyConfig({
      version,
      bind: '10.0.0.1',
      paths: { adminSocket: '/a', serverStateFile: '/s' },
      services: [],
    });
  assert.doesNotMatch(render([2, 6]), /idle-close-on-response/);
  assert.match(render([2, 8]), /^ {4}idle-close-on-response$/m);
  assert.match(render([3, 0]), /^ {4}idle-close-on-response$/m);
});

test('front ends bind the VIP under HA, with transparent so the backup listens before it holds the VIP', () => {
  assert.equal(frontendAddress(testConfig()), '10.99.0.1', 'no HA: the master address');
  const ha = testConfig({
    ha: { enabled: true, token: 't'.repeat(32), peerUrl: 'https://10.99.0.2', vip: '10.99.0.50/24' },
  });
  assert.equal(frontendAddress(ha), '10.99.0.50', 'HA: the VIP, without its prefix length');
  assert.equal(frontendAddress(testConfig({ lb: { bind: '10.99.0.7' } })), '10.99.0.7', 'lb.bind wins');

  const text = renderHaproxyConfig({
    bind: '10.99.0.50',
    nonLocalBind: true,
    paths: { adminSocket: '/a', serverStateFile: '/s' },
    services: [{ spec: web, servers: [] }],
  });
  assert.match(text, /^ {4}bind 10\.99\.0\.50:8080 transparent$/m);
});
