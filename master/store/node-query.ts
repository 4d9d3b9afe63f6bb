/**
 * Node lists at fleet scale (issue 19): filtering, searching, counting and paging done by SQLite, so a
 * request for one page of 10 000 nodes reads and parses one page of inventories, not all of them
 * (NodeStore.list() parses every row's inventory JSON: ~80 ms at 10 000 nodes, see docs/scale.md).
 */
import { sqliteOf, type SqliteStore, type Store } from './db.js';
import { fromRow as fromNodeRow, type NodeRecord, type NodeRow, type NodeState } from './nodes.js';

export interface NodeFilter {
  /** Substring of name, MAC (with or without colons), IP, role, state, image, CPU model, DMI, disk serials, NIC MACs. */
  q?: string | undefined;
  state?: NodeState | undefined;
  role?: string | undefined;
  /** Nodes carrying every one of these tags (issue 16). */
  tags?: readonly string[] | undefined;
}

/** The columns the console's node table sorts by, as node_facts holds them (no inventory JSON parsed). */
const SORT_COLUMNS = {
  name: 'name',
  mac: 'mac',
  ip: 'ip',
  state: 'state',
  role: 'role',
  cpu: 'cpu_count',
  memory: 'memory_bytes',
  disks: 'disks_total_bytes',
  lastSeen: 'last_seen_at',
} as const;
export type SortColumn = keyof typeof SORT_COLUMNS;

/** `%`, `_` and the escape itself are literal in a search: the operator types text, not a pattern. */
function likePattern(q: string): string {
  return `%${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * A node row as the JSON of its NodeRecord (master/store/nodes.ts fromRow), keys in the same order. `json()`
 * checks the stored inventory and tags are JSON and minifies them, as JSON.parse then JSON.stringify did;
 * test/integration/console-node-list-scale.test.ts compares the two for every seeded node.
 */
const NODE_JSON = `json_object('mac', n.mac, 'name', n.name, 'seqNo', n.seq_no, 'ip', n.ip, 'state', n.state,
  'role', n.role, 'firmware', n.firmware, 'inventory', json(n.inventory), 'tags', json(n.tags),
  'enrolledBy', n.enrolled_by, 'image', n.image, 'stateReason', n.state_reason, 'createdAt', n.created_at,
  'updatedAt', n.updated_at, 'lastSeenAt', n.last_seen_at)`;

/**
 * The WHERE clause of a filter. The search looks at values, not at the inventory's JSON text ("serial"
 * must not match every node because every inventory has a `serial` key): node_facts.search holds them,
 * one per line, kept by triggers (migration 15). SQLite's LIKE is case-insensitive for ASCII, as the
 * console's search always was.
 */
function where(
  f: NodeFilter,
  table: 'n' | 'f' = 'n',
  useIndex = true,
): { sql: string; args: (string | number)[] } {
  const parts: string[] = [];
  const args: (string | number)[] = [];
  if (f.state) {
    parts.push(`${table}.state = ?`);
    args.push(f.state);
  }
  if (f.role) {
    parts.push(`${table}.role = ?`);
    args.push(f.role);
  }
  for (const tag of f.tags ?? []) {
    parts.push(`${table}.mac IN (SELECT t.mac FROM nodes t, json_each(t.tags) j WHERE j.value = ?)`);
    args.push(tag);
  }
  const q = f.q?.trim();
  if (q) {
    // 3 characters or more: the trigram index (migration 23) finds the candidates, and the LIKE on them keeps
    // the search's meaning exactly (ASCII case folding, values one per line). Shorter: a scan, as trigrams
    // cannot answer it (such a search matches much of the fleet anyway). `useIndex` false: the caller found
    // the text common (NodeQuery.searchPlan), where the scan is faster; the answer is the same either way.
    if (useIndex && [...q].length >= 3) {
      parts.push('f.seq_no IN (SELECT rowid FROM node_search WHERE node_search MATCH ?)');
      args.push(`"${q.toLowerCase().replaceAll('"', '""')}"`);
    }
    parts.push("f.search LIKE ? ESCAPE '\\'");
    args.push(likePattern(q));
  }
  return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', args };
}

