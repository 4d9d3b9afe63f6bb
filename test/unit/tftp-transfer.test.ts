import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodePacket, type TftpPacket } from '../../master/tftp/codec.js';
import { BlockReader, type FileSource } from '../../master/tftp/block-reader.js';
import {
  negotiateOptions,
  ReadTransfer,
  type NegotiationLimits,
  type TimerHandle,
  type Timers,
  type TransferOutcome,
} from '../../master/tftp/transfer.js';

const LIMITS: NegotiationLimits = { maxBlksize: 1468, maxWindowsize: 64, defaultTimeoutMs: 1000 };

describe('tftp negotiateOptions', () => {
  const negotiate = (o: Record<string, string>, size = 1000) =>
    negotiateOptions(new Map(Object.entries(o)), size, LIMITS);

  test('no options: RFC 1350 defaults and no OACK', () => {
    assert.deepEqual(negotiate({}), { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: null });
  });

  test('blksize is clamped to the configured maximum (RFC 2348: the server may answer smaller)', () => {
    const n = negotiate({ blksize: '65464' });
    assert.equal(n.blksize, 1468);
    assert.equal(n.oack?.get('blksize'), '1468');
    assert.equal(negotiate({ blksize: '1024' }).blksize, 1024);
    assert.equal(negotiate({ blksize: '8' }).blksize, 8);
  });

  test('an invalid blksize is ignored, not acknowledged', () => {
    for (const v of ['7', '0', '', 'abc', '-1', '1e3', ' 512']) {
      const n = negotiate({ blksize: v });
      assert.equal(n.blksize, 512, v);
      assert.equal(n.oack, null, v);
    }
  });

  test('tsize answers with the real size whatever the client sent (RFC 2349 "Transfer Size Option")', () => {
    assert.equal(negotiate({ tsize: '0' }, 123456).oack?.get('tsize'), '123456');
    assert.equal(negotiate({ tsize: 'enable' }, 7).oack?.get('tsize'), '7');
  });

  test('timeout 1..255 s is echoed unchanged; outside that it is ignored (RFC 2349 "Timeout Interval Option")', () => {
    const n = negotiate({ timeout: '3' });
    assert.equal(n.timeoutMs, 3000);
    assert.equal(n.oack?.get('timeout'), '3');
    assert.equal(negotiate({ timeout: '0' }).oack, null);
    assert.equal(negotiate({ timeout: '256' }).oack, null);
  });

  test('windowsize is clamped to the maximum; 0 is ignored (RFC 7440 section 3)', () => {
    assert.equal(negotiate({ windowsize: '8' }).windowsize, 8);
    assert.equal(negotiate({ windowsize: '65535' }).oack?.get('windowsize'), '64');
    assert.equal(negotiate({ windowsize: '0' }).oack, null);
  });

  test('unknown options are ignored (RFC 2347 "Negotiation Protocol")', () => {
    assert.equal(negotiate({ multicast: '', utimeout: '1000' }).oack, null);
  });
});

/** A clock the test moves by hand. */
class ManualClock implements Timers {
  private t = 0;
  private pending: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];

  now(): number {
    return this.t;
  }

  set(fn: () => void, ms: number): TimerHandle {
    const entry = { at: this.t + ms, fn, cancelled: false };
    this.pending.push(entry);
    return { cancel: () => (entry.cancelled = true) };
  }

  get armed(): number {
    return this.pending.filter((p) => !p.cancelled).length;
  }

  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      const due = this.pending.filter((p) => !p.cancelled && p.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.pending = this.pending.filter((p) => p !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = target;
  }
}

interface MemorySource extends FileSource {
  reads: Array<{ position: number; length: number }>;
  closed: boolean;
}

