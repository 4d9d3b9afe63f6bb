/**
 * One read transfer: option negotiation and the sending state machine. No sockets here: packets go out
 * through `send`, come in through `handle`, and time is a `Timers` the tests can drive by hand.
 *
 *   start ──(options accepted)──▶ negotiating ──ACK 0──▶ sending ──ACK of last block──▶ done (ok)
 *     └──────(no options)─────────────────────────────▶    │
 *                                       timeout × (retries + 1), client ERROR, read error, abort
 *                                                          └──────────────────────────▶ done (failed)
 */
import { encodeDataHeader, encodeError, encodePacket, ErrorCode, MAX_BLKSIZE, MIN_BLKSIZE } from './codec.js';
import type { TftpPacket } from './codec.js';
import { BlockReader } from './block-reader.js';

/** RFC 2349 ("Timeout Interval Option"): 1..255 seconds. */
const MIN_TIMEOUT_S = 1;
const MAX_TIMEOUT_S = 255;
/** RFC 7440 section 3 allows 1..65535; a window is held in memory, so we cap it lower (see limits). */
const MIN_WINDOWSIZE = 1;
/** Largest factor the retransmission timeout grows to by backoff (see ReadTransfer.interval). */
const MAX_BACKOFF = 8;

export interface NegotiationLimits {
  /**
   * Largest block we agree to. Blocks that do not fit one Ethernet frame become IP fragments, and some
   * PXE ROMs cannot reassemble them, so the default is 1468 = 1500 (MTU) - 20 (IPv4) - 8 (UDP) - 4 (TFTP),
   * the value tftpd-hpa's manual recommends. Raise it on jumbo-frame networks.
   */
  maxBlksize: number;
  /** Largest window (RFC 7440) we agree to; bounds the memory and the burst one transfer can cause. */
  maxWindowsize: number;
  /** Retransmission timeout when the client does not negotiate one. */
  defaultTimeoutMs: number;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** The options to acknowledge in an OACK, or null when none was accepted (then DATA 1 goes first). */
  oack: Map<string, string> | null;
}

/** A strict decimal: "0012" is fine, "12abc", "", "-1", "1e3" and " 12" are not. */
function parseDecimal(value: string): number | null {
  if (!/^[0-9]{1,10}$/.test(value)) return null;
  return Number(value);
}

/**
 * Decides the options of a read request. RFC 2347, "Negotiation Protocol": the server acknowledges, in
 * an OACK, only the options it accepts; anything else is ignored and its default applies.
 */
export function negotiateOptions(
  requested: ReadonlyMap<string, string>,
  fileSize: number,
  limits: NegotiationLimits,
): Negotiated {
  const oack = new Map<string, string>();
  let blksize = 512;
  let windowsize = 1;
  let timeoutMs = limits.defaultTimeoutMs;

  // RFC 2348: valid values are 8..65464, and the server may answer with a smaller value than asked,
  // never a larger one. Below 8 the option is ignored; anything above our maximum (even above 65464,
  // as tftpd-hpa does) is answered with the maximum rather than refused.
  const b = parseDecimal(requested.get('blksize') ?? '');
  if (b !== null && b >= MIN_BLKSIZE) {
    blksize = Math.min(b, limits.maxBlksize, MAX_BLKSIZE);
    oack.set('blksize', String(blksize));
  }

  // RFC 2349 ("Transfer Size Option"): in a read request the client sends 0 and the server answers with
  // the size. The value carries nothing, so any is accepted: atftp 0.8.0 sends the literal "enable".
  if (requested.has('tsize')) oack.set('tsize', String(fileSize));

  // RFC 2349 ("Timeout Interval Option"): 1..255 seconds, and the OACK must carry the client's value
  // unchanged, so a value we will not use is ignored rather than altered.
  const t = parseDecimal(requested.get('timeout') ?? '');
  if (t !== null && t >= MIN_TIMEOUT_S && t <= MAX_TIMEOUT_S) {
    timeoutMs = t * 1000;
    oack.set('timeout', String(t));
  }

  // RFC 7440 section 3: the server may answer with a smaller window than asked.
  const w = parseDecimal(requested.get('windowsize') ?? '');
  if (w !== null && w >= MIN_WINDOWSIZE) {
    windowsize = Math.min(w, limits.maxWindowsize);
    oack.set('windowsize', String(windowsize));
  }

  return { blksize, windowsize, timeoutMs, oack: oack.size > 0 ? oack : null };
}

