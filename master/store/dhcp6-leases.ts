import { sqliteOf, type SqliteStore, type Store } from './db.js';

export type Lease6State = 'bound' | 'released' | 'expired' | 'declined';

/** One DHCPv6 address binding (RFC 8415 §6.2: a client's IA_NA, named by DUID and IAID). */
export interface Lease6Record {
  /** RFC 5952 text. */
  address: string;
  /** The client's DUID as lower-case hex. */
  duid: string;
  iaid: number;
  mac: string | null;
  state: Lease6State;
  /** Milliseconds since the epoch: end of the valid lifetime, or of a declined address's quarantine. */
  expiresAt: number;
  updatedAt: string;
}

interface Row {
  address: string;
  duid: string;
  iaid: number;
  mac: string | null;
  state: Lease6State;
  expires_at: number;
  updated_at: string;
}

const fromRow = (r: Row): Lease6Record => ({
  address: r.address,
  duid: r.duid,
  iaid: r.iaid,
  mac: r.mac,
  state: r.state,
  expiresAt: r.expires_at,
  updatedAt: r.updated_at,
});

/** DHCPv6 leases; journaled like the v4 leases so a backup master replays them. */
export class Lease6Store {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  all(): Lease6Record[] {
    return (this.store.db.prepare('SELECT * FROM dhcp6_leases ORDER BY address').all() as Row[]).map(fromRow);
  }

  /** The binding of one address (its primary key), if any. */
  get(address: string): Lease6Record | undefined {
    const row = this.store.db.prepare('SELECT * FROM dhcp6_leases WHERE address = ?').get(address) as
      Row | undefined;
    return row && fromRow(row);
  }

  /** Writes rows in one transaction (a batch of a whole event-loop turn, as the v4 server does). */
  put(leases: readonly Omit<Lease6Record, 'updatedAt'>[]): void {
    if (!leases.length) return;
    const stmt = this.store.db.prepare(
      `INSERT INTO dhcp6_leases (address, duid, iaid, mac, state, expires_at, updated_at)
       VALUES (@address, @duid, @iaid, @mac, @state, @expires_at, @updated_at)
       ON CONFLICT (address) DO UPDATE SET duid = excluded.duid, iaid = excluded.iaid, mac = excluded.mac,
         state = excluded.state, expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
    );
    this.store.write((journal) => {
      for (const l of leases) {
        const row: Row = {
          address: l.address,
          duid: l.duid,
          iaid: l.iaid,
          mac: l.mac,
          state: l.state,
          expires_at: Math.round(l.expiresAt),
          updated_at: this.store.now().toISOString(),
        };
        stmt.run(row);
        journal('dhcp6_leases', row.address, 'upsert', row as unknown as Record<string, unknown>);
      }
    });
  }
}
