/**
 * The master's Prometheus exposition (issue 19). Every family but the HTTP ones is read at scrape time
 * from the subsystem that already counts it (DHCP's and TFTP's `stats()`, the fault registry, the store,
 * the HA controller, the load balancer), so no feature's code carries a Prometheus counter and the
 * figures are the same ones GET /api/v1/health shows. HTTP requests are observed as they finish, by
 * one middleware (http-metrics.ts).
 *
 * Names follow Prometheus' conventions (https://prometheus.io/docs/practices/naming/): a `corral_`
 * prefix, base units (seconds), `_total` on counters. docs/metrics.md lists every family.
 */
import { Histogram, Registry, type Metric } from 'prom-client';
import type { DhcpStats } from '../dhcp/server.js';
import type { TftpStats } from '../tftp/server.js';
import type { SubsystemHealth } from '../util/faults.js';
import type { DeployStats } from '../store/deploy-stats.js';
import { NODE_STATES } from '../store/nodes.js';
import { DEPLOY_STATUSES } from '../store/deployments.js';

export interface HaFacts {
  role: 'primary' | 'backup';
  epoch: number;
  /** Age of the oldest change the peer has not applied (primary: the backup's acks; backup: its own). */
  lagSeconds: number | null;
  /** Changes behind, where known (the primary knows the backup's). */
  lagChanges: number | null;
  /** The primary: whether the backup is in contact; the backup: whether it follows the primary. */
  peerConnected: boolean;
}

export interface LbFacts {
  haproxyRunning: boolean;
  reloads: number;
  restarts: number;
  servers: { service: string; server: string; health: string; admin: string }[];
}

/** Where the values come from; a missing source (DHCP off, no HA) leaves its families without samples. */
export interface MetricSources {
  version: string;
  startedAtMs: number;
  dhcp?: () => DhcpStats | undefined;
  tftp?: () => TftpStats | undefined;
  faults?: () => Record<string, SubsystemHealth>;
  nodesByState?: () => Record<string, number>;
  deploys?: () => DeployStats;
  ha?: () => HaFacts | undefined;
  lb?: () => LbFacts | undefined;
}

type Labels = Record<string, string>;
interface Sample {
  labels?: Labels;
  value: number;
  metricName?: string;
}

/**
 * A family whose samples are computed when Prometheus scrapes. prom-client's registry asks a metric for
 * `get()`; its Gauge/Counter classes would keep a second copy of numbers the subsystems already keep.
 */
class SourcedFamily {
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    private readonly read: () => Sample[],
  ) {}

  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.read(),
    };
  }
}

export interface MetricsRegistry {
  registry: Registry;
  /** Observed by the HTTP middleware (route class, method, status). */
  httpDuration: Histogram<'route' | 'method' | 'status'>;
  /** The exposition text (Prometheus text format 0.0.4). */
  text(): Promise<string>;
  contentType: string;
}

/** Seconds buckets for HTTP: boot scripts and API calls are milliseconds, kernel and image downloads long. */
export const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30, 120];

