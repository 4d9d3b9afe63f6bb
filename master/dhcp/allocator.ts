/**
 * Lease allocation. The store is the truth (one `leases` row per address); this class keeps an in-memory
 * index of those rows so a DHCPDISCOVER costs no query, and keeps offers in memory only: an offer binds
 * nothing, and the DHCPREQUEST that follows is checked against the index again, so a restart between
 * the two cannot double-allocate.
 *
 * Writes are staged, then committed together by `flush()` (group commit): a change is in the index at
 * once, so the next decision already sees it, and reaches the store in one transaction per batch. The
 * server flushes before it sends any reply, which keeps RFC 2131 §3.1 step 4 — the server "commits the
 * binding for the client to persistent storage and responds with a DHCPACK" — while one commit carries
 * every binding that arrived in the same event-loop turn. If a commit fails the index is rebuilt from
 * the store and the replies waiting on it are dropped.
 *
 * The read side (`LeaseView`) is what the pure policy consults; the write side is applied by the server
 * from the effects the policy returns.
 */
import type { LeaseRecord, LeaseStore, LeaseWrite, ReservationRecord } from '../store/leases.js';
import type { Logger } from '../util/logger.js';
import { formatIp, inRange, inSubnet, parseIp, type Pool } from './pool.js';

/**
 * Why an address may or may not be bound to a client now. `not-its-reservation`: the client has a
 * reservation on this pool that it can have now, and asks for another address.
 */
export type Availability =
  | 'ok'
  | 'wrong-subnet'
  | 'outside-range'
  | 'excluded'
  | 'reserved'
  | 'not-its-reservation'
  | 'declined'
  | 'taken';

/** A lease change the policy asks for; the server applies it with `LeaseAllocator.apply` before replying. */
export type LeaseEffect =
  | { kind: 'hold'; mac: string; ip: string }
  | { kind: 'unhold'; mac: string }
  | {
      kind: 'bind';
      mac: string;
      ip: string;
      clientId: string | null;
      hostname: string | null;
      leaseSeconds: number;
    }
  | { kind: 'release'; mac: string; ip: string }
  | { kind: 'decline'; mac: string; ip: string };

export interface Choice {
  ip: string;
  /** Which rule of RFC 2131 §4.3.1's order picked it (reservation first: an operator's word wins). */
  source: 'reservation' | 'offer' | 'current' | 'previous' | 'requested' | 'free';
  /** Something the operator should hear about (a reservation that could not be honoured yet). */
  warning?: string;
}

/** What the policy may ask. Reads only: nothing here changes state. */
export interface LeaseView {
  /** An address to offer `mac` on `pool`, or null when the pool is exhausted for it. */
  choose(mac: string, pool: Pool, requestedIp: string | null, now: number): Choice | null;
  /** Whether `ip` may be bound to `mac` on `pool` now. */
  check(mac: string, ip: string, pool: Pool, now: number): Availability;
  /** True when the store's row for `ip`, or a reservation, says it is `mac`'s address. */
  isOnRecord(mac: string, ip: string): boolean;
  /** True when the store has any row for `mac` (RFC 2131 §4.3.2: no record → stay silent). */
  knows(mac: string): boolean;
  reservationFor(mac: string): ReservationRecord | undefined;
}

export interface AllocatorOptions {
  leases: LeaseStore;
  logger: Logger;
  /**
   * How long an offered address stays set aside for the client it was offered to, so two DISCOVERs in
   * quick succession do not get the same address. RFC 2131 §4.3.1 leaves this to the server; clients
   * send their DHCPREQUEST within seconds, and 30 s covers a PXE ROM's slowest retry.
   */
  offerHoldMs?: number;
  /** How long a declined address (RFC 2131 §4.3.3: in use by someone we do not know) is left alone. */
  declineQuarantineMs?: number;
}

interface Offer {
  ip: number;
  mac: string;
  until: number;
}

/** Per-pool scan state: every address below `hint` was found unavailable, and stays so until `resetAt`. */
interface ScanState {
  pool: Pool;
  hint: number;
  resetAt: number;
}

export class LeaseAllocator implements LeaseView {
  private readonly leases: LeaseStore;
  private readonly logger: Logger;
  private readonly offerHoldMs: number;
  private readonly declineQuarantineMs: number;
  private readonly rows = new Map<number, LeaseRecord>();
  private readonly macIps = new Map<string, Set<number>>();
  private readonly offersByMac = new Map<string, Offer>();
  private readonly offersByIp = new Map<number, Offer>();
  private readonly scans = new Map<string, ScanState>();
  private pending: LeaseWrite[] = [];

  constructor(options: AllocatorOptions) {
    this.leases = options.leases;
    this.logger = options.logger;
    this.offerHoldMs = options.offerHoldMs ?? 30_000;
    this.declineQuarantineMs = options.declineQuarantineMs ?? 10 * 60_000;
    this.load();
  }

