import type Database from 'better-sqlite3';
import { sqliteOf, type SqliteStore, type Store } from './db.js';

/** One step of a boot attempt as stored; `detail` is the step's own fields (see master/boot/activity.ts). */
export interface BootActivityEntry {
  id: number;
  mac: string;
  at: string;
  kind: string;
  summary: string;
  failed: boolean;
  hint: string | null;
  detail: Record<string, unknown>;
}

export type BootActivityWrite = Omit<BootActivityEntry, 'id'>;

/** A tracked MAC: its newest step, its newest failing step (if any is still kept), and the node if enlisted. */
export interface BootActivityMachine {
  mac: string;
  firstAt: string;
  lastAt: string;
  entries: number;
  node: { name: string; state: string } | null;
  last: BootActivityEntry | null;
  /** The newest failing step, unless a later step of the same kind succeeded (web-ui/node-view.ts bootTimeline). */
  failure: BootActivityEntry | null;
}

export interface BootActivityLimits {
  /** Steps kept per MAC; older ones are deleted on insert. */
  perMac: number;
  /** MACs tracked; the one whose newest step is oldest is evicted with its steps. */
  maxMacs: number;
  /** Steps held in memory before a flush is forced (a timer flushes the rest; see BootActivity). */
  batch: number;
}

/** 100 steps hold several full attempts (a PXE boot to enlistment is about a dozen); 1000 MACs is a large rack room. */
export const BOOT_ACTIVITY_LIMITS: BootActivityLimits = Object.freeze({
  perMac: 100,
  maxMacs: 1000,
  batch: 512,
});

/** Beyond this many unflushed steps (the database failing), the oldest are dropped: memory stays bounded. */
const MAX_PENDING = 10_000;

interface Row {
  id: number;
  mac: string;
  at: string;
  kind: string;
  summary: string;
  failed: number;
  hint: string | null;
  detail: string;
}

function fromRow(r: Row): BootActivityEntry {
  return {
    id: r.id,
    mac: r.mac,
    at: r.at,
    kind: r.kind,
    summary: r.summary,
    failed: r.failed === 1,
    hint: r.hint,
    detail: JSON.parse(r.detail) as Record<string, unknown>,
  };
}

/**
 * The boot timeline's storage. Writes are buffered: `add` only appends to an array, and `flush` writes
 * the batch in one transaction and enforces the bounds there, so a boot storm (DHCP at thousands of
 * packets per second) costs one commit per batch, not one per packet. Reads flush first, so a page or
 * API call always sees every step recorded before it. Per master, not journaled (like exec_runs).
 */
export class BootActivityStore {
  private pending: BootActivityWrite[] = [];
  private dropped = 0;
  private failing = false;
  private readonly limits: BootActivityLimits;
  private statements:
    | {
        insert: Database.Statement;
        upsertMac: Database.Statement;
        trim: Database.Statement;
        setCount: Database.Statement;
        countMacs: Database.Statement;
        oldestMacs: Database.Statement;
        deleteMacEntries: Database.Statement;
        deleteMac: Database.Statement;
      }
    | undefined;

  private readonly store: SqliteStore;

  constructor(store: Store, limits: Partial<BootActivityLimits> = {}) {
    this.store = sqliteOf(store);
    this.limits = Object.freeze({ ...BOOT_ACTIVITY_LIMITS, ...limits });
  }

  get bounds(): BootActivityLimits {
    return this.limits;
  }

  /** Steps lost because the database refused them (they stayed pending past MAX_PENDING). */
  get droppedCount(): number {
    return this.dropped;
  }

  /**
   * Never throws: a full batch that cannot be written stays pending (bounded by shed()) and is logged once;
   * until a flush succeeds again (the caller's timer retries), adds only buffer.
   */
  add(entry: BootActivityWrite): void {
    this.pending.push(entry);
    if (this.failing) return this.shed();
    if (this.pending.length < this.limits.batch) return;
    try {
      this.flush();
    } catch (err) {
      this.failing = true;
      this.shed();
      this.store.logger.warn({ err, pending: this.pending.length }, 'boot activity not written');
    }
  }

  /** Writes the pending steps; returns how many. Throws if the database does (the steps stay pending). */
  flush(): number {
    if (this.pending.length === 0) return 0;
    const batch = this.pending;
    const s = this.prepared();
    // One upsert per MAC per batch (a MAC retrying DHCP appears many times in a storm's batch).
    const macs = new Map<string, { first: string; last: string; lastId: number; n: number }>();
    this.store.db.transaction(() => {
      for (const e of batch) {
        const info = s.insert.run(
          e.mac,
          e.at,
          e.kind,
          e.summary,
          e.failed ? 1 : 0,
          e.hint,
          JSON.stringify(e.detail),
        );
        const m = macs.get(e.mac);
        const id = Number(info.lastInsertRowid);
        if (m) Object.assign(m, { last: e.at, lastId: id, n: m.n + 1 });
        else macs.set(e.mac, { first: e.at, last: e.at, lastId: id, n: 1 });
      }
      for (const [mac, m] of macs) {
        const { entries } = s.upsertMac.get(mac, m.first, m.last, m.lastId, m.n) as { entries: number };
        if (entries <= this.limits.perMac) continue;
        s.trim.run(mac, entries - this.limits.perMac);
        s.setCount.run(this.limits.perMac, mac);
      }
      const { n } = s.countMacs.get() as { n: number };
      if (n > this.limits.maxMacs) {
        for (const { mac } of s.oldestMacs.all(n - this.limits.maxMacs) as { mac: string }[]) {
          s.deleteMacEntries.run(mac);
          s.deleteMac.run(mac);
        }
      }
    })();
    this.pending = this.pending.slice(batch.length);
    this.failing = false;
    return batch.length;
  }

