/**
 * Live progress of the snapshots and restores running now, for the console's stream
 * (`/snapshots/data/progress`): bytes moved, the rate over the last few seconds, and an ETA where the
 * total is known. Held in memory only (the row's `bytes` column is the durable record, written every
 * `dataSnapshots.progressSeconds`); a finished operation stays listed for a while so that a page
 * watching it sees how it ended.
 */

export type OperationKind = 'snapshot' | 'restore';

export interface OperationProgress {
  /** `snapshot-<row id>` or `restore-<snapshot id>-<start ms>`. */
  key: string;
  op: OperationKind;
  /** The snapshot being taken, or the one being restored. */
  snapshotId: number;
  snapshot: string;
  /** For a safety snapshot: the snapshot whose restore it precedes. */
  forSnapshotId: number | null;
  dataSet: string;
  node: string;
  startedAt: number;
  bytes: number;
  /**
   * What the transfer should reach: a restore's archive size (exact); for a snapshot the previous one of
   * the same data set and node (an estimate; null for the first, when nothing is known in advance).
   */
  expectedBytes: number | null;
  /** Bytes per second over the last RATE_WINDOW_MS; null until two samples exist. */
  rate: number | null;
  /** Seconds left at that rate; null without an expected size or a rate. */
  etaSeconds: number | null;
  /** The node script's last step (`stopped`, `laid`, `started`, a check). */
  step: string | null;
  state: 'running' | 'ok' | 'failed';
  message: string | null;
  /** Grows on every change: a stream sends only what moved since it last looked. */
  version: number;
}

const RATE_WINDOW_MS = 10_000;
const SAMPLE_EVERY_MS = 250;
/** How long a finished operation stays listed. */
export const KEEP_FINISHED_MS = 60_000;

interface Entry {
  p: OperationProgress;
  samples: { at: number; bytes: number }[];
  finishedAt: number | null;
}

export type OperationStart = Pick<
  OperationProgress,
  'key' | 'op' | 'snapshotId' | 'snapshot' | 'forSnapshotId' | 'dataSet' | 'node' | 'expectedBytes'
>;

/** Rate over the samples' window and the ETA it gives; pure, for the board and its tests. */
export function rateAndEta(
  samples: readonly { at: number; bytes: number }[],
  expectedBytes: number | null,
): { rate: number | null; etaSeconds: number | null } {
  const first = samples[0];
  const last = samples.at(-1);
  if (!first || !last || last.at <= first.at) return { rate: null, etaSeconds: null };
  const rate = ((last.bytes - first.bytes) * 1000) / (last.at - first.at);
  if (expectedBytes === null || rate <= 0) return { rate, etaSeconds: null };
  return { rate, etaSeconds: Math.max(0, Math.ceil((expectedBytes - last.bytes) / rate)) };
}

export class ProgressBoard {
  private readonly entries = new Map<string, Entry>();
  private version = 0;

  constructor(private readonly now: () => number = Date.now) {}

  begin(start: OperationStart): void {
    const at = this.now();
    this.entries.set(start.key, {
      p: {
        ...start,
        startedAt: at,
        bytes: 0,
        rate: null,
        etaSeconds: null,
        step: null,
        state: 'running',
        message: null,
        version: ++this.version,
      },
      samples: [{ at, bytes: 0 }],
      finishedAt: null,
    });
  }

  /**
   * Called per chunk; samples at most every SAMPLE_EVERY_MS, so it costs nothing on the hot path.
   * `last` (the stream's end) always counts: the final figure is never a skipped sample's.
   */
  advance(key: string, bytes: number, last = false): void {
    const e = this.entries.get(key);
    if (!e) return;
    const at = this.now();
    const previous = e.samples.at(-1);
    if (!last && previous && at - previous.at < SAMPLE_EVERY_MS) return;
    e.samples.push({ at, bytes });
    while (e.samples.length > 2 && at - e.samples[0]!.at > RATE_WINDOW_MS) e.samples.shift();
    Object.assign(e.p, { bytes, ...rateAndEta(e.samples, e.p.expectedBytes), version: ++this.version });
  }

  step(key: string, step: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    e.p.step = step;
    e.p.version = ++this.version;
  }

  finish(key: string, ok: boolean, message: string | null, bytes?: number): void {
    const e = this.entries.get(key);
    if (!e) return;
    Object.assign(e.p, {
      state: ok ? 'ok' : 'failed',
      message,
      etaSeconds: null,
      ...(bytes === undefined ? {} : { bytes }),
      version: ++this.version,
    });
    e.finishedAt = this.now();
  }

  /** Running operations and those finished within KEEP_FINISHED_MS, oldest first. */
  list(): OperationProgress[] {
    const at = this.now();
    for (const [key, e] of this.entries) {
      if (e.finishedAt !== null && at - e.finishedAt > KEEP_FINISHED_MS) this.entries.delete(key);
    }
    return [...this.entries.values()].map((e) => ({ ...e.p }));
  }
}

/** One line for the console: what, where, how far, how fast, how long left (or how it ended). */
export function describeProgress(o: OperationProgress, formatBytes: (n: number) => string): string {
  const what =
    o.op === 'snapshot'
      ? `Snapshot ${o.snapshot} of ${o.dataSet} on ${o.node}`
      : `Restore of ${o.snapshot} into ${o.dataSet} on ${o.node}`;
  if (o.state === 'failed') return `${what}: failed: ${o.message ?? 'no message'}`;
  if (o.state === 'ok') return `${what}: done, ${formatBytes(o.bytes)}${o.message ? `; ${o.message}` : ''}`;
  const parts = [
    o.expectedBytes
      ? `${formatBytes(o.bytes)} of ${o.op === 'snapshot' ? 'about ' : ''}${formatBytes(o.expectedBytes)} (${Math.min(100, Math.floor((o.bytes * 100) / o.expectedBytes))} %)`
      : `${formatBytes(o.bytes)}`,
  ];
  if (o.rate !== null) parts.push(`${formatBytes(o.rate)}/s`);
  // Once every byte has moved, a restore's node steps follow; a "0 s left" would say it is over.
  if (o.etaSeconds !== null && (o.expectedBytes === null || o.bytes < o.expectedBytes))
    parts.push(`about ${o.etaSeconds} s left`);
  if (o.step) parts.push(o.step);
  return `${what}: ${parts.join(', ')}`;
}