function memorySource(data: Buffer, failAt?: number): MemorySource {
  const source: MemorySource = {
    size: data.length,
    reads: [],
    closed: false,
    async read(buffer, position) {
      source.reads.push({ position, length: buffer.length });
      if (failAt !== undefined && position + buffer.length > failAt) throw new Error('EIO');
      return data.copy(buffer, 0, position, position + buffer.length);
    },
    async close() {
      source.closed = true;
    },
  };
  return source;
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Harness {
  transfer: ReadTransfer;
  clock: ManualClock;
  source: MemorySource;
  /** Every packet the transfer sent, decoded, in order. */
  sent: TftpPacket[];
  /** Packets sent since the last call. */
  take(): TftpPacket[];
  ack(block: number): Promise<void>;
}

function harness(
  data: Buffer,
  opts: {
    blksize?: number;
    windowsize?: number;
    retries?: number;
    oack?: Map<string, string>;
    failAt?: number;
    timeoutMs?: number;
    firstAckTimeoutMs?: number;
    /** The send that throws, counted from 1 (as dgram does for a port it rejects outright). */
    throwOnSend?: number;
  } = {},
): Harness {
  const blksize = opts.blksize ?? 512;
  const windowsize = opts.windowsize ?? 1;
  const clock = new ManualClock();
  const source = memorySource(data, opts.failAt);
  const sent: TftpPacket[] = [];
  let seen = 0;
  let sends = 0;
  const transfer = new ReadTransfer(
    {
      blksize,
      windowsize,
      timeoutMs: opts.timeoutMs ?? 1000,
      retries: opts.retries ?? 3,
      oack: opts.oack ?? null,
      ...(opts.firstAckTimeoutMs !== undefined ? { firstAckTimeoutMs: opts.firstAckTimeoutMs } : {}),
    },
    new BlockReader(source, blksize, windowsize),
    {
      timers: clock,
      send(packet, payload) {
        if (++sends === opts.throwOnSend) throw new RangeError('Port should be > 0 and < 65536');
        const r = decodePacket(payload ? Buffer.concat([packet, payload]) : packet);
        assert.ok(r.ok, 'the transfer sent a malformed packet');
        sent.push(r.packet);
      },
    },
  );
  return {
    transfer,
    clock,
    source,
    sent,
    take() {
      const out = sent.slice(seen);
      seen = sent.length;
      return out;
    },
    async ack(block) {
      transfer.handle({ op: 'ACK', block });
      await settle();
    },
  };
}

function dataBlocks(packets: TftpPacket[]): Array<[number, number]> {
  return packets.map((p) => {
    assert.equal(p.op, 'DATA');
    return p.op === 'DATA' ? [p.block, p.data.length] : [-1, -1];
  });
}

/**
 * A well-behaved client (RFC 7440 section 4): takes blocks in order, acknowledges after `windowsize`
 * blocks or the short final block. Returns the bytes it received.
 */
async function fetchAll(h: Harness, blksize: number, windowsize: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let expected = 1;
  let inWindow = 0;
  let finished = false;
  for (let guard = 0; !finished; guard++) {
    assert.ok(guard < 1_000_000, 'transfer did not finish');
    await settle();
    const batch = h.take();
    assert.ok(batch.length > 0, 'the transfer stalled');
    for (const p of batch) {
      if (p.op === 'OACK') {
        await h.ack(0);
        continue;
      }
      assert.equal(p.op, 'DATA');
      if (p.op !== 'DATA' || p.block !== (expected & 0xffff)) continue;
      parts.push(p.data);
      expected++;
      inWindow++;
      const last = p.data.length < blksize;
      if (inWindow === windowsize || last) {
        inWindow = 0;
        h.transfer.handle({ op: 'ACK', block: (expected - 1) & 0xffff });
        if (last) finished = true;
      }
    }
  }
  return Buffer.concat(parts);
}

async function outcome(h: Harness): Promise<TransferOutcome> {
  return h.transfer.done;
}

describe('tftp ReadTransfer', () => {
  test('lockstep without options: DATA 1 first, short last block ends it', async () => {
    const data = randomBytes(1300);
    const h = harness(data);
    h.transfer.start();
    await settle();
    assert.deepEqual(dataBlocks(h.take()), [[1, 512]]);
    await h.ack(1);
    assert.deepEqual(dataBlocks(h.take()), [[2, 512]]);
    await h.ack(2);
    assert.deepEqual(dataBlocks(h.take()), [[3, 276]]);
    await h.ack(3);
    assert.deepEqual(await outcome(h), { ok: true, bytes: 1300, retransmits: 0 });
    assert.ok(h.source.closed, 'file handle closed');
    assert.equal(h.clock.armed, 0, 'no timer left behind');
  });

  test('a size that is a multiple of blksize ends with an empty block (RFC 1350 section 6)', async () => {
    const h = harness(randomBytes(1024));
    h.transfer.start();
    await settle();
    await h.ack(1);
    await h.ack(2);
    assert.deepEqual(dataBlocks(h.take()), [
      [1, 512],
      [2, 512],
      [3, 0],
    ]);
    await h.ack(3);
    assert.equal((await outcome(h)).ok, true);
  });

  test('an empty file is one empty DATA block', async () => {
    const h = harness(Buffer.alloc(0));
    h.transfer.start();
    await settle();
    assert.deepEqual(dataBlocks(h.take()), [[1, 0]]);
    await h.ack(1);
    assert.deepEqual(await outcome(h), { ok: true, bytes: 0, retransmits: 0 });
  });

  test('with options: OACK first, DATA 1 only after ACK 0; a duplicate ACK 0 changes nothing', async () => {
    const oack = new Map([
      ['blksize', '1024'],
      ['tsize', '3000'],
    ]);
    const h = harness(randomBytes(3000), { blksize: 1024, oack });
    h.transfer.start();
    await settle();
    assert.deepEqual(h.take(), [{ op: 'OACK', options: oack }]);
    await h.ack(1); // not what the OACK asked for: ignored
    assert.deepEqual(h.take(), []);
    await h.ack(0);
    assert.deepEqual(dataBlocks(h.take()), [[1, 1024]]);
    await h.ack(0);
    assert.deepEqual(h.take(), [], 'duplicate ACK 0 must not resend');
  });

  test('the OACK is retransmitted on timeout', async () => {
    const h = harness(randomBytes(10), { oack: new Map([['tsize', '10']]) });
    h.transfer.start();
    await settle();
    h.take();
    h.clock.advance(1000);
    assert.equal(h.take()[0]?.op, 'OACK');
  });

  test("duplicate ACKs never trigger a resend (Sorcerer's Apprentice, RFC 1123 section 4.2.3.1)", async () => {
    const h = harness(randomBytes(2000));
    h.transfer.start();
    await settle();
    await h.ack(1);
    assert.deepEqual(dataBlocks(h.take()), [
      [1, 512],
      [2, 512],
    ]);
    await h.ack(1);
    await h.ack(1);
    assert.deepEqual(h.take(), []);
    await h.ack(2);
    assert.deepEqual(dataBlocks(h.take()), [[3, 512]]);
  });

  test('ACKs for blocks not yet sent are ignored', async () => {
    const h = harness(randomBytes(5000));
    h.transfer.start();
    await settle();
    h.take();
    await h.ack(7);
    await h.ack(65535);
    assert.deepEqual(h.take(), []);
  });

  test('a window of 4: four blocks per ACK, and an ACK inside the window restarts after it (RFC 7440 section 4)', async () => {
    const data = randomBytes(512 * 10 + 100); // blocks 1..10 full, 11 short
    const h = harness(data, { windowsize: 4 });
    h.transfer.start();
    await settle();
    assert.deepEqual(
      dataBlocks(h.take()).map(([b]) => b),
      [1, 2, 3, 4],
    );
    await h.ack(4);
    assert.deepEqual(
      dataBlocks(h.take()).map(([b]) => b),
      [5, 6, 7, 8],
    );
    await h.ack(6); // 7 was lost: the client acknowledges the last block it has in order
    assert.deepEqual(
      dataBlocks(h.take()).map(([b]) => b),
      [7, 8, 9, 10],
    );
    await h.ack(6); // the same ACK again (duplicate): nothing
    assert.deepEqual(h.take(), []);
    await h.ack(10);
    assert.deepEqual(dataBlocks(h.take()), [[11, 100]]);
    await h.ack(11);
    assert.deepEqual(await outcome(h), { ok: true, bytes: data.length, retransmits: 2 });
  });

  test('timeout retransmits the whole unacknowledged window, then bounded retries give up with ERROR', async () => {
    const h = harness(randomBytes(512 * 8), { windowsize: 3, retries: 2 });
    h.transfer.start();
    await settle();
    assert.equal(h.take().length, 3);
    h.clock.advance(999);
    assert.deepEqual(h.take(), [], 'nothing before the timeout');
    h.clock.advance(1);
    assert.deepEqual(
      dataBlocks(h.take()).map(([b]) => b),
      [1, 2, 3],
    );
    h.clock.advance(1000);
    assert.equal(h.take().length, 3);
    h.clock.advance(1000);
    const last = h.take();
    assert.deepEqual(last, [{ op: 'ERROR', code: 0, message: 'Timed out' }]);
    const o = await outcome(h);
    assert.equal(o.ok, false);
    assert.equal(o.retransmits, 6);
    assert.match(o.reason ?? '', /no ACK after 3 timeouts/);
    assert.ok(h.source.closed);
  });

  test('progress resets the retry budget', async () => {
    const h = harness(randomBytes(512 * 4), { retries: 1 });
    h.transfer.start();
    await settle();
    h.clock.advance(1000); // retry 1 of 1
    await h.ack(1);
    h.clock.advance(1000); // a fresh budget: retry, not give up
    assert.deepEqual(
      dataBlocks(h.take()).map(([b]) => b),
      [1, 1, 2, 2],
    );
    await h.ack(2);
    assert.equal(h.take()[0]?.op, 'DATA');
  });

  test('a late ACK just before the deadline moves the deadline', async () => {
    const h = harness(randomBytes(512 * 4));
    h.transfer.start();
    await settle();
    h.clock.advance(900);
    await h.ack(1);
    h.take();
    h.clock.advance(900); // 1800 ms since start, 900 since DATA 2: no retransmission yet
    assert.deepEqual(h.take(), []);
    h.clock.advance(100);
    assert.deepEqual(dataBlocks(h.take()), [[2, 512]]);
  });

  test('a client ERROR ends the transfer silently', async () => {
    const h = harness(randomBytes(5000));
    h.transfer.start();
    await settle();
    h.take();
    h.transfer.handle({ op: 'ERROR', code: 3, message: 'Disk full' });
    const o = await outcome(h);
    assert.equal(o.ok, false);
    assert.match(o.reason ?? '', /ERROR 3: Disk full/);
    h.clock.advance(10_000);
    assert.deepEqual(h.take(), [], 'never answer an ERROR, never retransmit after one');
  });

  test('a read error ends the transfer with ERROR 0', async () => {
    const h = harness(randomBytes(512 * 300), { failAt: 100_000 });
    h.transfer.start();
    const received = fetchAll(h, 512, 1).catch(() => null);
    const o = await outcome(h);
    assert.equal(o.ok, false);
    assert.match(o.reason ?? '', /read failed: EIO/);
    assert.deepEqual(h.sent.at(-1), { op: 'ERROR', code: 0, message: 'Read error' });
    void received;
  });

  test('block numbers roll over past 65535 to 0 (blksize 8, 70001 blocks)', async () => {
    const data = randomBytes(8 * 70_000 + 3);
    const h = harness(data, { blksize: 8 });
    h.transfer.start();
    const wire: number[] = [];
    const got = await fetchAll(
      {
        ...h,
        take: () => {
          const batch = h.take();
          for (const p of batch) if (p.op === 'DATA') wire.push(p.block);
          return batch;
        },
      },
      8,
      1,
    );
    assert.ok(got.equals(data));
    assert.deepEqual(wire.slice(65533, 65538), [65534, 65535, 0, 1, 2]);
    assert.deepEqual(await outcome(h), { ok: true, bytes: data.length, retransmits: 0 });
  });

  test('rollover with a window of 16 and with windows straddling 65535/0', async () => {
    const data = randomBytes(8 * 66_000);
    const h = harness(data, { blksize: 8, windowsize: 16 });
    h.transfer.start();
    assert.ok((await fetchAll(h, 8, 16)).equals(data));
    assert.equal((await outcome(h)).ok, true);
  });

  test('streams: reads stay within a few chunks of the acknowledged block, never the whole file', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const h = harness(data, { blksize: 1468, windowsize: 8 });
    h.transfer.start();
    let maxAhead = 0;
    const spy: Harness = {
      ...h,
      take: () => {
        const batch = h.take();
        const acked = h.sent.filter((p) => p.op === 'DATA').length * 1468; // upper bound of progress
        for (const r of h.source.reads) maxAhead = Math.max(maxAhead, r.position + r.length - acked);
        return batch;
      },
    };
    assert.ok((await fetchAll(spy, 1468, 8)).equals(data));
    assert.ok(maxAhead <= 3 * 64 * 1024, `read ${maxAhead} bytes ahead of the client`);
    assert.ok(h.source.reads.every((r) => r.length <= 64 * 1024 + 1468));
  });
});

