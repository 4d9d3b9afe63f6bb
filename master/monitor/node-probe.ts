/**
 * What the master runs on a deployed node to sample it (one short POSIX sh command, no agent), the pure
 * parser of its output, and the step from two successive readings to a metrics sample. Counters in /proc
 * (CPU jiffies, interface bytes) only mean something as a difference, so the first reading of a node, or
 * one after its counters went backwards (a reboot), yields no CPU % and no network rate.
 */
import type { MetricSample } from '../store/metrics.js';

/**
 * Sections start with an `@name` line so a missing or failing part (no MemAvailable before Linux 3.14, a
 * df error) leaves only its own field empty. `;` rather than `&&` for the same reason. LC_ALL=C keeps df's
 * header parseable; `-Pk` asks for one line per filesystem in 1024-byte blocks, and the header is still
 * read because GNU df gives 512-byte blocks under POSIXLY_CORRECT. Works with GNU coreutils and busybox.
 */
export const NODE_PROBE_COMMAND = [
  'echo @stat',
  'head -n 1 /proc/stat',
  'echo @meminfo',
  "grep -E '^(MemTotal|MemAvailable):' /proc/meminfo",
  'echo @df',
  'LC_ALL=C df -Pk /',
  'echo @net',
  'cat /proc/net/dev',
  'echo @loadavg',
  'cat /proc/loadavg',
].join('; ');

/** One reading of a node; every field is null when its section was missing or unparseable. */
export interface NodeProbe {
  /** Jiffies since boot: all (user … steal) and busy (all minus idle and iowait). */
  cpuTotal: number | null;
  cpuBusy: number | null;
  memTotal: number | null;
  memAvailable: number | null;
  diskUsed: number | null;
  diskTotal: number | null;
  /** Byte counters since boot, summed over all interfaces but loopback. */
  netRxBytes: number | null;
  netTxBytes: number | null;
  load1: number | null;
}

export type NodeMetrics = Omit<MetricSample, 'at' | 'procs'>;

/** A probe with the master's clock (ms) at the moment its output arrived. */
export interface TimedProbe {
  at: number;
  probe: NodeProbe;
}

function sections(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split(/\r?\n/)) {
    const m = /^@([a-z]+)$/.exec(line.trim());
    if (m) {
      current = [];
      out.set(m[1]!, current);
    } else if (current && line.trim()) current.push(line);
  }
  return out;
}