/** Nodes sampled to tell a common search text from a rare one, and the share (1 in COMMON_SHARE) above which it is common. */
const SAMPLE = 256;
const COMMON_SHARE = 8;

/** node_facts joined only when a search needs it (a page without one reads nodes alone). */
function from(f: NodeFilter): string {
  return f.q?.trim() ? 'nodes n JOIN node_facts f ON f.mac = n.mac' : 'nodes n';
}

/** One row of the console's node table (NodeQuery.listRows). */
export interface NodeListRow {
  mac: string;
  name: string;
  ip: string | null;
  state: NodeState;
  role: string | null;
  tags: string[];
  lastSeenAt: string | null;
  cpuModel: string | null;
  cpuCount: number | null;
  memoryBytes: number | null;
  disksTotalBytes: number | null;
  diskCount: number;
}

interface ListRowSql {
  mac: string;
  name: string;
  ip: string | null;
  state: NodeState;
  role: string | null;
  tags: string;
  last_seen_at: string | null;
  cpu_count: unknown;
  memory_bytes: unknown;
  disks_total_bytes: unknown;
  cpu_model: unknown;
  disk_count: unknown;
}

export class NodeQuery {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  /**
   * How a search of `q` is answered: through the trigram index, or by the scan alone when the text is
   * common. The index narrows a rare text to a few candidates (a DMI serial: ~1 ms against a ~30 ms scan
   * at 10 000 nodes), but for a text most nodes carry (a vendor's MAC prefix) its phrase query walks every
   * document's positions before the LIKE checks them all again: ~50 ms against a ~10 ms scan (docs/scale.md).
   * The first SAMPLE nodes decide, at the cost of one short scan.
   */
  searchPlan(q: string): 'index' | 'scan' {
    const [sampled, hits] = this.store.db
      .prepare(
        `SELECT COUNT(*), COALESCE(SUM(search LIKE ? ESCAPE '\\'), 0)
           FROM (SELECT search FROM node_facts ORDER BY seq_no LIMIT ${SAMPLE})`,
      )
      .raw(true)
      .get(likePattern(q)) as [number, number];
    return hits * COMMON_SHARE > sampled ? 'scan' : 'index';
  }

  private where(f: NodeFilter, table: 'n' | 'f' = 'n'): { sql: string; args: (string | number)[] } {
    const q = f.q?.trim();
    return where(f, table, !q || this.searchPlan(q) === 'index');
  }

  count(f: NodeFilter = {}): number {
    const w = this.where(f);
    return (
      this.store.db.prepare(`SELECT COUNT(*) AS n FROM ${from(f)} ${w.sql}`).get(...w.args) as { n: number }
    ).n;
  }

  /**
   * One page in sequence-number order (the order of `NodeStore.list()`): after `afterSeq` (a cursor, stable
   * while nodes come and go) or from `offset`. Each node comes as [seqNo, its NodeRecord as JSON text],
   * the text made by SQLite (NODE_JSON): the API sends these as they are, so a page of 100 inventories is
   * not parsed into objects and stringified again on the master's one event loop (issue 19: that was most
   * of an API list's CPU time under load).
   */
  pageJson(f: NodeFilter, p: { limit: number; afterSeq?: number; offset?: number }): [number, string][] {
    const w = this.where(f);
    const sql = w.sql ? [w.sql] : [];
    const args = [...w.args];
    if (p.afterSeq !== undefined) {
      sql.push(w.sql ? 'AND n.seq_no > ?' : 'WHERE n.seq_no > ?');
      args.push(p.afterSeq);
    }
    return this.store.db
      .prepare(
        `SELECT n.seq_no, ${NODE_JSON} FROM ${from(f)} ${sql.join(' ')} ORDER BY n.seq_no LIMIT ? OFFSET ?`,
      )
      .raw(true)
      .all(...args, p.limit, p.offset ?? 0) as [number, string][];
  }