describe('tftp ReadTransfer: first-ACK deadline and failing sends (issue 14)', () => {
  test('timeout=255 holds a slot for 6 x 255 s without a first-ACK limit', async () => {
    const h = harness(randomBytes(2000), {
      retries: 5,
      timeoutMs: 255_000,
      oack: new Map([['timeout', '255']]),
    });
    let outcome: TransferOutcome | undefined;
    void h.transfer.done.then((o) => (outcome = o));
    const pending = (): boolean => outcome === undefined;
    h.transfer.start();
    h.clock.advance(6 * 255_000 - 1);
    await settle();
    assert.ok(pending(), 'still held just before 6 x 255 s');
    h.clock.advance(1);
    await settle();
    assert.equal(outcome?.ok, false);
  });

  test('a peer that never ACKs is abandoned after (retries + 1) x firstAckTimeoutMs, whatever it negotiated', async () => {
    const h = harness(randomBytes(2000), {
      retries: 5,
      timeoutMs: 255_000,
      firstAckTimeoutMs: 3000,
      oack: new Map([['timeout', '255']]),
    });
    let outcome: TransferOutcome | undefined;
    void h.transfer.done.then((o) => (outcome = o));
    const pending = (): boolean => outcome === undefined;
    h.transfer.start();
    h.clock.advance(17_999);
    await settle();
    assert.ok(pending());
    assert.equal(
      h.take().filter((p) => p.op === 'OACK').length,
      6,
      'the OACK and 5 retransmissions, 3 s apart',
    );
    h.clock.advance(1);
    await settle();
    assert.equal(outcome?.ok, false);
    assert.match(outcome?.reason ?? '', /6 timeouts of 3000 ms \(waiting for the first ACK\)/);
  });

  test('once the client has ACKed, the negotiated timeout (RFC 2349) governs retransmission', async () => {
    const h = harness(randomBytes(2000), {
      retries: 1,
      timeoutMs: 10_000,
      firstAckTimeoutMs: 3000,
      oack: new Map([['timeout', '10']]),
    });
    h.transfer.start();
    await h.ack(0);
    h.take();
    h.clock.advance(9_999);
    await settle();
    assert.deepEqual(h.take(), [], 'no retransmission before the negotiated 10 s');
    h.clock.advance(1);
    await settle();
    assert.deepEqual(
      h.take().map((p) => (p.op === 'DATA' ? p.block : p.op)),
      [1],
      'DATA 1 retransmitted at 10 s',
    );
  });

  test('without options the first-ACK limit applies to DATA 1 as well', async () => {
    const h = harness(randomBytes(2000), { retries: 2, timeoutMs: 5000, firstAckTimeoutMs: 500 });
    let outcome: TransferOutcome | undefined;
    void h.transfer.done.then((o) => (outcome = o));
    const pending = (): boolean => outcome === undefined;
    h.transfer.start();
    await settle();
    h.clock.advance(1499);
    await settle();
    assert.ok(pending(), 'three intervals of 500 ms, not of 5000 ms');
    h.clock.advance(1);
    await settle();
    assert.equal(outcome?.ok, false);
  });

  test('a send that throws ends the transfer (failed) instead of escaping into the caller or a timer', async () => {
    const h = harness(randomBytes(2000), { throwOnSend: 2 });
    h.transfer.start(); // send 1: DATA 1
    await settle();
    assert.doesNotThrow(() => h.transfer.handle({ op: 'ACK', block: 1 })); // send 2 throws
    const outcome = await h.transfer.done;
    assert.equal(outcome.ok, false);
    assert.match(outcome.reason ?? '', /send failed: Port should be/);
    assert.equal(h.source.closed, true, 'the file is closed');
  });

  test('a retransmission that throws inside the timer ends the transfer too', async () => {
    const h = harness(randomBytes(2000), { throwOnSend: 2 });
    h.transfer.start();
    await settle();
    assert.doesNotThrow(() => h.clock.advance(1000));
    const outcome = await h.transfer.done;
    assert.equal(outcome.ok, false);
    assert.match(outcome.reason ?? '', /send failed/);
  });
});

