import type { MetricSample } from '../master/store/metrics.js';
import { formatBytes } from './format.js';

export interface PerfFact {
  label: string;
  value: string;
}

/** The newest sample as readable facts: the no-JavaScript view of the charts, and their legend. */
export function perfFacts(s: MetricSample | undefined): PerfFact[] {
  if (!s) return [];
  const pct = (used: number | null, total: number | null): string =>
    used !== null && total
      ? `${((used / total) * 100).toFixed(1)}% (${formatBytes(used)} of ${formatBytes(total)})`
      : '—';
  const rate = (n: number | null): string => (n === null ? '—' : `${formatBytes(n)}/s`);
  const facts: PerfFact[] = [
    { label: 'CPU', value: s.cpu === null ? '—' : `${s.cpu.toFixed(1)}%` },
    { label: 'Load (1 min)', value: s.load1 === null ? '—' : s.load1.toFixed(2) },
    { label: 'Memory', value: pct(s.memUsed, s.memTotal) },
    { label: 'Disk', value: pct(s.diskUsed, s.diskTotal) },
    { label: 'Network in', value: rate(s.netRx) },
    { label: 'Network out', value: rate(s.netTx) },
  ];
  for (const [name, p] of Object.entries(s.procs ?? {})) {
    const proc = p as { running?: boolean; cpu?: number; rssBytes?: number; memPercent?: number };
    const parts = [
      proc.running === false ? 'not running' : null,
      typeof proc.cpu === 'number' && proc.running !== false ? `CPU ${proc.cpu.toFixed(1)}%` : null,
      typeof proc.rssBytes === 'number' ? `RSS ${formatBytes(proc.rssBytes)}` : null,
      typeof proc.memPercent === 'number' && proc.running !== false
        ? `mem ${proc.memPercent.toFixed(1)}%`
        : null,
    ].filter(Boolean);
    facts.push({ label: `Process ${name}`, value: parts.join(', ') || '—' });
  }
  return facts;
}

export const RANGE_LINKS = ['15m', '1h', '6h', '24h', '7d', '30d'];
