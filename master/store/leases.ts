import type Database from 'better-sqlite3';
import { sqliteOf, type Journal, type SqliteStore, type Store } from './db.js';

export const LEASE_STATES = ['offered', 'bound', 'released', 'expired', 'declined'] as const;
export type LeaseState = (typeof LEASE_STATES)[number];

/**
 * One row per address (the `leases` table's key is `ip`). A row outlives its binding: a released or
 * expired row keeps the MAC so a returning client can get its previous address back (RFC 2131 §4.3.1).
 */
export interface LeaseRecord {
  ip: string;
  mac: string;
  /** Option 61 as hex, recorded for the operator; leases are keyed by MAC (see docs/dhcp.md). */
  clientId: string | null;
  hostname: string | null;
  state: LeaseState;
  /** Milliseconds since the epoch: the end of the binding, or of a declined address's quarantine. */
  expiresAt: number;
  updatedAt: string;
}

export interface ReservationRecord {
  mac: string;
  ip: string;
  hostname: string | null;
}

interface LeaseRow {
  ip: string;
  mac: string;
  client_id: string | null;
  hostname: string | null;
  state: LeaseState;
  expires_at: number;
  updated_at: string;
}

function fromRow(r: LeaseRow): LeaseRecord {
  return {
    ip: r.ip,
    mac: r.mac,
    clientId: r.client_id,
    hostname: r.hostname,
    state: r.state,
    expiresAt: r.expires_at,
    updatedAt: r.updated_at,
  };
}

export type LeaseWrite = Omit<LeaseRecord, 'updatedAt'>;

/**
 * Reservations are read several times per DHCP exchange; they change rarely. One cache per SqliteStore (shared
 * by every LeaseStore over it) is dropped on every reservation write made here, and re-read at most
 * RESERVATION_CACHE_MS after it was loaded, so a write that bypasses this class (a replicated change)
 * shows within that bound.
 */
const RESERVATION_CACHE_MS = 1000;

interface ReservationCache {
  loadedAt: number;
  byMac: Map<string, ReservationRecord>;
  byIp: Map<string, ReservationRecord>;
}

const reservationCaches = new WeakMap<SqliteStore, ReservationCache>();

/**
 * Leases and static reservations. Every mutation runs inside Store.write and journals the row as stored,
 * like NodeStore, so a backup master replays them. The DHCP allocator is the only writer of `leases`
 * while the DHCP server runs; reservations are written by the API/CLI and read fresh on each request.
 */
export class LeaseStore {
  private readonly upsertStmt: Database.Statement;
  private readonly byIpStmt: Database.Statement;
  private readonly allReservationsStmt: Database.Statement;

  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
    const db = this.store.db;
    this.upsertStmt = db.prepare(
      `INSERT INTO leases (ip, mac, client_id, hostname, state, expires_at, updated_at)
       VALUES (@ip, @mac, @client_id, @hostname, @state, @expires_at, @updated_at)
       ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, client_id = excluded.client_id,
         hostname = excluded.hostname, state = excluded.state, expires_at = excluded.expires_at,
         updated_at = excluded.updated_at`,
    );
    this.byIpStmt = db.prepare('SELECT * FROM leases WHERE ip = ?');
    this.allReservationsStmt = db.prepare('SELECT * FROM reservations ORDER BY ip');
  }

  all(): LeaseRecord[] {
    return (this.store.db.prepare('SELECT * FROM leases ORDER BY ip').all() as LeaseRow[]).map(fromRow);
  }

  get(ip: string): LeaseRecord | undefined {
    const r = this.byIpStmt.get(ip) as LeaseRow | undefined;
    return r ? fromRow(r) : undefined;
  }

  byMac(mac: string): LeaseRecord[] {
    return (this.store.db.prepare('SELECT * FROM leases WHERE mac = ?').all(mac) as LeaseRow[]).map(fromRow);
  }

  /** Writes one lease row inside the caller's transaction and journals it. */
  putIn(journal: Journal, lease: LeaseWrite): LeaseRecord {
    const row: LeaseRow = {
      ip: lease.ip,
      mac: lease.mac,
      client_id: lease.clientId,
      hostname: lease.hostname,
      state: lease.state,
      expires_at: Math.round(lease.expiresAt),
      updated_at: this.store.now().toISOString(),
    };
    this.upsertStmt.run(row);
    journal('leases', row.ip, 'upsert', row as unknown as Record<string, unknown>);
    return fromRow(row);
  }

  /** Writes several lease rows in one transaction (a bind that also releases the client's old address). */
  put(leases: readonly LeaseWrite[]): LeaseRecord[] {
    return this.store.write((journal) => leases.map((l) => this.putIn(journal, l)));
  }

  deleteIn(journal: Journal, ip: string): void {
    this.store.db.prepare('DELETE FROM leases WHERE ip = ?').run(ip);
    journal('leases', ip, 'delete');
  }

  delete(ip: string): void {
    this.store.write((journal) => this.deleteIn(journal, ip));
  }

  reservations(): ReservationRecord[] {
    return this.allReservationsStmt.all() as ReservationRecord[];
  }

  reservationFor(mac: string): ReservationRecord | undefined {
    return this.reservationCache().byMac.get(mac);
  }

  reservationOf(ip: string): ReservationRecord | undefined {
    return this.reservationCache().byIp.get(ip);
  }

  private reservationCache(): ReservationCache {
    const now = Date.now();
    let cache = reservationCaches.get(this.store);
    if (!cache || now - cache.loadedAt >= RESERVATION_CACHE_MS || now < cache.loadedAt) {
      const rows = this.reservations();
      cache = {
        loadedAt: now,
        byMac: new Map(rows.map((r) => [r.mac, r])),
        byIp: new Map(rows.map((r) => [r.ip, r])),
      };
      reservationCaches.set(this.store, cache);
    }
    return cache;
  }

  /** Reserves `ip` for `mac` (replacing the MAC's previous reservation); the ip must not be reserved by another. */
  reserveIn(journal: Journal, r: ReservationRecord): ReservationRecord {
    this.store.db
      .prepare(
        `INSERT INTO reservations (mac, ip, hostname) VALUES (?, ?, ?)
         ON CONFLICT (mac) DO UPDATE SET ip = excluded.ip, hostname = excluded.hostname`,
      )
      .run(r.mac, r.ip, r.hostname);
    reservationCaches.delete(this.store);
    const row = this.store.row('reservations', r.mac);
    journal('reservations', r.mac, 'upsert', row);
    return row as unknown as ReservationRecord;
  }

  reserve(r: ReservationRecord): ReservationRecord {
    return this.store.write((journal) => this.reserveIn(journal, r));
  }

  unreserveIn(journal: Journal, mac: string): void {
    this.store.db.prepare('DELETE FROM reservations WHERE mac = ?').run(mac);
    reservationCaches.delete(this.store);
    journal('reservations', mac, 'delete');
  }

  unreserve(mac: string): void {
    this.store.write((journal) => this.unreserveIn(journal, mac));
  }
}
