import { sqliteOf, type Journal, type SqliteStore, type Store } from './db.js';

export type CredentialReason = 'first-enlist' | 'recovery';

/** A node's credential as stored: its SHA-256 only (master/nodes/credentials.ts makes and checks them). */
export interface NodeCredentialRecord {
  mac: string;
  hash: string;
  issuedAt: string;
  issuedIp: string | null;
  reason: CredentialReason;
}

interface Row {
  mac: string;
  hash: string;
  issued_at: string;
  issued_ip: string | null;
  reason: CredentialReason;
}

function fromRow(r: Row): NodeCredentialRecord {
  return { mac: r.mac, hash: r.hash, issuedAt: r.issued_at, issuedIp: r.issued_ip, reason: r.reason };
}

/** One credential per node; a new one replaces the old (which then stops working). Journaled. */
export class NodeCredentialStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  get(mac: string): NodeCredentialRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM node_credentials WHERE mac = ?').get(mac) as
      Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  putIn(
    journal: Journal,
    c: { mac: string; hash: string; issuedIp: string | null; reason: CredentialReason },
  ): NodeCredentialRecord {
    this.store.db
      .prepare(
        `INSERT INTO node_credentials (mac, hash, issued_at, issued_ip, reason) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (mac) DO UPDATE SET hash = excluded.hash, issued_at = excluded.issued_at,
           issued_ip = excluded.issued_ip, reason = excluded.reason`,
      )
      .run(c.mac, c.hash, this.store.now().toISOString(), c.issuedIp, c.reason);
    const row = this.store.row('node_credentials', c.mac) as Row | undefined;
    if (!row) throw new Error(`credential of ${c.mac} vanished inside its own transaction`);
    journal('node_credentials', c.mac, 'upsert', row as unknown as Record<string, unknown>);
    return fromRow(row);
  }

  deleteIn(journal: Journal, mac: string): void {
    this.store.db.prepare('DELETE FROM node_credentials WHERE mac = ?').run(mac);
    journal('node_credentials', mac, 'delete');
  }
}
