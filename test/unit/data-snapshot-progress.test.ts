import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  describeProgress,
  KEEP_FINISHED_MS,
  ProgressBoard,
  rateAndEta,
  type OperationStart,
} from '../../master/data-snapshots/progress.js';
import { formatBytes } from '../../web-ui/format.js';

const MiB = 1024 * 1024;
const start = (over: Partial<OperationStart> = {}): OperationStart => ({
  key: 'snapshot-7',
  op: 'snapshot',
  snapshotId: 7,
  snapshot: 'pg-a-node-a-x',
  forSnapshotId: null,
  dataSet: 'pg-a',
  node: 'node-a',
  expectedBytes: 100 * MiB,
  ...over,
});

describe('data snapshot progress', () => {
  it('rate over the sample window, ETA from the bytes left; none without a total or a second sample', () => {
    assert.deepEqual(rateAndEta([{ at: 0, bytes: 0 }], 10), { rate: null, etaSeconds: null });
    assert.deepEqual(
      rateAndEta(
        [
          { at: 1000, bytes: 0 },
          { at: 3000, bytes: 20 * MiB },
        ],
        100 * MiB,
      ),
      { rate: 10 * MiB, etaSeconds: 8 },
    );
    assert.deepEqual(
      rateAndEta(
        [
          { at: 0, bytes: 0 },
          { at: 1000, bytes: 5 },
        ],
        null,
      ),
      { rate: 5, etaSeconds: null },
    );
  });

  it('samples at most every 250 ms, rates over the last 10 s only, and counts versions', () => {
    let t = 0;
    const board = new ProgressBoard(() => t);
    board.begin(start());
    const v0 = board.list()[0]!.version;
    t = 100;
    board.advance('snapshot-7', 50 * MiB); // too soon after the first sample: ignored
    assert.equal(board.list()[0]!.bytes, 0);
    assert.equal(board.list()[0]!.version, v0);
    // 1 MiB/s for 20 s, then 5 MiB/s for 10 s: the rate follows the recent speed, not the average.
    let bytes = 0;
    for (t = 1000; t <= 20_000; t += 1000) board.advance('snapshot-7', (bytes += MiB));
    for (; t <= 30_000; t += 1000) board.advance('snapshot-7', (bytes += 5 * MiB));
    const p = board.list()[0]!;
    assert.equal(p.bytes, 70 * MiB);
    assert.ok(p.rate! > 4.5 * MiB && p.rate! <= 5 * MiB, `rate ${p.rate}`);
    assert.equal(p.etaSeconds, Math.ceil((30 * MiB) / p.rate!));
    assert.ok(p.version > v0);
    // The stream's end counts even within 250 ms of the last sample; with every byte moved, no "0 s left".
    t += 10;
    board.advance('snapshot-7', 100 * MiB, true);
    assert.equal(board.list()[0]!.bytes, 100 * MiB);
    board.step('snapshot-7', 'laid');
    assert.match(describeProgress(board.list()[0]!, formatBytes), /100 MiB \(100 %\), [^,]+\/s, laid$/);
  });

  it('keeps a finished operation listed for a while, then drops it', () => {
    let t = 0;
    const board = new ProgressBoard(() => t);
    board.begin(start({ key: 'restore-7-1', op: 'restore' }));
    board.step('restore-7-1', 'laid');
    board.finish('restore-7-1', false, 'pg_amcheck reported problems');
    t = KEEP_FINISHED_MS;
    assert.equal(board.list()[0]!.state, 'failed');
    assert.equal(board.list()[0]!.step, 'laid');
    t = KEEP_FINISHED_MS + 1;
    assert.deepEqual(board.list(), []);
  });

  it('says what, where, how far, how fast and how long', () => {
    let t = 0;
    const board = new ProgressBoard(() => t);
    board.begin(start());
    t = 2000;
    board.advance('snapshot-7', 20 * MiB);
    assert.equal(
      describeProgress(board.list()[0]!, formatBytes),
      'Snapshot pg-a-node-a-x of pg-a on node-a: 20 MiB of about 100 MiB (20 %), 10 MiB/s, about 8 s left',
    );
    board.begin(start({ key: 'snapshot-8', snapshotId: 8, expectedBytes: null }));
    assert.equal(
      describeProgress(board.list()[1]!, formatBytes),
      'Snapshot pg-a-node-a-x of pg-a on node-a: 0 B',
    );
    board.finish('snapshot-8', true, null, 3 * MiB);
    assert.equal(
      describeProgress(board.list()[1]!, formatBytes),
      'Snapshot pg-a-node-a-x of pg-a on node-a: done, 3 MiB',
    );
  });
});