describe('tftp ReadTransfer: retransmission backoff (RFC 1123 section 4.2.3.2, issue 19)', () => {
  /** Milliseconds from now until the next packet is sent, stepping the clock 100 ms at a time. */
  function untilNextSend(h: Harness, limitMs: number): number | null {
    for (let t = 100; t <= limitMs; t += 100) {
      h.clock.advance(100);
      if (h.take().length > 0) return t;
    }
    return null;
  }

  test('after the client answered, consecutive timeouts double the interval up to 8x, then give up', async () => {
    const h = harness(randomBytes(512 * 4), { retries: 5 });
    h.transfer.start();
    await settle();
    await h.ack(1);
    h.take();
    assert.deepEqual(
      [1, 2, 3, 4, 5].map(() => untilNextSend(h, 20_000)),
      [1000, 2000, 4000, 8000, 8000],
    );
    h.clock.advance(8000);
    const o = await outcome(h);
    assert.equal(o.ok, false);
    assert.match(o.reason ?? '', /no ACK after 6 timeouts/);
  });

  test('progress restarts the backoff; a negotiated timeout is kept exactly (RFC 2349)', async () => {
    const h = harness(randomBytes(512 * 4), { retries: 5 });
    h.transfer.start();
    await settle();
    await h.ack(1);
    h.take();
    assert.deepEqual([untilNextSend(h, 5000), untilNextSend(h, 5000)], [1000, 2000]);
    await h.ack(2);
    h.take();
    assert.equal(untilNextSend(h, 5000), 1000);

    const fixed = harness(randomBytes(512 * 4), { retries: 5, oack: new Map([['timeout', '1']]) });
    fixed.transfer.start();
    await settle();
    fixed.take();
    await fixed.ack(0);
    await fixed.ack(1);
    fixed.take();
    assert.deepEqual(
      [1, 2, 3].map(() => untilNextSend(fixed, 5000)),
      [1000, 1000, 1000],
    );
  });
});
