/**
 * HA figures (printed, never asserted): failover time over several kill -9 runs (machine death: master
 * and its keepalived), replication lag and write latency under a steady API write load, and the count of
 * acknowledged writes lost. Real peers: corral master x2 + keepalived x2 + corral witness in namespaces.
 * Run as root: node dist/test/bench/ha-bench.js [RUNS]
 */
import { HaCluster, type MasterHost } from '../helpers/ha-cluster.js';
import { waitFor } from '../helpers/netns.js';

const RUNS = Number(process.argv[2] ?? 3);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2 : NaN;
};
const pct = (xs: number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;

async function main(): Promise<void> {
  const c = new HaCluster();
  try {
    await c.startWitness();
    c.writeM1Config();
    await c.startMaster(c.m1);
    await waitFor('m1 primary', () => c.status(c.m1)?.role === 'primary', 20_000);
    c.clone();
    await c.startMaster(c.m2);
    await waitFor('m2 following', () => c.status(c.m2)?.follower?.connected, 20_000);

    // Replication lag under a steady write load (one writer, 20 ms between writes, sync mode).
    const w = c.startWriter(c.vipUrl, 20, '0e');
    const lagChanges: number[] = [];
    const lagSeconds: number[] = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 10_000) {
      const s = c.status(c.m2);
      if (s?.follower) {
        lagChanges.push(s.follower.lagChanges);
        lagSeconds.push(s.follower.lagSeconds);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    w.proc.kill('SIGTERM');
    const rate = (w.acked.length / ((Date.now() - t0) / 1000)).toFixed(1);
    console.log(
      `steady load: ${w.acked.length} acknowledged writes (${rate}/s), latency median ${median(w.latencies)} ms, p95 ${pct(w.latencies, 0.95)} ms`,
    );
    console.log(
      `backup lag (${lagChanges.length} samples): changes median ${median(lagChanges)} max ${Math.max(...lagChanges)}; seconds median ${median(lagSeconds).toFixed(3)} max ${Math.max(...lagSeconds).toFixed(3)}`,
    );

    const vipMs: number[] = [];
    const writableMs: number[] = [];
    let lost = 0;
    let acked = 0;
    let primary: MasterHost = c.m1;
    for (let run = 1; run <= RUNS; run++) {
      const other = primary === c.m1 ? c.m2 : c.m1;
      const wr = c.startWriter(c.vipUrl, 20, `1${run}`);
      await waitFor('load', () => wr.acked.length >= 20, 20_000);
      c.killMachine(primary);
      const k = Date.now();
      await waitFor('VIP moved', () => c.holdsVip(other), 15_000, 20);
      vipMs.push(Date.now() - k);
      await waitFor('new primary', () => c.status(other)?.role === 'primary', 15_000, 50);
      writableMs.push(Date.now() - k);
      const n = wr.acked.length;
      await waitFor('writes resume', () => wr.acked.length >= n + 10, 20_000);
      wr.proc.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      const nodes = c.api(other.host.ns, `${c.url(other)}/api/v1/nodes`).json as { nodes: { mac: string }[] };
      const have = new Set(nodes.nodes.map((x) => x.mac));
      const missing = wr.acked.filter((m) => !have.has(m)).length;
      lost += missing;
      acked += wr.acked.length;
      console.log(
        `run ${run}: VIP ${vipMs.at(-1)} ms, writable ${writableMs.at(-1)} ms, ${wr.acked.length} acked, ${missing} lost`,
      );
      await c.startMaster(primary);
      const back = primary;
      await waitFor(
        'rejoined',
        () => {
          const a = c.status(back);
          const b = c.status(other);
          return a && b && a.role === 'backup' && a.lastSeq === b.lastSeq && a.follower?.connected;
        },
        30_000,
      );
      primary = other;
    }
    console.log(
      `failover (kill -9 of master + keepalived, advert_int 1): VIP median ${median(vipMs)} ms [${vipMs.join(', ')}], writable median ${median(writableMs)} ms [${writableMs.join(', ')}]`,
    );
    console.log(`acknowledged writes lost: ${lost} of ${acked}`);
  } finally {
    await c.destroy();
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