  private load(): void {
    this.rows.clear();
    this.macIps.clear();
    for (const row of this.leases.all()) {
      const ip = parseIp(row.ip);
      if (ip === null) {
        this.logger.warn({ ip: row.ip }, 'ignoring a lease row whose address is not IPv4');
        continue;
      }
      this.index(ip, row);
    }
    for (const scan of this.scans.values()) {
      scan.hint = scan.pool.rangeStart;
      scan.resetAt = Infinity;
    }
  }

  // ------------------------------------------------------------------------------------ read side

  choose(mac: string, pool: Pool, requestedIp: string | null, now: number): Choice | null {
    const reservation = this.reservationOnPool(mac, pool);
    if (reservation && this.blockedUntil(mac, reservation.ip, now) === 0) {
      return { ip: reservation.text, source: 'reservation' };
    }
    const choice = this.chooseDynamic(mac, pool, requestedIp, now);
    if (!reservation || !choice) return choice;
    const warning = `reserved address ${reservation.text} is leased to another client until that lease ends`;
    return { ...choice, warning };
  }

  private chooseDynamic(mac: string, pool: Pool, requestedIp: string | null, now: number): Choice | null {
    const offer = this.offersByMac.get(mac);
    if (offer && offer.until > now && this.usable(mac, offer.ip, pool, now)) {
      return { ip: formatIp(offer.ip), source: 'offer' };
    }
    // The client's current binding, else its previous one (RFC 2131 §4.3.1), newest first.
    const mine = [...(this.macIps.get(mac) ?? [])]
      .map((ip) => this.rows.get(ip))
      .filter((r): r is LeaseRecord => r !== undefined && r.state !== 'declined')
      .sort((a, b) => rank(b, now) - rank(a, now) || b.updatedAt.localeCompare(a.updatedAt));
    for (const row of mine) {
      const ip = parseIp(row.ip) ?? -1;
      if (this.usable(mac, ip, pool, now)) {
        return { ip: row.ip, source: row.state === 'bound' && row.expiresAt > now ? 'current' : 'previous' };
      }
    }
    if (requestedIp !== null) {
      const ip = parseIp(requestedIp);
      if (ip !== null && this.usable(mac, ip, pool, now)) return { ip: requestedIp, source: 'requested' };
    }
    const free = this.scan(mac, pool, now);
    return free === null ? null : { ip: formatIp(free), source: 'free' };
  }

  check(mac: string, ipText: string, pool: Pool, now: number): Availability {
    const ip = parseIp(ipText);
    if (ip === null || !inSubnet(ip, pool)) return 'wrong-subnet';
    const reservation = this.leases.reservationOf(ipText);
    if (reservation && reservation.mac !== mac) return 'reserved';
    // The same rule as `choose`: a reservation the client can have now wins over any other address, so
    // a client that got its reservation after its dynamic lease is refused the old address (and, told
    // DHCPNAK, starts again and is offered the reservation); one still leased to another client does not
    // count yet, or the client would be refused the only address it can be offered.
    const own = this.reservationOnPool(mac, pool);
    if (own && own.ip !== ip && this.blockedUntil(mac, own.ip, now) === 0) return 'not-its-reservation';
    if (pool.excluded.has(ip)) return 'excluded';
    if (!reservation && !inRange(pool, ip)) return 'outside-range';
    const row = this.rows.get(ip);
    if (row?.state === 'declined' && row.expiresAt > now) return 'declined';
    return this.blockedUntil(mac, ip, now) === 0 ? 'ok' : 'taken';
  }

  isOnRecord(mac: string, ipText: string): boolean {
    const ip = parseIp(ipText);
    const row = ip === null ? undefined : this.rows.get(ip);
    if (row && row.mac === mac && row.state !== 'declined') return true;
    return this.leases.reservationFor(mac)?.ip === ipText;
  }

  knows(mac: string): boolean {
    return (this.macIps.get(mac)?.size ?? 0) > 0 || this.leases.reservationFor(mac) !== undefined;
  }

  reservationFor(mac: string): ReservationRecord | undefined {
    return this.leases.reservationFor(mac);
  }

  /** The lease row for an address, as indexed (for tests and the API). */
  lease(ip: string): LeaseRecord | undefined {
    const n = parseIp(ip);
    return n === null ? undefined : this.rows.get(n);
  }

  boundCount(now: number): number {
    let n = 0;
    for (const row of this.rows.values()) if (row.state === 'bound' && row.expiresAt > now) n++;
    return n;
  }

  // ----------------------------------------------------------------------------------- write side

