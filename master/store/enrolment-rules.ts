import { sqliteOf, type Journal, type SqliteStore, type Store } from './db.js';

/** One enrolment rule as stored; `match` and `outcome` are validated by master/enrolment/rule.ts. */
export interface RuleRecord {
  id: number;
  /** 1-based order: the first enabled rule that matches wins. */
  position: number;
  name: string;
  enabled: boolean;
  /** Catch at most this many machines (null: no limit). */
  maxNodes: number | null;
  /** How many machines the rule has caught so far (the limit counts these). */
  caught: number;
  match: Record<string, unknown>;
  outcome: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

interface RuleRow {
  id: number;
  position: number;
  name: string;
  enabled: number;
  max_nodes: number | null;
  caught: number;
  match: string;
  outcome: string;
  created_at: string;
  updated_at: string;
}

function fromRow(r: RuleRow): RuleRecord {
  return {
    id: r.id,
    position: r.position,
    name: r.name,
    enabled: r.enabled === 1,
    maxNodes: r.max_nodes,
    caught: r.caught,
    match: JSON.parse(r.match) as Record<string, unknown>,
    outcome: JSON.parse(r.outcome) as Record<string, unknown>,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export interface RuleFields {
  name: string;
  enabled: boolean;
  maxNodes: number | null;
  match: Record<string, unknown>;
  outcome: Record<string, unknown>;
}

/**
 * Enrolment rule rows, kept densely ordered 1..N by `position`. Every write goes through a Store.write
 * transaction and journals each row it touched (a move renumbers several).
 */
export class EnrolmentRuleStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  list(): RuleRecord[] {
    return (
      this.store.db.prepare('SELECT * FROM enrolment_rules ORDER BY position, id').all() as RuleRow[]
    ).map(fromRow);
  }

  get(id: number): RuleRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM enrolment_rules WHERE id = ?').get(id) as
      RuleRow | undefined;
    return r ? fromRow(r) : undefined;
  }

  getByName(name: string): RuleRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM enrolment_rules WHERE name = ?').get(name) as
      RuleRow | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** Appends at the end, or inserts at `position` (1-based) and shifts the rest down. */
  insertIn(journal: Journal, f: RuleFields, position?: number): RuleRecord {
    const now = this.store.now().toISOString();
    const count = this.list().length;
    const at = Math.min(Math.max(position ?? count + 1, 1), count + 1);
    const info = this.store.db
      .prepare(
        `INSERT INTO enrolment_rules (position, name, enabled, max_nodes, caught, match, outcome, created_at, updated_at)
         VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)`,
      )
      .run(
        count + 2, // parked past the end, then moved into place by renumber()
        f.name,
        f.enabled ? 1 : 0,
        f.maxNodes,
        JSON.stringify(f.match),
        JSON.stringify(f.outcome),
        now,
        now,
      );
    const id = Number(info.lastInsertRowid);
    this.renumber(journal, id, at);
    return this.journalRow(journal, id);
  }

  updateIn(journal: Journal, id: number, f: RuleFields): RuleRecord {
    this.store.db
      .prepare(
        'UPDATE enrolment_rules SET name = ?, enabled = ?, max_nodes = ?, match = ?, outcome = ?, updated_at = ? WHERE id = ?',
      )
      .run(
        f.name,
        f.enabled ? 1 : 0,
        f.maxNodes,
        JSON.stringify(f.match),
        JSON.stringify(f.outcome),
        this.store.now().toISOString(),
        id,
      );
    return this.journalRow(journal, id);
  }

  /** Counts one more machine caught by the rule. */
  countCaughtIn(journal: Journal, id: number): RuleRecord {
    this.store.db.prepare('UPDATE enrolment_rules SET caught = caught + 1 WHERE id = ?').run(id);
    return this.journalRow(journal, id);
  }

  /** Moves a rule to `position` (1-based, clamped), renumbering the others in their order. */
  moveIn(journal: Journal, id: number, position: number): RuleRecord {
    this.renumber(journal, id, position);
    return this.journalRow(journal, id);
  }

  deleteIn(journal: Journal, id: number): void {
    this.store.db.prepare('DELETE FROM enrolment_rules WHERE id = ?').run(id);
    journal('enrolment_rules', id, 'delete');
    this.renumber(journal);
  }

  /** Rewrites positions 1..N (with `id` at `at` when given), journaling only rows whose position moved. */
  private renumber(journal: Journal, id?: number, at?: number): void {
    const others = this.list().filter((r) => r.id !== id);
    const order = others.map((r) => r.id);
    if (id !== undefined) order.splice(Math.min(Math.max((at ?? 1) - 1, 0), order.length), 0, id);
    const before = new Map(this.list().map((r) => [r.id, r.position]));
    const set = this.store.db.prepare('UPDATE enrolment_rules SET position = ? WHERE id = ?');
    order.forEach((rid, i) => {
      if (before.get(rid) === i + 1) return;
      set.run(i + 1, rid);
      if (rid !== id) this.journalRow(journal, rid);
    });
  }

  private journalRow(journal: Journal, id: number): RuleRecord {
    const row = this.store.row('enrolment_rules', id) as RuleRow | undefined;
    if (!row) throw new Error(`rule ${id} vanished inside its own transaction`);
    journal('enrolment_rules', id, 'upsert', row as unknown as Record<string, unknown>);
    return fromRow(row);
  }
}