/** A decimal counter, or null: a node's output is not trusted to be well-formed. */
function count(s: string | undefined): number | null {
  if (s === undefined || !/^\d+$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * proc(5): the `cpu` line holds user nice system idle iowait irq softirq steal guest guest_nice. guest and
 * guest_nice are already counted in user and nice, so the total is the first eight; idle + iowait is idle.
 */
function parseCpu(lines: readonly string[]): Pick<NodeProbe, 'cpuTotal' | 'cpuBusy'> {
  const fields = (lines[0] ?? '').trim().split(/\s+/);
  if (fields[0] !== 'cpu' || fields.length < 5) return { cpuTotal: null, cpuBusy: null };
  const values = fields.slice(1, 9).map(count);
  if (values.some((v) => v === null)) return { cpuTotal: null, cpuBusy: null };
  const v = values as number[];
  const total = v.reduce((s, n) => s + n, 0);
  return { cpuTotal: total, cpuBusy: total - (v[3] ?? 0) - (v[4] ?? 0) };
}

/** `MemTotal:  24684084 kB`; the kernel always prints kB (= KiB). */
function parseMeminfo(lines: readonly string[]): Pick<NodeProbe, 'memTotal' | 'memAvailable'> {
  const get = (key: string): number | null => {
    for (const l of lines) {
      const m = /^(\w+):\s+(\d+)\s+kB$/.exec(l.trim());
      if (m && m[1] === key) {
        const kb = count(m[2]);
        return kb === null ? null : kb * 1024;
      }
    }
    return null;
  };
  return { memTotal: get('MemTotal'), memAvailable: get('MemAvailable') };
}

/**
 * POSIX df -P: a header naming the block size (`1024-blocks`, `512-blocks`), then one line "filesystem
 * blocks used available capacity mountpoint". Read from the end: a filesystem name may contain spaces.
 */
function parseDf(lines: readonly string[]): Pick<NodeProbe, 'diskUsed' | 'diskTotal'> {
  const none = { diskUsed: null, diskTotal: null };
  const unit = /\b(\d+)-blocks\b/.exec(lines[0] ?? '');
  const row = lines[1]?.trim().split(/\s+/);
  if (!unit || !row || row.length < 6) return none;
  const blockSize = count(unit[1]);
  const [blocks, used] = [count(row.at(-5)), count(row.at(-4))];
  if (!blockSize || blocks === null || used === null) return none;
  return { diskUsed: used * blockSize, diskTotal: blocks * blockSize };
}

/**
 * /proc/net/dev: two header lines, then "iface: rx_bytes rx_packets … (8 receive fields) tx_bytes …".
 * Old kernels print no space after the colon, so the name is split off at the colon.
 */
function parseNetDev(lines: readonly string[]): Pick<NodeProbe, 'netRxBytes' | 'netTxBytes'> {
  let rx = 0;
  let tx = 0;
  let seen = false;
  for (const l of lines) {
    const colon = l.indexOf(':');
    if (colon < 0) continue;
    const name = l.slice(0, colon).trim();
    if (!name || name.includes('|') || name === 'lo') continue;
    const f = l
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    const [r, t] = [count(f[0]), count(f[8])];
    if (r === null || t === null) continue;
    rx += r;
    tx += t;
    seen = true;
  }
  return seen ? { netRxBytes: rx, netTxBytes: tx } : { netRxBytes: null, netTxBytes: null };
}

function parseLoad(lines: readonly string[]): number | null {
  const first = (lines[0] ?? '').trim().split(/\s+/)[0] ?? '';
  if (!/^\d+(\.\d+)?$/.test(first)) return null;
  return Number(first);
}

export function parseNodeProbe(text: string): NodeProbe {
  const s = sections(text);
  const get = (name: string): string[] => s.get(name) ?? [];
  return {
    ...parseCpu(get('stat')),
    ...parseMeminfo(get('meminfo')),
    ...parseDf(get('df')),
    ...parseNetDev(get('net')),
    load1: parseLoad(get('loadavg')),
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Δ of a counter, or null when either side is unknown or it went backwards (reboot, counter reset). */
function delta(cur: number | null, prev: number | null | undefined): number | null {
  if (cur === null || prev === null || prev === undefined || cur < prev) return null;
  return cur - prev;
}

/**
 * The sample for the newest reading: levels (memory, disk, load) from it alone, rates (CPU %, bytes/s)
 * from its difference to the previous reading of the same node.
 */
export function nodeSample(cur: TimedProbe, prev?: TimedProbe): NodeMetrics {
  const p = cur.probe;
  const q = prev?.probe;
  const seconds = prev ? (cur.at - prev.at) / 1000 : 0;
  const total = delta(p.cpuTotal, q?.cpuTotal);
  const busy = delta(p.cpuBusy, q?.cpuBusy);
  const rate = (c: number | null, before: number | null | undefined): number | null => {
    const d = delta(c, before);
    return d === null || seconds <= 0 ? null : round(d / seconds);
  };
  return {
    cpu: total && busy !== null ? round(Math.min(100, (busy / total) * 100)) : null,
    memUsed: p.memTotal !== null && p.memAvailable !== null ? Math.max(0, p.memTotal - p.memAvailable) : null,
    memTotal: p.memTotal,
    diskUsed: p.diskUsed,
    diskTotal: p.diskTotal,
    netRx: rate(p.netRxBytes, q?.netRxBytes),
    netTx: rate(p.netTxBytes, q?.netTxBytes),
    load1: p.load1,
  };
}
