/**
 * DHCPv6 address bindings in memory, backed by the dhcp6_leases table: the view decide6() reads, and the
 * effects it returns applied here, written to the store in one transaction per event-loop turn.
 */
import type { Lease6Record, Lease6State, Lease6Store } from '../store/dhcp6-leases.js';
import { formatIPv6, parseIPv6 } from './address.js';

export interface Binding6 {
  address: bigint;
  duid: string;
  iaid: number;
  mac: string | null;
  state: Lease6State;
  expiresAt: number;
}

export type Lease6Effect =
  | { kind: 'hold'; duid: string; iaid: number; address: bigint }
  | { kind: 'bind'; duid: string; iaid: number; mac: string | null; address: bigint; validSeconds: number }
  | { kind: 'release'; duid: string; iaid: number; address: bigint }
  | { kind: 'decline'; duid: string; iaid: number; address: bigint };

/** What decide6() may ask; it changes nothing. */
export interface Lease6View {
  /** The live binding of this address, if it is bound to (duid, iaid) and not expired. */
  boundTo(duid: string, iaid: number, address: bigint, now: number): Binding6 | undefined;
  /** An address for the client's IA: its binding, its hold, its hint, its previous address, or the lowest free. */
  choose(duid: string, iaid: number, hint: bigint | null, now: number): bigint | null;
}

const key = (duid: string, iaid: number): string => `${duid}/${iaid}`;

/** An allocation scans at most this many addresses, however big the range. */
const MAX_SCAN = 65_536;

export class Lease6Allocator implements Lease6View {
  private readonly byAddress = new Map<bigint, Binding6>();
  private readonly byClient = new Map<string, bigint>();
  private readonly holds = new Map<bigint, { client: string; until: number }>();
  private readonly holdByClient = new Map<string, bigint>();
  private pending: Omit<Lease6Record, 'updatedAt'>[] = [];
  private cursor: bigint;

  constructor(
    private readonly store: Lease6Store,
    private readonly first: bigint,
    private readonly last: bigint,
    private readonly holdMs = 30_000,
    private readonly quarantineMs = 600_000,
    /**
     * Whether the node with this MAC is recorded at this address (nodes/address.ts recordNodeIp6). A node
     * environment keeps the address its firmware leased, though the firmware released it when the kernel
     * took over and nothing renews it (no DHCPv6 client there): such an address is not given to another
     * client while the node's record names it.
     */
    private readonly nodeHolds?: (address: string, mac: string) => boolean,
  ) {
    this.cursor = first;
    for (const r of store.all()) {
      const address = parseIPv6(r.address);
      if (address === null) continue;
      const b: Binding6 = {
        address,
        duid: r.duid,
        iaid: r.iaid,
        mac: r.mac,
        state: r.state,
        expiresAt: r.expiresAt,
      };
      this.byAddress.set(address, b);
      this.byClient.set(key(r.duid, r.iaid), address);
    }
  }

  boundTo(duid: string, iaid: number, address: bigint, now: number): Binding6 | undefined {
    const b = this.byAddress.get(address);
    return b && b.state === 'bound' && b.expiresAt > now && b.duid === duid && b.iaid === iaid
      ? b
      : undefined;
  }

  private freeFor(client: string, address: bigint, now: number): boolean {
    if (address < this.first || address > this.last) return false;
    const b = this.byAddress.get(address);
    if (b && key(b.duid, b.iaid) !== client) {
      if ((b.state === 'bound' || b.state === 'declined') && b.expiresAt > now) return false;
      if (b.mac !== null && this.nodeHolds?.(formatIPv6(address), b.mac)) return false;
    }
    if (b && b.state === 'declined' && b.expiresAt > now) return false;
    const h = this.holds.get(address);
    return !h || h.client === client || h.until <= now;
  }

  choose(duid: string, iaid: number, hint: bigint | null, now: number): bigint | null {
    const client = key(duid, iaid);
    const previous = this.byClient.get(client);
    const held = this.holdByClient.get(client);
    for (const candidate of [previous, held, hint]) {
      if (candidate !== undefined && candidate !== null && this.freeFor(client, candidate, now))
        return candidate;
    }
    const size = this.last - this.first + 1n;
    const limit = size < BigInt(MAX_SCAN) ? size : BigInt(MAX_SCAN);
    let a = this.cursor;
    for (let i = 0n; i < limit; i++) {
      if (a > this.last) a = this.first;
      // Addresses another client held before are skipped while unused ones remain (a fresh one first).
      const b = this.byAddress.get(a);
      if ((!b || b.expiresAt <= now) && this.freeFor(client, a, now)) {
        this.cursor = a + 1n;
        return a;
      }
      a++;
    }
    return null;
  }

  apply(e: Lease6Effect, now: number): void {
    const client = key(e.duid, e.iaid);
    const text = formatIPv6(e.address);
    if (e.kind === 'hold') {
      const old = this.holdByClient.get(client);
      if (old !== undefined) this.holds.delete(old);
      this.holds.set(e.address, { client, until: now + this.holdMs });
      this.holdByClient.set(client, e.address);
      return;
    }
    this.holds.delete(e.address);
    this.holdByClient.delete(client);
    const prev = this.byAddress.get(e.address);
    const mac = e.kind === 'bind' ? e.mac : (prev?.mac ?? null);
    const state: Lease6State = e.kind === 'bind' ? 'bound' : e.kind === 'release' ? 'released' : 'declined';
    const expiresAt =
      e.kind === 'bind' ? now + e.validSeconds * 1000 : e.kind === 'decline' ? now + this.quarantineMs : now;
    const b: Binding6 = { address: e.address, duid: e.duid, iaid: e.iaid, mac, state, expiresAt };
    this.byAddress.set(e.address, b);
    if (e.kind === 'bind') this.byClient.set(client, e.address);
    this.pending.push({ address: text, duid: e.duid, iaid: e.iaid, mac, state, expiresAt });
  }

  /** Writes the staged rows in one transaction. Throws when the store does (the replies are then not sent). */
  flush(): void {
    const rows = this.pending;
    this.pending = [];
    this.store.put(rows);
  }

  bound(now: number): number {
    let n = 0;
    for (const b of this.byAddress.values()) if (b.state === 'bound' && b.expiresAt > now) n++;
    return n;
  }
}
