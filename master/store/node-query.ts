/**
 * Node lists at fleet scale (issue 19): filtering, searching, counting and paging done by SQLite, so a
 * request for one page of 10 000 nodes reads and parses one page of inventories, not all of them
 * (NodeStore.list() parses every row's inventory JSON: ~80 ms at 10 000 nodes, see docs/scale.md).
 */
import type { Store } from './db.js';
import { fromRow as fromNodeRow, type NodeRecord, type NodeRow, type NodeState } from './nodes.js';

export interface NodeFilter {
  /** Substring of name, MAC (with or without colons), IP, role, state, image, CPU model, DMI, disk serials, NIC MACs. */
  q?: string | undefined;
  state?: NodeState | undefined;
  role?: string | undefined;
}

/** What the console's node table sorts by, without the inventory JSON parsed. */
export interface NodeSortFacts {
  mac: string;
  name: string;
  ip: string | null;
  state: NodeState;
  role: string | null;
  lastSeenAt: string | null;
  cpuCount: number | null;
  memoryBytes: number | null;
  disksTotalBytes: number | null;
}

/** `%`, `_` and the escape itself are literal in a search: the operator types text, not a pattern. */
function likePattern(q: string): string {
  return `%${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * The WHERE clause of a filter. The search looks at values, not at the inventory's JSON text: "serial"
 * must not match every node because every inventory has a `serial` key. SQLite's LIKE is
 * case-insensitive for ASCII, as the console's search always was.
 */
function where(f: NodeFilter): { sql: string; args: (string | number)[] } {
  const parts: string[] = [];
  const args: (string | number)[] = [];
  if (f.state) {
    parts.push('state = ?');
    args.push(f.state);
  }
  if (f.role) {
    parts.push('role = ?');
    args.push(f.role);
  }
  const q = f.q?.trim();
  if (q) {
    const p = likePattern(q);
    const cols = [
      'name',
      'mac',
      "replace(mac, ':', '')",
      'ip',
      'role',
      'state',
      'image',
      "json_extract(inventory, '$.cpu.model')",
      "json_extract(inventory, '$.dmi.vendor')",
      "json_extract(inventory, '$.dmi.product')",
      "json_extract(inventory, '$.dmi.serial')",
    ];
    const arrays = [
      "EXISTS (SELECT 1 FROM json_each(inventory, '$.disks') WHERE json_extract(value, '$.serial') LIKE ? ESCAPE '\\')",
      "EXISTS (SELECT 1 FROM json_each(inventory, '$.nics') WHERE json_extract(value, '$.mac') LIKE ? ESCAPE '\\')",
    ];
    parts.push(`(${[...cols.map((c) => `${c} LIKE ? ESCAPE '\\'`), ...arrays].join(' OR ')})`);
    for (let i = 0; i < cols.length + arrays.length; i++) args.push(p);
  }
  return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', args };
}

export class NodeQuery {
  constructor(private readonly store: Store) {}

  count(f: NodeFilter = {}): number {
    const w = where(f);
    return (this.store.db.prepare(`SELECT COUNT(*) AS n FROM nodes ${w.sql}`).get(...w.args) as { n: number })
      .n;
  }

  /**
   * One page in sequence-number order (the order of `NodeStore.list()`): after `afterSeq` (a cursor, stable
   * while nodes come and go) or from `offset`.
   */
  page(f: NodeFilter, p: { limit: number; afterSeq?: number; offset?: number }): NodeRecord[] {
    const w = where(f);
    const sql = w.sql ? [w.sql] : [];
    const args = [...w.args];
    if (p.afterSeq !== undefined) {
      sql.push(w.sql ? 'AND seq_no > ?' : 'WHERE seq_no > ?');
      args.push(p.afterSeq);
    }
    const rows = this.store.db
      .prepare(`SELECT * FROM nodes ${sql.join(' ')} ORDER BY seq_no LIMIT ? OFFSET ?`)
      .all(...args, p.limit, p.offset ?? 0) as NodeRow[];
    return rows.map(fromNodeRow);
  }

  /** Every matching node's sort facts (small rows: the console sorts them, then loads one page). */
  sortFacts(f: NodeFilter): NodeSortFacts[] {
    const w = where(f);
    return this.store.db
      .prepare(
        `SELECT mac, name, ip, state, role, last_seen_at AS lastSeenAt,
                json_extract(inventory, '$.cpu.count') AS cpuCount,
                json_extract(inventory, '$.memoryBytes') AS memoryBytes,
                (SELECT SUM(json_extract(value, '$.sizeBytes')) FROM json_each(inventory, '$.disks')) AS disksTotalBytes
           FROM nodes ${w.sql}`,
      )
      .all(...w.args) as NodeSortFacts[];
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