  /**
   * Every matching node as [mac, name, value of one sort column]: the console sorts these, then loads one
   * page. Arrays, not objects, and three columns, not the whole row: this runs over every node per page view.
   */
  sortKeys(f: NodeFilter, column: SortColumn): [string, string, string | number | null][] {
    const w = this.where(f, 'f');
    return this.store.db
      .prepare(`SELECT mac, name, ${SORT_COLUMNS[column]} FROM node_facts f ${w.sql} ORDER BY seq_no`)
      .raw(true)
      .all(...w.args) as [string, string, string | number | null][];
  }

  /**
   * A number that changes whenever any node's list row does (node_list_generation, kept by migration 23's
   * triggers on node_facts): what the console computed at the same number is still right.
   */
  generation(): number {
    return this.store.db.prepare('SELECT n FROM node_list_generation WHERE id = 1').pluck().get() as number;
  }

  /** Every tag some node carries, sorted (the console's tag filter). */
  allTags(): string[] {
    return this.store.db
      .prepare('SELECT DISTINCT j.value FROM nodes t, json_each(t.tags) j ORDER BY j.value')
      .pluck()
      .all() as string[];
  }

  /** Full records of the given MACs, in the order given (missing ones skipped). */
  byMacs(macs: readonly string[]): NodeRecord[] {
    if (!macs.length) return [];
    const rows = this.store.db
      .prepare(`SELECT * FROM nodes WHERE mac IN (SELECT value FROM json_each(?))`)
      .all(JSON.stringify(macs)) as NodeRow[];
    const byMac = new Map(rows.map((r) => [r.mac, fromNodeRow(r)]));
    return macs.flatMap((m) => byMac.get(m) ?? []);
  }

  /**
   * What the console's node table shows of the given MACs, in the order given (missing ones skipped):
   * node_facts' figures and two values read from the inventory by SQLite, so a page of 100 does not parse
   * and validate 100 inventories (docs/scale.md). A figure of the wrong type (an inventory written by an
   * older agent) is null, shown as a dash; the node's own page validates the whole inventory.
   */
  listRows(macs: readonly string[]): NodeListRow[] {
    if (!macs.length) return [];
    const rows = this.store.db
      .prepare(
        `SELECT n.mac, n.name, n.ip, n.state, n.role, n.tags, n.last_seen_at, f.cpu_count, f.memory_bytes,
                f.disks_total_bytes,
                (CASE WHEN json_valid(n.inventory) THEN json_extract(n.inventory, '$.cpu.model') END) AS cpu_model,
                (CASE WHEN json_valid(n.inventory) THEN json_array_length(n.inventory, '$.disks') END) AS disk_count
           FROM nodes n JOIN node_facts f ON f.mac = n.mac
          WHERE n.mac IN (SELECT value FROM json_each(?))`,
      )
      .all(JSON.stringify(macs)) as ListRowSql[];
    const byMac = new Map(rows.map((r) => [r.mac, r]));
    return macs.flatMap((m) => {
      const r = byMac.get(m);
      if (!r) return [];
      const count = (v: unknown): number | null =>
        Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : null;
      return {
        mac: r.mac,
        name: r.name,
        ip: r.ip,
        state: r.state,
        role: r.role,
        tags: JSON.parse(r.tags) as string[],
        lastSeenAt: r.last_seen_at,
        cpuModel: typeof r.cpu_model === 'string' ? r.cpu_model : null,
        cpuCount: count(r.cpu_count),
        memoryBytes: count(r.memory_bytes),
        disksTotalBytes: count(r.disks_total_bytes),
        diskCount: count(r.disk_count) ?? 0,
      };
    });
  }

  /** Nodes whose IP is set, in a state, with only what a scrape config needs. */
  addressed(states: readonly NodeState[]): { mac: string; name: string; ip: string; role: string | null }[] {
    return this.store.db
      .prepare(
        `SELECT mac, name, ip, role FROM nodes
          WHERE ip IS NOT NULL AND state IN (SELECT value FROM json_each(?)) ORDER BY seq_no`,
      )
      .all(JSON.stringify(states)) as { mac: string; name: string; ip: string; role: string | null }[];
  }
}
