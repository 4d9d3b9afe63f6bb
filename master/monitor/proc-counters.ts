/**
 * The master's network byte counters (/proc/net/dev) and CPU times (/proc/stat), read asynchronously
 * (proc(5)). systeminformation's `networkStats('*')` lists the interfaces with `networkInterfaces()`,
 * which on Linux runs several `execSync` children per interface, and its `currentLoad()` runs
 * `execSync('cat /proc/stat | grep cpu')`: each blocks the event loop until a fork of the ~200 MiB master
 * exits. In a boot storm at N=250 that was 1.4 s (network) and then 0.7 s (CPU) of a blocked loop in
 * 38 s, the largest stalls the iPXE script requests waited behind (docs/scale.md, "sixth session").
 */
import { readFile } from 'node:fs/promises';

export interface NetBytes {
  rx: number;
  tx: number;
}

/**
 * Sums received and transmitted bytes over every interface but loopback. /proc/net/dev has two header
 * lines, then `name: rx_bytes rx_packets errs drop fifo frame compressed multicast tx_bytes ...`.
 * Undefined when no line parses (not Linux's format).
 */
export function parseNetDev(text: string): NetBytes | undefined {
  let rx = 0;
  let tx = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const fields = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (!name || name === 'lo' || fields.length < 9) continue;
    const [r, t] = [fields[0], fields[8]];
    if (!Number.isFinite(r) || !Number.isFinite(t)) continue;
    rx += r!;
    tx += t!;
    seen = true;
  }
  return seen ? { rx, tx } : undefined;
}

/** The counters now, or undefined where /proc/net/dev cannot be read. */
export async function readNetBytes(path = '/proc/net/dev'): Promise<NetBytes | undefined> {
  try {
    return parseNetDev(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The aggregate `cpu` line of /proc/stat, in USER_HZ ticks: all of them, and the idle ones. */
export interface CpuTimes {
  total: number;
  idle: number;
}

/**
 * `cpu  user nice system idle iowait irq softirq steal guest guest_nice`: total is the first eight
 * (guest time is already inside user), idle is idle + iowait (a CPU waiting on I/O is not busy).
 */
export function parseProcStat(text: string): CpuTimes | undefined {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  const f = line?.slice(4).trim().split(/\s+/).slice(0, 8).map(Number) ?? [];
  if (f.length < 5 || f.some((n) => !Number.isFinite(n))) return undefined;
  return { total: f.reduce((a, b) => a + b, 0), idle: f[3]! + f[4]! };
}

/** Busy share of all CPUs between two readings, in percent; null without time between them. */
export function cpuBusyPercent(before: CpuTimes, after: CpuTimes): number | null {
  const total = after.total - before.total;
  if (total <= 0) return null;
  return Math.min(100, Math.max(0, (1 - (after.idle - before.idle) / total) * 100));
}

/** The CPU times now, or undefined where /proc/stat cannot be read. */
export async function readCpuTimes(path = '/proc/stat'): Promise<CpuTimes | undefined> {
  try {
    return parseProcStat(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}
