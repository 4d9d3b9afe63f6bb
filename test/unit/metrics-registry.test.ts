/**
 * The Prometheus exposition (master/metrics): names, labels and values rendered from fake subsystem stats,
 * the HTTP timer's route classes, the /metrics access rule, and the generated scrape configuration. Pure:
 * no sockets, prom-client's registry renders the text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Request, Response } from 'express';
import { createMetricsRegistry, type MetricSources } from '../../master/metrics/registry.js';
import { httpMetrics, routeClass } from '../../master/metrics/http-metrics.js';
import { requireMetricsAccess, tokenMatches } from '../../master/metrics/auth.js';
import { fileSdTargets, scrapeJobsYaml } from '../../master/metrics/scrape-config.js';
import { haFacts } from '../../master/metrics/sources.js';
import { DEPLOY_DURATION_BUCKETS } from '../../master/store/deploy-stats.js';
import { Redactor, REDACTED } from '../../master/util/redact.js';
import { testConfig } from '../helpers/repos.js';

const DHCP = {
  received: 20,
  malformed: 2,
  ignored: 3,
  discovers: 7,
  requests: 6,
  declines: 1,
  releases: 0,
  informs: 0,
  offers: 7,
  acks: 5,
  naks: 1,
  poolExhausted: 4,
  storeErrors: 0,
  sendErrors: 0,
  leasesBound: 5,
};

function sources(over: Partial<MetricSources> = {}): MetricSources {
  return {
    version: '9.9.9',
    startedAtMs: 1_700_000_000_000,
    dhcp: () => DHCP,
    tftp: () => ({ active: 1, completed: 12, failed: 2, refused: 3, clientLimited: 1, deferred: 0 }),
    faults: () => ({
      dhcp: { faults: 0, lastFault: null, dropped: 9 },
      tftp: { faults: 2, lastFault: { at: 'x', message: 'y' }, dropped: 0 },
    }),
    nodesByState: () => ({ deployed: 3, ready: 1 }),
    deploys: () => ({
      byStatus: { pending: 0, installing: 1, installed: 0, booted: 4, failed: 1 },
      durations: {
        booted: {
          buckets: DEPLOY_DURATION_BUCKETS.map((le) => ({ le, count: le >= 300 ? 4 : le >= 120 ? 1 : 0 })),
          sum: 1000,
          count: 4,
        },
        failed: {
          buckets: DEPLOY_DURATION_BUCKETS.map((le) => ({ le, count: le >= 900 ? 1 : 0 })),
          sum: 900,
          count: 1,
        },
      },
    }),
    ha: () =>
      haFacts({
        role: 'primary',
        epoch: 3,
        backup: { ackedSeq: 10, lagChanges: 2, lagSeconds: 1.5, lastContactAt: null, connected: true },
        follower: null,
      }),
    lb: () => ({
      haproxyRunning: true,
      reloads: 4,
      restarts: 0,
      servers: [
        { service: 'web', server: 'node-1', health: 'up', admin: 'ready' },
        { service: 'web', server: 'node-2', health: 'down', admin: 'drain' },
      ],
    }),
    ...over,
  };
}

/** `name{labels}` → value, from the exposition text. */
async function samples(src: MetricSources): Promise<Map<string, number>> {
  const text = await createMetricsRegistry(src).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

test('DHCP, TFTP, faults, nodes: families, labels and the subsystems’ own figures', async () => {
  const s = await samples(sources());
  assert.equal(s.get('corral_dhcp_serving'), 1);
  assert.equal(s.get('corral_dhcp_received_total{type="discover"}'), 7);
  assert.equal(s.get('corral_dhcp_received_total{type="decline"}'), 1);
  assert.equal(s.get('corral_dhcp_sent_total{type="offer"}'), 7);
  assert.equal(s.get('corral_dhcp_sent_total{type="ack"}'), 5);
  assert.equal(s.get('corral_dhcp_sent_total{type="nak"}'), 1);
  assert.equal(s.get('corral_dhcp_dropped_total{reason="malformed"}'), 2);
  assert.equal(s.get('corral_dhcp_dropped_total{reason="pool_exhausted"}'), 4);
  assert.equal(s.get('corral_dhcp_leases_bound'), 5);
  assert.equal(s.get('corral_tftp_transfers_active'), 1);
  assert.equal(s.get('corral_tftp_transfers_total{outcome="completed"}'), 12);
  assert.equal(s.get('corral_tftp_transfers_total{outcome="refused"}'), 3);
  assert.equal(s.get('corral_tftp_client_limited_total'), 1);
  assert.equal(s.get('corral_subsystem_faults_total{subsystem="tftp"}'), 2);
  assert.equal(s.get('corral_subsystem_dropped_total{subsystem="dhcp"}'), 9);
  // Every lifecycle state is present, zero included, so a rate or a sum never misses a series.
  assert.equal(s.get('corral_nodes{state="deployed"}'), 3);
  assert.equal(s.get('corral_nodes{state="failed"}'), 0);
  assert.equal(s.get('corral_build_info{version="9.9.9"}'), 1);
  assert.equal(s.get('corral_start_time_seconds'), 1_700_000_000);
});

test('deploys: status gauge and a cumulative duration histogram per outcome', async () => {
  const s = await samples(sources());
  assert.equal(s.get('corral_deployments{status="booted"}'), 4);
  assert.equal(s.get('corral_deployments{status="installing"}'), 1);
  assert.equal(s.get('corral_deploy_duration_seconds_bucket{outcome="booted",le="60"}'), 0);
  assert.equal(s.get('corral_deploy_duration_seconds_bucket{outcome="booted",le="120"}'), 1);
  assert.equal(s.get('corral_deploy_duration_seconds_bucket{outcome="booted",le="+Inf"}'), 4);
  assert.equal(s.get('corral_deploy_duration_seconds_sum{outcome="booted"}'), 1000);
  assert.equal(s.get('corral_deploy_duration_seconds_count{outcome="failed"}'), 1);
  const text = await createMetricsRegistry(sources()).text();
  assert.match(text, /^# TYPE corral_deploy_duration_seconds histogram$/m);
  assert.match(text, /^# TYPE corral_dhcp_sent_total counter$/m);
  assert.match(text, /^# TYPE corral_nodes gauge$/m);
});

test('HA and HAProxy families; a primary reports its backup’s lag, a backup its own', async () => {
  const s = await samples(sources());
  assert.equal(s.get('corral_ha_primary'), 1);
  assert.equal(s.get('corral_ha_epoch'), 3);
  assert.equal(s.get('corral_ha_replication_lag_seconds'), 1.5);
  assert.equal(s.get('corral_ha_replication_lag_changes'), 2);
  assert.equal(s.get('corral_ha_peer_connected'), 1);
  assert.equal(s.get('corral_lb_haproxy_up'), 1);
  assert.equal(s.get('corral_lb_haproxy_reloads_total'), 4);
  assert.equal(s.get('corral_lb_server_up{service="web",server="node-1",admin="ready"}'), 1);
  assert.equal(s.get('corral_lb_server_up{service="web",server="node-2",admin="drain"}'), 0);
  const backup = haFacts({
    role: 'backup',
    epoch: 3,
    backup: null,
    follower: {
      peerUrl: 'https://x',
      connected: false,
      appliedSeq: 1,
      primaryLastSeq: 9,
      primaryEpoch: 3,
      lagChanges: 8,
      lagSeconds: 42,
      lastContactAt: null,
      lastError: null,
      discarded: 0,
    },
  });
  assert.deepEqual(backup, { role: 'backup', epoch: 3, lagSeconds: 42, lagChanges: 8, peerConnected: false });
});

test('a subsystem that is off has no samples (not zeros that look like a quiet server)', async () => {
  const s = await samples(
    sources({ dhcp: () => undefined, tftp: undefined, ha: undefined, lb: () => undefined }),
  );
  assert.equal(s.get('corral_dhcp_serving'), 0);
  assert.equal([...s.keys()].filter((k) => k.startsWith('corral_dhcp_sent_total')).length, 0);
  assert.equal(
    [...s.keys()].filter((k) => k.startsWith('corral_tftp_') || k.startsWith('corral_ha_')).length,
    0,
  );
  assert.equal([...s.keys()].filter((k) => k.startsWith('corral_lb_')).length, 0);
});

test('HTTP requests: timed by route class, method and status; a path never becomes a label', async () => {
  assert.equal(routeClass('/api/v1/nodes/52:54:00:00:00:01'), 'api');
  assert.equal(routeClass('/api/v1/enlist'), 'enlist');
  assert.equal(routeClass('/boot/ipxe'), 'boot');
  assert.equal(routeClass('/static/console.css'), 'static');
  assert.equal(routeClass('/metrics'), 'metrics');
  assert.equal(routeClass('/nodes/node-1'), 'console');
  const reg = createMetricsRegistry(sources());
  const mw = httpMetrics(reg.httpDuration);
  for (const [path, method, status] of [
    ['/api/v1/nodes', 'GET', 200],
    ['/api/v1/nodes', 'GET', 200],
    ['/boot/ipxe', 'GET', 404],
    ['/x', 'BREW', 405],
  ] as const) {
    const res = Object.assign(new EventEmitter(), { statusCode: status });
    let nexted = false;
    mw({ path, method } as Request, res as unknown as Response, () => (nexted = true));
    assert.ok(nexted);
    res.emit('finish');
  }
  const text = await reg.text();
  assert.match(
    text,
    /^corral_http_request_duration_seconds_count\{route="api",method="GET",status="200"\} 2$/m,
  );
  assert.match(
    text,
    /^corral_http_request_duration_seconds_count\{route="boot",method="GET",status="404"\} 1$/m,
  );
  assert.match(
    text,
    /^corral_http_request_duration_seconds_count\{route="console",method="other",status="405"\} 1$/m,
  );
  assert.match(
    text,
    /^corral_http_request_duration_seconds_bucket\{le="0.005",route="api",method="GET",status="200"\} \d$/m,
  );
});

/** Runs the access rule on a fake request; returns the refusal's status and code, or 'next'. */
function access(token: string | undefined, from: string, authorization?: string): string {
  let out = 'next';
  const res = {
    status(code: number) {
      out = String(code);
      return this;
    },
    json(body: { error: { code: string } }) {
      out += ` ${body.error.code}`;
      return this;
    },
  };
  requireMetricsAccess(token)(
    {
      socket: { remoteAddress: from },
      headers: authorization ? { authorization } : {},
    } as unknown as Request,
    res as unknown as Response,
    () => undefined,
  );
  return out;
}

test('/metrics access: loopback always; elsewhere the bearer token, or nothing without one', () => {
  const token = 'a-token-of-sixteen-plus';
  assert.equal(access(undefined, '127.0.0.1'), 'next');
  assert.equal(access(undefined, '::ffff:127.0.0.1'), 'next');
  assert.equal(access(undefined, '10.0.0.9'), '403 METRICS_LOOPBACK_ONLY');
  assert.equal(access(undefined, '10.0.0.9', `Bearer ${token}`), '403 METRICS_LOOPBACK_ONLY');
  assert.equal(access(token, '10.0.0.9'), '401 METRICS_AUTH_REQUIRED');
  assert.equal(access(token, '10.0.0.9', `Bearer ${token}x`), '401 METRICS_AUTH_REQUIRED');
  assert.equal(access(token, '10.0.0.9', `Basic ${token}`), '401 METRICS_AUTH_REQUIRED');
  assert.equal(access(token, '10.0.0.9', `Bearer ${token}`), 'next');
  assert.equal(access(token, '::1'), 'next');
  assert.equal(tokenMatches(`bearer ${token}`, token), true);
  assert.equal(tokenMatches(undefined, token), false);
});

test('scrape config: the master and one labelled group per node; two jobs told apart by corral_kind', () => {
  const groups = fileSdTargets({
    master: '10.0.0.1:80',
    nodeExporterPort: 9100,
    nodes: [
      { name: 'node-1', mac: '52:54:00:00:00:01', ip: '10.0.0.11', role: 'web' },
      { name: 'node-2', mac: '52:54:00:00:00:02', ip: '10.0.0.12', role: null },
    ],
  });
  assert.deepEqual(groups, [
    { targets: ['10.0.0.1:80'], labels: { corral_kind: 'master' } },
    {
      targets: ['10.0.0.11:9100'],
      labels: {
        corral_kind: 'node',
        corral_node: 'node-1',
        corral_mac: '52:54:00:00:00:01',
        corral_role: 'web',
      },
    },
    {
      targets: ['10.0.0.12:9100'],
      labels: { corral_kind: 'node', corral_node: 'node-2', corral_mac: '52:54:00:00:00:02' },
    },
  ]);
  const yml = scrapeJobsYaml({
    fileSdPath: '/etc/prometheus/corral targets.json',
    tokenFile: '/etc/prometheus/t',
  });
  assert.equal(
    yml,
    [
      'scrape_configs:',
      '  - job_name: "corral-master"',
      '    scrape_interval: 15s',
      '    metrics_path: /metrics',
      '    authorization:',
      '      credentials_file: "/etc/prometheus/t"',
      '    file_sd_configs:',
      '      - files: ["/etc/prometheus/corral targets.json"]',
      '    relabel_configs:',
      '      - source_labels: [corral_kind]',
      '        regex: master',
      '        action: keep',
      '  - job_name: "corral-nodes"',
      '    scrape_interval: 15s',
      '    file_sd_configs:',
      '      - files: ["/etc/prometheus/corral targets.json"]',
      '    relabel_configs:',
      '      - source_labels: [corral_kind]',
      '        regex: node',
      '        action: keep',
      '',
    ].join('\n'),
  );
  assert.doesNotMatch(scrapeJobsYaml({ fileSdPath: '/x' }), /authorization/);
});

test('metrics.token is a secret: hidden by its key and by its value wherever it turns up', () => {
  const config = testConfig({ metrics: { token: 'prometheus-scrape-token-42' } });
  assert.equal(config.metrics.token, 'prometheus-scrape-token-42');
  assert.equal(config.metrics.nodeExporterPort, 9100);
  const r = new Redactor();
  r.addFromConfig(config);
  assert.equal(
    r.text('Authorization: Bearer prometheus-scrape-token-42'),
    `Authorization: Bearer ${REDACTED}`,
  );
  assert.equal((r.value(config) as { metrics: { token: string } }).metrics.token, REDACTED);
  assert.throws(() => testConfig({ metrics: { token: 'short' } }), /metrics\.token/);
});