export interface TimerHandle {
  cancel(): void;
}

/** The clock and timers a transfer uses; tests pass a manual clock. */
export interface Timers {
  now(): number;
  set(fn: () => void, ms: number): TimerHandle;
}

export const realTimers: Timers = {
  now: () => performance.now(),
  set(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

export interface TransferIo {
  /** Sends one datagram to the client: `packet`, followed by `payload` if given (no copy). */
  send(packet: Buffer, payload?: Buffer): void;
  timers?: Timers;
}

export interface TransferSettings extends Negotiated {
  /** Consecutive timeouts answered with a retransmission; the next one ends the transfer. */
  retries: number;
  /**
   * Retransmission timeout until the client's first ACK, when shorter than `timeoutMs`. RFC 2349's
   * timeout is the interval between retransmissions the client asked for; a peer that has never answered
   * has not shown it exists (its source may be forged), so it does not get to hold a transfer slot for
   * (retries + 1) x 255 s. Absent: `timeoutMs`.
   */
  firstAckTimeoutMs?: number;
}

export interface TransferOutcome {
  ok: boolean;
  /** Bytes of the file the client has acknowledged. */
  bytes: number;
  /** Packets sent again after a timeout. */
  retransmits: number;
  /** Why the transfer failed (absent on success). */
  reason?: string;
}

type State = 'idle' | 'negotiating' | 'sending' | 'done';

export class ReadTransfer {
  readonly done: Promise<TransferOutcome>;
  private resolveDone!: (outcome: TransferOutcome) => void;
  private state: State = 'idle';
  private readonly timers: Timers;
  private timer: TimerHandle | null = null;
  /** When the retransmission timer is due; Infinity when nothing is outstanding. */
  private deadline = Infinity;
  /** When the pending timer fires (it may be before `deadline`, then it sleeps on). */
  private timerDue = 0;
  /** Absolute block numbers (1-based, never wrapped); the wire carries them modulo 65536. */
  private windowStart = 1;
  private nextToSend = 1;
  private highestSent = 0;
  private acked = 0;
  private timeouts = 0;
  private retransmits = 0;
  private loadPending = false;
  private ackSeen = false;

  constructor(
    private readonly settings: TransferSettings,
    private readonly reader: BlockReader,
    private readonly io: TransferIo,
  ) {
    this.timers = io.timers ?? realTimers;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  /** Whether the client has acknowledged anything yet (tells a retransmitted RRQ from a new one). */
  get heardFromClient(): boolean {
    return this.ackSeen;
  }

  start(): void {
    if (this.state !== 'idle') return;
    if (this.settings.oack) {
      // RFC 2347, "Negotiation Protocol": a reader answers the OACK with ACK 0, then DATA 1 follows.
      this.state = 'negotiating';
      this.sendOack();
    } else {
      this.state = 'sending';
      this.pump();
    }
  }

  /** A packet from this transfer's client (the caller has checked the TID). */
  handle(packet: TftpPacket): void {
    if (this.state === 'done' || this.state === 'idle') return;
    if (packet.op === 'ERROR') {
      // RFC 1350 section 7: an ERROR ends the transfer and is neither acknowledged nor retransmitted.
      // RFC 2347: code 8 is the client refusing our OACK; it will ask again without options.
      this.finish(false, `client sent ERROR ${packet.code}: ${packet.message}`);
      return;
    }
    // Anything but ACK (a stray DATA, OACK or request) from our own client is ignored, not fatal: a
    // confused packet should not cost a node its boot.
    if (packet.op !== 'ACK') return;
    this.ackSeen = true;
    if (this.state === 'negotiating') {
      if (packet.block !== 0) return;
      this.state = 'sending';
      this.progress(0);
      return;
    }
    this.onAck(packet.block);
  }

  /** Ends the transfer from outside (server shutdown, socket error); tells the client if asked to. */
  abort(reason: string, notify?: { code: number; message: string }): void {
    if (this.state === 'done') return;
    if (notify) {
      try {
        this.io.send(encodeError(notify.code, notify.message));
      } catch {
        // The transfer ends either way; the client will time out instead of hearing why.
      }
    }
    this.finish(false, reason);
  }

  private onAck(wire: number): void {
    // Map the 16-bit wire number onto the only absolute block it can mean: one in
    // [windowStart - 1, highestSent]. That range is at most one window (<= 65535) long, so it is never
    // ambiguous, and it is what makes block numbers roll over past 65535 without special cases.
    const base = this.windowStart - 1;
    const distance = (wire - base) & 0xffff;
    if (distance > this.highestSent - base) return; // not a block of this window: stale or bogus
    if (distance === 0) {
      // A duplicate of the ACK that opened this window. Answering it with data again is the Sorcerer's
      // Apprentice bug (RFC 1123 section 4.2.3.1): every duplicate would double the traffic. Only the
      // timer retransmits.
      return;
    }
    const block = base + distance;
    if (block >= this.reader.lastBlock) {
      this.acked = block;
      this.finish(true);
      return;
    }
    this.progress(block);
  }

  /**
   * The client has every block up to `block`. RFC 7440 section 4: an ACK inside the window means the
   * blocks after it were lost, so the next window starts right after it either way.
   */
  private progress(block: number): void {
    this.acked = block;
    this.windowStart = block + 1;
    this.nextToSend = block + 1;
    this.timeouts = 0;
    this.cancelTimer();
    this.reader.releaseBefore(this.windowStart);
    this.pump();
  }

  private windowEnd(): number {
    return Math.min(this.windowStart + this.settings.windowsize - 1, this.reader.lastBlock);
  }

  /** Sends what is left of the current window; waits for the disk only when read-ahead fell behind. */
  private pump(): void {
    if (this.state !== 'sending' || this.loadPending) return;
    const end = this.windowEnd();
    while (this.nextToSend <= end) {
      const n = this.nextToSend;
      const payload = this.reader.peek(n);
      if (!payload) {
        this.loadPending = true;
        this.reader.load(n).then(
          () => {
            this.loadPending = false;
            this.pump();
          },
          (err: unknown) => {
            this.loadPending = false;
            const message = err instanceof Error ? err.message : String(err);
            this.abort(`read failed: ${message}`, { code: ErrorCode.NOT_DEFINED, message: 'Read error' });
          },
        );
        break;
      }
      // A fresh header per packet: a datagram the kernel could not take at once is queued with its
      // buffers, so a shared header would be overwritten before it left.
      if (!this.transmit(encodeDataHeader(n & 0xffff), payload)) return;
      if (n <= this.highestSent) this.retransmits++;
      else this.highestSent = n;
      this.nextToSend = n + 1;
    }
    this.armTimer();
  }

  private sendOack(): void {
    if (!this.settings.oack) return;
    if (!this.transmit(encodePacket({ op: 'OACK', options: this.settings.oack }))) return;
    this.armTimer();
  }

  /**
   * Sends one datagram; a send that throws (a closed socket, an address the kernel refuses) ends the
   * transfer rather than escaping into a timer or a socket handler, where it would be uncaught.
   */
  private transmit(packet: Buffer, payload?: Buffer): boolean {
    try {
      this.io.send(packet, payload);
      return true;
    } catch (err) {
      if (this.state !== 'done') {
        this.finish(false, `send failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      return false;
    }
  }

  /**
   * The retransmission timeout now: the negotiated one once the client has answered (see settings).
   * Without a negotiated `timeout`, an answering client's consecutive timeouts double it, up to
   * MAX_BACKOFF times: RFC 1123 section 4.2.3.2 asks TFTP for an adaptive timeout with exponential backoff.
   * In a boot storm (issue 19) the link's queue drops DATA and ACKs alike; a fixed 1 s gave up after 6 s
   * of silence while iPXE still retried for 15 s (its retry timer: 1/4 s doubling up to 10 s), and every
   * retransmission added to the congestion. With 5 retries the server now waits 1+2+4+8+8+8 = 31 s.
   * A client that negotiated `timeout` gets exactly that interval (RFC 2349); one that never answered gets
   * no backoff either (it has not shown it exists: issue 14).
   */
  private interval(): number {
    const first = this.settings.firstAckTimeoutMs;
    if (!this.ackSeen && first !== undefined) return Math.min(first, this.settings.timeoutMs);
    if (!this.ackSeen || this.settings.oack?.has('timeout')) return this.settings.timeoutMs;
    return this.settings.timeoutMs * Math.min(2 ** this.timeouts, MAX_BACKOFF);
  }

  /**
   * (Re)starts the retransmission clock. Moving a deadline is cheaper than a clearTimeout/setTimeout
   * pair per ACK; the one pending timer checks the deadline when it fires and sleeps on if it moved.
   */
  private armTimer(): void {
    if (this.state === 'done') return;
    const ms = this.interval();
    this.deadline = this.timers.now() + ms;
    // Backoff makes a deadline move earlier too (progress after long timeouts): a pending timer due
    // later than the new deadline is replaced.
    if (this.timer && this.timerDue > this.deadline) {
      this.timer.cancel();
      this.timer = null;
    }
    if (!this.timer) this.setTimer(ms);
  }

  private setTimer(ms: number): void {
    this.timerDue = this.timers.now() + ms;
    this.timer = this.timers.set(() => this.onTimer(), ms);
  }

  private cancelTimer(): void {
    this.deadline = Infinity;
  }

  private onTimer(): void {
    this.timer = null;
    if (this.state === 'done' || this.deadline === Infinity) return;
    const left = this.deadline - this.timers.now();
    if (left > 0) {
      this.setTimer(left);
      return;
    }
    this.deadline = Infinity;
    this.onTimeout();
  }

  /** RFC 1350 section 2: on timeout the sender retransmits what is unacknowledged; bounded, then gives up. */
  private onTimeout(): void {
    if (this.timeouts >= this.settings.retries) {
      const first = this.ackSeen ? '' : ' (waiting for the first ACK)';
      const message = `no ACK after ${this.timeouts + 1} timeouts of ${this.interval()} ms${first}`;
      this.abort(message, { code: ErrorCode.NOT_DEFINED, message: 'Timed out' });
      return;
    }
    this.timeouts++;
    if (this.state === 'negotiating') {
      this.retransmits++;
      this.sendOack();
      return;
    }
    this.nextToSend = this.windowStart;
    this.pump();
  }

  private finish(ok: boolean, reason?: string): void {
    this.state = 'done';
    this.cancelTimer();
    this.timer?.cancel();
    this.timer = null;
    const bytes = Math.min(this.acked * this.settings.blksize, this.reader.size);
    const outcome: TransferOutcome = { ok, bytes, retransmits: this.retransmits };
    if (reason !== undefined) outcome.reason = reason;
    // The file handle is closed before the outcome is reported, so a finished transfer holds nothing.
    // A failing close() (it cannot do much on a read-only handle) must not hide the outcome.
    void this.reader
      .close()
      .catch(() => undefined)
      .then(() => this.resolveDone(outcome));
  }
}