  /** Applies one effect (staged: see `flush`); returns the new row for a bind, for the caller to report. */
  apply(effect: LeaseEffect, now: number): LeaseRecord | null {
    switch (effect.kind) {
      case 'hold':
        this.hold(effect.mac, effect.ip, now);
        return null;
      case 'unhold':
        this.unhold(effect.mac);
        return null;
      case 'bind':
        return this.bind(effect.mac, effect.ip, effect, now);
      case 'release':
        this.release(effect.mac, effect.ip, now);
        return null;
      case 'decline':
        this.decline(effect.mac, effect.ip, now);
        return null;
    }
  }

  /**
   * Commits every staged write in one transaction. Throws CorralError STORE_FAILED if the store refuses
   * it, after rebuilding the index from the store (the staged changes are gone; nothing was promised yet).
   */
  flush(): number {
    if (this.pending.length === 0) return 0;
    const batch = this.pending;
    this.pending = [];
    try {
      this.leases.put(batch);
    } catch (err) {
      this.load();
      throw err;
    }
    return batch.length;
  }

  /** Writes staged but not yet committed. */
  get pendingWrites(): number {
    return this.pending.length;
  }

  /** Sets `ip` aside for `mac` after a DHCPOFFER (memory only). */
  hold(mac: string, ipText: string, now: number): void {
    const ip = parseIp(ipText);
    if (ip === null) return;
    this.unhold(mac);
    const offer = { ip, mac, until: now + this.offerHoldMs };
    this.offersByMac.set(mac, offer);
    this.offersByIp.set(ip, offer);
  }

  /** Drops `mac`'s offer: it chose another server (RFC 2131 §4.3.2), or it was bound. */
  unhold(mac: string): void {
    const offer = this.offersByMac.get(mac);
    if (!offer) return;
    this.offersByMac.delete(mac);
    if (this.offersByIp.get(offer.ip) === offer) this.offersByIp.delete(offer.ip);
    this.lowerHint(offer.ip);
  }

  /** Binds `ip` to `mac`, releasing any other address the client still held: a client has one binding. */
  bind(
    mac: string,
    ipText: string,
    lease: { clientId: string | null; hostname: string | null; leaseSeconds: number },
    now: number,
  ): LeaseRecord {
    const writes: LeaseWrite[] = [
      {
        ip: ipText,
        mac,
        clientId: lease.clientId,
        hostname: lease.hostname,
        state: 'bound',
        expiresAt: now + lease.leaseSeconds * 1000,
      },
    ];
    for (const other of this.macIps.get(mac) ?? []) {
      const row = this.rows.get(other);
      if (row && row.ip !== ipText && row.state === 'bound' && row.expiresAt > now) {
        writes.push({ ...row, state: 'released', expiresAt: now });
      }
    }
    const offer = this.offersByMac.get(mac);
    if (offer) {
      this.offersByMac.delete(mac);
      if (this.offersByIp.get(offer.ip) === offer) this.offersByIp.delete(offer.ip);
    }
    return this.stage(writes, now)[0] as LeaseRecord;
  }

  /** RFC 2131 §4.3.4: the client gives its address back. Only the holder can release it. */
  release(mac: string, ipText: string, now: number): boolean {
    const ip = parseIp(ipText);
    const row = ip === null ? undefined : this.rows.get(ip);
    if (ip === null || !row || row.mac !== mac || row.state !== 'bound') return false;
    this.stage([{ ...row, state: 'released', expiresAt: now }], now);
    this.lowerHint(ip);
    return true;
  }

  /**
   * RFC 2131 §4.3.3: the client found `ip` in use (ARP) — quarantine it. Only an address offered or
   * bound to this client can be declined, so no client can take addresses out of the pool at will.
   */
  decline(mac: string, ipText: string, now: number): boolean {
    const ip = parseIp(ipText);
    if (ip === null) return false;
    const row = this.rows.get(ip);
    const offered = this.offersByMac.get(mac)?.ip === ip;
    if (!offered && row?.mac !== mac) return false;
    this.unhold(mac);
    this.stage(
      [
        {
          ip: ipText,
          mac,
          clientId: row?.clientId ?? null,
          hostname: row?.hostname ?? null,
          state: 'declined',
          expiresAt: now + this.declineQuarantineMs,
        },
      ],
      now,
    );
    return true;
  }

  /**
   * Marks bindings past their end as expired and quarantines past their end as over (staged, like every
   * write), forgets stale offers, and restarts every pool's scan from its first address. Decisions never
   * wait for this: they compare `expiresAt` with the clock themselves; the sweep keeps the table honest
   * for the operator and bounds the scan hints.
   */
  sweep(now: number): number {
    const writes: LeaseWrite[] = [];
    for (const row of this.rows.values()) {
      if ((row.state === 'bound' || row.state === 'declined') && row.expiresAt <= now) {
        writes.push({ ...row, state: 'expired' });
      }
    }
    if (writes.length > 0) this.stage(writes, now);
    for (const [mac, offer] of this.offersByMac) {
      if (offer.until <= now) {
        this.offersByMac.delete(mac);
        if (this.offersByIp.get(offer.ip) === offer) this.offersByIp.delete(offer.ip);
      }
    }
    for (const scan of this.scans.values()) {
      scan.hint = scan.pool.rangeStart;
      scan.resetAt = Infinity;
    }
    return writes.length;
  }

