/**
 * The boot storm's view of the servers it loads: CPU time and resident memory of a set of processes,
 * read from /proc (proc(5): /proc/PID/stat fields 14-15 utime and stime in clock ticks; VmRSS in
 * /proc/PID/status), sampled every 250 ms while the storm runs.
 */
import { readFileSync } from 'node:fs';

/** The stages a storm machine goes through, in order (test/helpers/storm-client.ts). */
export const STORM_STAGES = ['dhcp', 'tftp', 'ipxeDhcp', 'script', 'kernel', 'initrd', 'enlist'] as const;

/** Linux's USER_HZ on every architecture Corral runs on (sysconf(_SC_CLK_TCK)). */
const CLK_TCK = 100;

function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export interface ProcSampler {
  /** Stops sampling (idempotent); CPU seconds used since the start and the peak summed RSS. */
  stop(): { cpuSeconds: number; peakRssMiB: number };
}

/** Samples the processes `pids()` names now (a set that may grow, e.g. nginx's workers) until stop(). */
export function sampleProcesses(pids: () => number[]): ProcSampler {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  let peakKiB = 0;
  const sample = (): void => {
    let rss = 0;
    for (const pid of pids()) {
      const t = cpuTicks(pid);
      if (t === undefined) continue;
      if (!first.has(pid)) first.set(pid, t);
      last.set(pid, t);
      rss += rssKiB(pid);
    }
    peakKiB = Math.max(peakKiB, rss);
  };
  sample();
  const timer = setInterval(sample, 250);
  let result: { cpuSeconds: number; peakRssMiB: number } | undefined;
  return {
    stop() {
      if (result) return result;
      sample();
      clearInterval(timer);
      let ticks = 0;
      for (const [pid, t] of last) ticks += t - (first.get(pid) ?? t);
      result = { cpuSeconds: ticks / CLK_TCK, peakRssMiB: peakKiB / 1024 };
      return result;
    },
  };
}