  /** Keeps memory bounded when flushing keeps failing: the oldest unflushed steps go first. */
  shed(): void {
    if (this.pending.length <= MAX_PENDING) return;
    // A tenth more than the excess at once, so a storm against a failing database copies the array
    // once per MAX_PENDING / 10 steps, not once per step.
    const drop = this.pending.length - MAX_PENDING + MAX_PENDING / 10;
    this.pending = this.pending.slice(drop);
    this.dropped += drop;
  }

  /** The newest `limit` steps of one MAC, oldest first. */
  forMac(mac: string, limit = this.limits.perMac): BootActivityEntry[] {
    this.flush();
    const rows = this.store.db
      .prepare('SELECT * FROM boot_activity WHERE mac = ? ORDER BY id DESC LIMIT ?')
      .all(mac, limit) as Row[];
    return rows.reverse().map(fromRow);
  }

  /** Tracked MACs, most recently active first; `unenlisted` keeps only MACs with no node record. */
  machines(options: { limit?: number; unenlisted?: boolean } = {}): BootActivityMachine[] {
    this.flush();
    const rows = this.store.db
      .prepare(
        `SELECT m.mac, m.first_at, m.last_at, m.last_id, m.entries, n.name AS node_name, n.state AS node_state,
                (SELECT MAX(f.id) FROM boot_activity f WHERE f.mac = m.mac AND f.failed = 1) AS failed_id
           FROM boot_activity_macs m LEFT JOIN nodes n ON n.mac = m.mac
          ${options.unenlisted ? 'WHERE n.mac IS NULL' : ''}
          ORDER BY m.last_id DESC LIMIT ?`,
      )
      .all(options.limit ?? 200) as {
      mac: string;
      first_at: string;
      last_at: string;
      last_id: number;
      entries: number;
      node_name: string | null;
      node_state: string | null;
      failed_id: number | null;
    }[];
    const byId = this.store.db.prepare('SELECT * FROM boot_activity WHERE id = ?');
    const laterSuccess = this.store.db.prepare(
      'SELECT 1 FROM boot_activity WHERE mac = ? AND id > ? AND kind = ? AND failed = 0 LIMIT 1',
    );
    const entry = (id: number | null): BootActivityEntry | null => {
      const r = id === null ? undefined : (byId.get(id) as Row | undefined);
      return r ? fromRow(r) : null;
    };
    const standing = (id: number | null): BootActivityEntry | null => {
      const f = entry(id);
      return f && !laterSuccess.get(f.mac, f.id, f.kind) ? f : null;
    };
    return rows.map((r) => ({
      mac: r.mac,
      firstAt: r.first_at,
      lastAt: r.last_at,
      entries: r.entries,
      node: r.node_name !== null ? { name: r.node_name, state: r.node_state ?? '' } : null,
      last: entry(r.last_id),
      failure: standing(r.failed_id),
    }));
  }

  /** Every tracked MAC (at most maxMacs), for a restarted master to keep following them. */
  trackedMacs(): string[] {
    this.flush();
    return (
      this.store.db.prepare('SELECT mac FROM boot_activity_macs ORDER BY last_id').all() as { mac: string }[]
    ).map((r) => r.mac);
  }

  private prepared(): NonNullable<BootActivityStore['statements']> {
    const db = this.store.db;
    this.statements ??= {
      insert: db.prepare(
        'INSERT INTO boot_activity (mac, at, kind, summary, failed, hint, detail) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      upsertMac: db.prepare(
        `INSERT INTO boot_activity_macs (mac, first_at, last_at, last_id, entries) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (mac) DO UPDATE SET last_at = excluded.last_at, last_id = excluded.last_id,
           entries = entries + excluded.entries
         RETURNING entries`,
      ),
      trim: db.prepare(
        'DELETE FROM boot_activity WHERE id IN (SELECT id FROM boot_activity WHERE mac = ? ORDER BY id LIMIT ?)',
      ),
      setCount: db.prepare('UPDATE boot_activity_macs SET entries = ? WHERE mac = ?'),
      countMacs: db.prepare('SELECT COUNT(*) AS n FROM boot_activity_macs'),
      oldestMacs: db.prepare('SELECT mac FROM boot_activity_macs ORDER BY last_id LIMIT ?'),
      deleteMacEntries: db.prepare('DELETE FROM boot_activity WHERE mac = ?'),
      deleteMac: db.prepare('DELETE FROM boot_activity_macs WHERE mac = ?'),
    };
    return this.statements;
  }
}