  // -------------------------------------------------------------------------------------- helpers

  /** Puts writes in the index now and queues them for the next `flush`. */
  private stage(writes: LeaseWrite[], now: number): LeaseRecord[] {
    const updatedAt = new Date(now).toISOString();
    const records = writes.map((w) => ({ ...w, updatedAt }));
    for (const r of records) this.index(parseIp(r.ip) ?? -1, r);
    this.pending.push(...writes);
    return records;
  }

  private index(ip: number, row: LeaseRecord): void {
    const previous = this.rows.get(ip);
    if (previous && previous.mac !== row.mac) this.macIps.get(previous.mac)?.delete(ip);
    this.rows.set(ip, row);
    let set = this.macIps.get(row.mac);
    if (!set) {
      set = new Set();
      this.macIps.set(row.mac, set);
    }
    set.add(ip);
  }

  /** 0 when nothing in memory stops `mac` from having `ip`; else when the obstacle ends (ms). */
  private blockedUntil(mac: string, ip: number, now: number): number {
    const offer = this.offersByIp.get(ip);
    if (offer && offer.mac !== mac && offer.until > now) return offer.until;
    const row = this.rows.get(ip);
    if (!row || row.expiresAt <= now) return 0;
    if (row.state === 'declined') return row.expiresAt;
    if (row.mac !== mac && (row.state === 'bound' || row.state === 'offered')) return row.expiresAt;
    return 0;
  }

  /** `mac`'s reservation, when it lies on `pool`'s subnet (a reservation elsewhere means nothing here). */
  private reservationOnPool(mac: string, pool: Pool): { ip: number; text: string } | null {
    const text = this.leases.reservationFor(mac)?.ip;
    const ip = text === undefined ? null : parseIp(text);
    return text !== undefined && ip !== null && inSubnet(ip, pool) ? { ip, text } : null;
  }

  private reservedForOther(mac: string, ip: number): boolean {
    const r = this.leases.reservationOf(formatIp(ip));
    return r !== undefined && r.mac !== mac;
  }

  /** A dynamic address `mac` may be offered: in the range, not excluded, free, not someone's reservation. */
  private usable(mac: string, ip: number, pool: Pool, now: number): boolean {
    return (
      inRange(pool, ip) &&
      !pool.excluded.has(ip) &&
      this.blockedUntil(mac, ip, now) === 0 &&
      !this.reservedForOther(mac, ip)
    );
  }

  /**
   * The lowest free address of the pool. The scan starts at the pool's hint (everything below it was
   * taken when last looked at, until `resetAt`), so a busy pool is not walked from the start for every
   * DHCPDISCOVER; if that finds nothing, one full walk makes sure. At most two walks of the range.
   */
  private scan(mac: string, pool: Pool, now: number): number | null {
    let state = this.scans.get(pool.subnet);
    if (!state) {
      state = { pool, hint: pool.rangeStart, resetAt: Infinity };
      this.scans.set(pool.subnet, state);
    }
    if (now >= state.resetAt) {
      state.hint = pool.rangeStart;
      state.resetAt = Infinity;
    }
    const found = this.walk(state, mac, now);
    if (found !== null || state.hint === pool.rangeStart) return found;
    state.hint = pool.rangeStart;
    state.resetAt = Infinity;
    return this.walk(state, mac, now);
  }

  private walk(state: ScanState, mac: string, now: number): number | null {
    const { pool } = state;
    for (let ip = state.hint; ip <= pool.rangeEnd; ip++) {
      let until = pool.excluded.has(ip) ? Infinity : this.blockedUntil(mac, ip, now);
      if (until === 0 && this.reservedForOther(mac, ip)) until = Infinity;
      if (until === 0) {
        state.hint = ip;
        return ip;
      }
      // Addresses held for `mac` itself never reach here (they are free for it), so advancing past a
      // blocked one is safe for every client.
      state.hint = ip + 1;
      state.resetAt = Math.min(state.resetAt, until);
    }
    return null;
  }

  private lowerHint(ip: number): void {
    for (const state of this.scans.values()) {
      if (inRange(state.pool, ip) && ip < state.hint) state.hint = ip;
    }
  }
}

/** Current bindings sort before expired or released ones. */
function rank(row: LeaseRecord, now: number): number {
  return row.state === 'bound' && row.expiresAt > now ? 1 : 0;
}
