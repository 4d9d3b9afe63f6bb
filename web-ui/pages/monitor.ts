/**
 * Chart data and the live stream. `/monitor/series.json` answers columns ready for uPlot (times and one
 * array per metric); `/monitor/stream` is server-sent events (text/event-stream): `sample` for every stored
 * sample, `alerts` when the active set changes, and `event` for each new event-log row, which is how long
 * operations (deployments, transitions) show progress without reloading.
 */
import type { Response, Router } from 'express';
import { MASTER_SOURCE } from '../../master/monitor/monitor.js';
import type { SampleEvent } from '../../master/monitor/monitor.js';
import { normaliseMac } from '../../master/nodes/inventory.js';
import { RAW_TIER, ROLLUP_TIER, type MetricSample } from '../../master/store/metrics.js';
import { CorralError } from '../../master/util/errors.js';
import { requireConsoleRole, type ConsoleContext } from '../page.js';
import { resolveSession, sessionCookie } from '../session-guard.js';

export const RANGES: Record<string, number> = {
  '15m': 900,
  '1h': 3600,
  '6h': 6 * 3600,
  '24h': 86400,
  '7d': 7 * 86400,
  '30d': 30 * 86400,
};

export function seriesSource(value: unknown): string {
  if (value === undefined || value === '' || value === MASTER_SOURCE) return MASTER_SOURCE;
  const mac = normaliseMac(String(value));
  if (!mac) throw new CorralError('MAC_INVALID', `not a source: '${String(value)}'`);
  return mac;
}

/** Columns for uPlot: x = epoch seconds; percentages for CPU, memory, disk; bytes/s for the network. */
export function toColumns(samples: readonly MetricSample[]): Record<string, (number | null)[]> {
  const pct = (used: number | null, total: number | null): number | null =>
    used !== null && total ? Math.round((used / total) * 1000) / 10 : null;
  return {
    t: samples.map((s) => s.at),
    cpu: samples.map((s) => s.cpu),
    mem: samples.map((s) => pct(s.memUsed, s.memTotal)),
    disk: samples.map((s) => pct(s.diskUsed, s.diskTotal)),
    rx: samples.map((s) => s.netRx),
    tx: samples.map((s) => s.netTx),
  };
}

/** Raw samples while the range fits in their retention, five-minute rollups beyond. */
export function tierFor(rangeSeconds: number, rawRetentionHours: number): number {
  return rangeSeconds <= rawRetentionHours * 3600 ? RAW_TIER : ROLLUP_TIER;
}

const KEEPALIVE_MS = 20_000;
/** Also how often the stream re-checks its session, so a logout ends it within this bound. */
const EVENT_POLL_MS = 2000;

function send(res: Response, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

export function mountMonitor(router: Router, ctx: ConsoleContext): void {
  router.get('/monitor/series.json', (req, res) => {
    requireConsoleRole(res, 'viewer');
    const source = seriesSource(req.query['source']);
    const range = RANGES[String(req.query['range'] ?? '1h')] ?? 3600;
    const to = Math.floor(ctx.now() / 1000) + 1;
    const tier = tierFor(range, ctx.config.monitor.rawRetentionHours);
    const samples = ctx.repos.metrics.series(source, tier, to - range, to);
    res.set('Cache-Control', 'no-store').json({
      source,
      range,
      tier: tier === RAW_TIER ? 'raw' : '5m',
      interval: ctx.config.monitor.intervalSeconds,
      columns: toColumns(samples),
      latest: samples.at(-1) ?? null,
    });
  });

  router.get('/monitor/stream', (req, res) => {
    requireConsoleRole(res, 'viewer');
    const sessionId = sessionCookie(req);
    const only = req.query['source'] ? seriesSource(req.query['source']) : undefined;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      // Reverse proxies (nginx) would otherwise buffer the stream.
      'X-Accel-Buffering': 'no',
    });
    res.write(`retry: 5000\n\n`);
    const after = Number(req.headers['last-event-id'] ?? req.query['after']);
    let lastEvent =
      Number.isFinite(after) && after > 0 ? after : (ctx.repos.events.list({ limit: 1 })[0]?.id ?? 0);
    const onSample = (e: SampleEvent): void => {
      if (!only || e.source === only)
        send(res, 'sample', { source: e.source, columns: toColumns([e.sample]) });
    };
    const onAlerts = (alerts: unknown): void => send(res, 'alerts', alerts);
    ctx.monitor?.on('sample', onSample);
    ctx.monitor?.on('alerts', onAlerts);
    const poll = setInterval(() => {
      // The session guard ran once, at connect; a stream can outlive its session by hours. Peek (not
      // touch): an open tab must not keep an idle session alive. Logout, idle or age expiry, a password
      // reset and a deleted user all end the session, and with it the stream.
      if (!resolveSession(ctx, sessionId, 'peek')) {
        send(res, 'session-ended', { login: '/login?expired=1' });
        end();
        res.end();
        return;
      }
      for (const ev of ctx.repos.events.list({ after: lastEvent, limit: 100 })) {
        if (only && only !== MASTER_SOURCE && ev.nodeMac !== only) {
          lastEvent = ev.id;
          continue;
        }
        res.write(`id: ${ev.id}\n`);
        send(res, 'event', ev);
        lastEvent = ev.id;
      }
    }, EVENT_POLL_MS);
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    const end = (): void => {
      clearInterval(poll);
      clearInterval(keepalive);
      ctx.monitor?.off('sample', onSample);
      ctx.monitor?.off('alerts', onAlerts);
    };
    req.on('close', end);
    res.on('error', end);
  });
}