export function createMetricsRegistry(src: MetricSources): MetricsRegistry {
  const registry = new Registry();
  const add = (name: string, help: string, type: SourcedFamily['type'], read: () => Sample[]): void =>
    registry.registerMetric(new SourcedFamily(name, help, type, read) as unknown as Metric);

  add('corral_build_info', 'The running Corral version (always 1).', 'gauge', () => [
    { labels: { version: src.version }, value: 1 },
  ]);
  add('corral_start_time_seconds', 'When the master process started (Unix time).', 'gauge', () => [
    { value: src.startedAtMs / 1000 },
  ]);

  const dhcp = (pick: (s: DhcpStats) => Sample[]) => (): Sample[] => {
    const s = src.dhcp?.();
    return s ? pick(s) : [];
  };
  add(
    'corral_dhcp_serving',
    'Whether this master serves DHCP now (1), or not (0: off, or an HA backup).',
    'gauge',
    () => (src.dhcp ? [{ value: src.dhcp() ? 1 : 0 }] : []),
  );
  add(
    'corral_dhcp_received_total',
    'DHCP messages received, by type (RFC 2131 section 3); `other` is anything not counted by type.',
    'counter',
    dhcp((s) => [
      { labels: { type: 'discover' }, value: s.discovers },
      { labels: { type: 'request' }, value: s.requests },
      { labels: { type: 'decline' }, value: s.declines },
      { labels: { type: 'release' }, value: s.releases },
      { labels: { type: 'inform' }, value: s.informs },
    ]),
  );
  add(
    'corral_dhcp_sent_total',
    'DHCP replies sent, by type.',
    'counter',
    dhcp((s) => [
      { labels: { type: 'offer' }, value: s.offers },
      { labels: { type: 'ack' }, value: s.acks },
      { labels: { type: 'nak' }, value: s.naks },
    ]),
  );
  add(
    'corral_dhcp_dropped_total',
    'DHCP datagrams not answered, by reason: malformed, ignored (not for us, unknown client in proxy mode...), pool_exhausted, store_error, send_error.',
    'counter',
    dhcp((s) => [
      { labels: { reason: 'malformed' }, value: s.malformed },
      { labels: { reason: 'ignored' }, value: s.ignored },
      { labels: { reason: 'pool_exhausted' }, value: s.poolExhausted },
      { labels: { reason: 'store_error' }, value: s.storeErrors },
      { labels: { reason: 'send_error' }, value: s.sendErrors },
    ]),
  );
  add(
    'corral_dhcp_leases_bound',
    'Leases bound now.',
    'gauge',
    dhcp((s) => [{ value: s.leasesBound }]),
  );

  const tftp = (pick: (s: TftpStats) => Sample[]) => (): Sample[] => {
    const s = src.tftp?.();
    return s ? pick(s) : [];
  };
  add(
    'corral_tftp_transfers_active',
    'TFTP transfers in progress.',
    'gauge',
    tftp((s) => [{ value: s.active }]),
  );
  add(
    'corral_tftp_transfers_total',
    'TFTP requests by outcome: completed, failed (timed out or aborted), refused (ERROR before any data).',
    'counter',
    tftp((s) => [
      { labels: { outcome: 'completed' }, value: s.completed },
      { labels: { outcome: 'failed' }, value: s.failed },
      { labels: { outcome: 'refused' }, value: s.refused },
    ]),
  );
  add(
    'corral_tftp_client_limited_total',
    'Of the refused TFTP requests: those over the per-client limit (tftp.maxPerClient).',
    'counter',
    tftp((s) => [{ value: s.clientLimited }]),
  );

  const faults = (pick: (h: SubsystemHealth) => number) => (): Sample[] =>
    Object.entries(src.faults?.() ?? {}).map(([subsystem, h]) => ({ labels: { subsystem }, value: pick(h) }));
  add(
    'corral_subsystem_faults_total',
    'Exceptions caught at a subsystem boundary (one request lost, the master still serving).',
    'counter',
    faults((h) => h.faults),
  );
  add(
    'corral_subsystem_dropped_total',
    'Datagrams dropped before parsing for an impossible source address or port.',
    'counter',
    faults((h) => h.dropped),
  );

  add('corral_nodes', 'Nodes in the inventory, by lifecycle state.', 'gauge', () => {
    if (!src.nodesByState) return [];
    const counts = src.nodesByState();
    return NODE_STATES.map((state) => ({ labels: { state }, value: counts[state] ?? 0 }));
  });

  add(
    'corral_deployments',
    'Deployments by status (pending, installing, installed: in flight; booted: succeeded; failed).',
    'gauge',
    () => {
      if (!src.deploys) return [];
      const d = src.deploys();
      return DEPLOY_STATUSES.map((status) => ({ labels: { status }, value: d.byStatus[status] }));
    },
  );
  add(
    'corral_deploy_duration_seconds',
    'Duration of finished deployments (created to booted or failed), by outcome.',
    'histogram',
    () => {
      if (!src.deploys) return [];
      const d = src.deploys();
      return (['booted', 'failed'] as const).flatMap((outcome) => {
        const h = d.durations[outcome];
        return [
          ...h.buckets.map((b) => ({
            metricName: 'corral_deploy_duration_seconds_bucket',
            labels: { outcome, le: String(b.le) },
            value: b.count,
          })),
          {
            metricName: 'corral_deploy_duration_seconds_bucket',
            labels: { outcome, le: '+Inf' },
            value: h.count,
          },
          { metricName: 'corral_deploy_duration_seconds_sum', labels: { outcome }, value: h.sum },
          { metricName: 'corral_deploy_duration_seconds_count', labels: { outcome }, value: h.count },
        ];
      });
    },
  );

  const ha = (pick: (h: HaFacts) => Sample[]) => (): Sample[] => {
    const h = src.ha?.();
    return h ? pick(h) : [];
  };
  add(
    'corral_ha_primary',
    'HA role: 1 on the primary (VIP holder, serves DHCP and writes), 0 on the backup.',
    'gauge',
    ha((h) => [{ value: h.role === 'primary' ? 1 : 0 }]),
  );
  add(
    'corral_ha_epoch',
    'Replication epoch (bumped by each promotion).',
    'gauge',
    ha((h) => [{ value: h.epoch }]),
  );
  add(
    'corral_ha_replication_lag_seconds',
    'Age of the oldest change the backup has not applied (0 when in step).',
    'gauge',
    ha((h) => (h.lagSeconds === null ? [] : [{ value: h.lagSeconds }])),
  );
  add(
    'corral_ha_replication_lag_changes',
    'Changes the backup has not acknowledged (primary side).',
    'gauge',
    ha((h) => (h.lagChanges === null ? [] : [{ value: h.lagChanges }])),
  );
  add(
    'corral_ha_peer_connected',
    'Whether the HA peer is in contact (primary: the backup acknowledges; backup: it follows the primary).',
    'gauge',
    ha((h) => [{ value: h.peerConnected ? 1 : 0 }]),
  );

  const lb = (pick: (l: LbFacts) => Sample[]) => (): Sample[] => {
    const l = src.lb?.();
    return l ? pick(l) : [];
  };
  add(
    'corral_lb_haproxy_up',
    'Whether HAProxy runs under the master (1) or not (0).',
    'gauge',
    lb((l) => [{ value: l.haproxyRunning ? 1 : 0 }]),
  );
  add(
    'corral_lb_haproxy_reloads_total',
    'HAProxy seamless reloads.',
    'counter',
    lb((l) => [{ value: l.reloads }]),
  );
  add(
    'corral_lb_haproxy_restarts_total',
    'HAProxy restarts after it exited.',
    'counter',
    lb((l) => [{ value: l.restarts }]),
  );
  add(
    'corral_lb_server_up',
    "A service's backend server: 1 when HAProxy's health check says UP, else 0 (admin: ready, drain, maint).",
    'gauge',
    lb((l) =>
      l.servers.map((s) => ({
        labels: { service: s.service, server: s.server, admin: s.admin },
        value: s.health === 'up' ? 1 : 0,
      })),
    ),
  );

  const httpDuration = new Histogram({
    name: 'corral_http_request_duration_seconds',
    help: 'HTTP requests served by the master, by route class (api, enlist, boot, console, static, metrics), method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: HTTP_BUCKETS,
    registers: [registry],
  });

  return {
    registry,
    httpDuration,
    text: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
