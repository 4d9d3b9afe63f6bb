/**
 * The master's own metrics: CPU (/proc/stat) and network throughput (/proc/net/dev, all interfaces but
 * loopback) read by proc-counters.ts, and through systeminformation memory, the filesystem holding the
 * data directory and per-service process stats (this master process itself, HAProxy, keepalived). Rates
 * (CPU, network) are measured between calls, so the first sample after start has none.
 */
import si from 'systeminformation';
import { loadavg } from 'node:os';
import type { MetricSample } from '../store/metrics.js';
import { cpuBusyPercent, readCpuTimes, readNetBytes, type CpuTimes, type NetBytes } from './proc-counters.js';

export type Sampler = () => Promise<MetricSample>;

/** The mount whose path is the longest prefix of `dir`. */
export function mountFor<T extends { mount: string }>(mounts: readonly T[], dir: string): T | undefined {
  let best: T | undefined;
  for (const m of mounts) {
    const prefix = m.mount.endsWith('/') ? m.mount : `${m.mount}/`;
    if (
      (dir === m.mount || dir.startsWith(prefix) || m.mount === '/') &&
      (!best || m.mount.length > best.mount.length)
    )
      best = m;
  }
  return best;
}

const SERVICES = ['haproxy', 'keepalived'];

export function systemSampler(dataDir: string, now: () => number = Date.now): Sampler {
  let lastCpu = process.cpuUsage();
  let lastAt = now();
  let lastNet: NetBytes | undefined;
  let lastCpuTimes: CpuTimes | undefined;
  return async () => {
    const [cpuTimes, mem, fs, net, procs] = await Promise.all([
      readCpuTimes(),
      si.mem(),
      si.fsSize(),
      readNetBytes(),
      si.processLoad(SERVICES.join(', ')),
    ]);
    const at = now();
    const elapsed = at - lastAt;
    const cpuNow = process.cpuUsage();
    const selfCpu =
      ((cpuNow.user - lastCpu.user + cpuNow.system - lastCpu.system) / 1000 / Math.max(1, at - lastAt)) * 100;
    lastCpu = cpuNow;
    lastAt = at;
    const disk = mountFor(fs, dataDir);
    // Bytes per second over all interfaces but loopback since the last sample (counters from proc-counters.ts).
    const rate = (f: (n: NetBytes) => number): number | null =>
      net && lastNet && elapsed > 0 ? Math.max(0, f(net) - f(lastNet)) / (elapsed / 1000) : null;
    const sample: MetricSample = {
      at: Math.floor(at / 1000),
      cpu: !cpuTimes || !lastCpuTimes ? null : nullRound(cpuBusyPercent(lastCpuTimes, cpuTimes)),
      memUsed: mem.active,
      memTotal: mem.total,
      diskUsed: disk ? disk.used : null,
      diskTotal: disk ? disk.size : null,
      netRx: rate((n) => n.rx),
      netTx: rate((n) => n.tx),
      load1: round(loadavg()[0] ?? 0),
      procs: {
        corral: { pid: process.pid, cpu: round(selfCpu), rssBytes: process.memoryUsage().rss },
        ...Object.fromEntries(
          procs.map((p) => [
            p.proc,
            { running: p.pids.length > 0, pids: p.pids.length, cpu: p.cpu, memPercent: p.mem },
          ]),
        ),
      },
    };
    lastNet = net;
    lastCpuTimes = cpuTimes;
    return sample;
  };
}

function nullRound(n: number | null): number | null {
  return n === null ? null : round(n);
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
