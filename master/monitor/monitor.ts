/**
 * Performance monitoring: samples the master on a timer, stores node reports, keeps the series pruned
 * (raw for `rawRetentionHours`, five-minute rollups for `rollupRetentionDays`), and turns alert rules into
 * events: `alert.raised` when a condition starts, `alert.cleared` when it ends. Listeners (the console's
 * live stream) hear every stored sample and alert change.
 */
import { EventEmitter } from 'node:events';
import type { MonitorConfig } from './config.js';
import type { MetricSample } from '../store/metrics.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { evaluateAlerts, type Alert } from './alerts.js';
import type { Sampler } from './sampler.js';

export const MASTER_SOURCE = 'master';

export interface ActiveAlert extends Alert {
  /** ISO time the alert was raised. */
  since: string;
}

export interface MonitorOptions {
  repos: Pick<Repos, 'events' | 'metrics' | 'nodes'>;
  config: { monitor: MonitorConfig };
  logger: Logger;
  sampler: Sampler;
  now?: () => number;
  /** Seconds the HA backup is behind, when the HA subsystem knows (issue #8). */
  backupLagSeconds?: () => number | undefined;
}

export interface SampleEvent {
  source: string;
  sample: MetricSample;
}

export class Monitor extends EventEmitter<{ sample: [SampleEvent]; alerts: [ActiveAlert[]] }> {
  private timer: NodeJS.Timeout | undefined;
  private readonly active = new Map<string, ActiveAlert>();
  private ticks = 0;
  private busy = false;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly options: MonitorOptions) {
    super();
    this.now = options.now ?? Date.now;
    this.log = options.logger.child({ module: 'monitor' });
  }

  start(): void {
    if (this.timer) return;
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.options.config.monitor.intervalSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  alerts(): ActiveAlert[] {
    return [...this.active.values()];
  }

  /** One round: sample the master, store it, evaluate alerts, prune now and then. Overlapping rounds are skipped. */
  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const sample = await this.options.sampler();
      this.options.repos.metrics.record(MASTER_SOURCE, sample);
      this.emit('sample', { source: MASTER_SOURCE, sample });
      this.evaluate();
      if (this.ticks++ % 60 === 0) this.prune();
    } catch (err) {
      this.log.warn({ err }, 'sampling the master failed');
    } finally {
      this.busy = false;
    }
  }

  /** A node's own report (POST /api/v1/nodes/:mac/metrics); `at` is the master's clock, not the node's. */
  recordNode(mac: string, sample: Omit<MetricSample, 'at'>): MetricSample {
    const full: MetricSample = { ...sample, procs: null, at: Math.floor(this.now() / 1000) };
    this.options.repos.metrics.record(mac, full);
    this.emit('sample', { source: mac, sample: full });
    if (this.active.has(`node.down:${mac}`)) this.evaluate();
    return full;
  }

  evaluate(): void {
    const { repos, config } = this.options;
    const wanted = evaluateAlerts({
      master: repos.metrics.latest(MASTER_SOURCE),
      lastReports: repos.metrics.lastReports(),
      nodes: repos.nodes.listStates(),
      nowSeconds: this.now() / 1000,
      // Nodes are expected at the collector's pace when it runs (slower than the master's by default).
      intervalSeconds: Math.max(config.monitor.intervalSeconds, config.monitor.nodeSshSeconds),
      nodeDownIntervals: config.monitor.nodeDownIntervals,
      diskAlertPercent: config.monitor.diskAlertPercent,
      backupLagSeconds: this.options.backupLagSeconds?.(),
    });
    let changed = false;
    const keys = new Set(wanted.map((a) => a.key));
    for (const a of wanted) {
      if (this.active.has(a.key)) continue;
      this.active.set(a.key, { ...a, since: new Date(this.now()).toISOString() });
      this.record('alert.raised', a.severity, a.message, a);
      changed = true;
    }
    for (const [key, a] of this.active) {
      if (keys.has(key)) continue;
      this.active.delete(key);
      this.record('alert.cleared', 'info', `Resolved: ${a.message}`, a);
      changed = true;
    }
    if (changed) this.emit('alerts', this.alerts());
  }

  private record(kind: string, severity: 'info' | 'warning' | 'error', message: string, a: Alert): void {
    try {
      this.options.repos.events.append({
        kind,
        severity,
        message,
        actor: 'monitor',
        nodeMac: a.nodeMac ?? null,
        data: { alert: a.kind, key: a.key },
      });
    } catch (err) {
      // A backup master refuses writes; the alert still shows on its console.
      this.log.warn({ err, alert: a.key }, 'could not record the alert event');
    }
  }

  prune(): void {
    const nowS = Math.floor(this.now() / 1000);
    const m = this.options.config.monitor;
    const removed = this.options.repos.metrics.prune(
      nowS - m.rawRetentionHours * 3600,
      nowS - m.rollupRetentionDays * 86400,
    );
    if (removed) this.log.debug({ removed }, 'pruned old metrics');
  }
}
