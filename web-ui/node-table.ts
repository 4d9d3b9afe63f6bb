import { ipToInt } from '../master/config.js';
import { NODE_STATES, type NodeState } from '../master/store/nodes.js';
import type { NodeListRow, SortColumn } from '../master/store/node-query.js';
import { cpuSummary, nodeHref } from './node-view.js';

/**
 * The node list's filter, search, sort and page, done on the server so the page works without JavaScript
 * and every view is a URL an admin can bookmark or paste into a ticket. Filter and search run in SQLite
 * (master/store/node-query.ts); the sort runs here on small rows, then one page of nodes is loaded
 * (issue 19: 10 000 nodes).
 */

/** Nodes per page of the console's list. */
export const PAGE_SIZE = 100;

const COLUMNS = [
  { key: 'name', label: 'Name', numeric: false },
  { key: 'mac', label: 'MAC', numeric: false },
  { key: 'ip', label: 'IP address', numeric: false },
  { key: 'state', label: 'State', numeric: false },
  { key: 'role', label: 'Role', numeric: false },
  { key: 'cpu', label: 'CPU', numeric: false },
  { key: 'memory', label: 'Memory', numeric: true },
  { key: 'disks', label: 'Disks', numeric: true },
  { key: 'lastSeen', label: 'Last seen', numeric: false },
] as const;

export type SortKey = (typeof COLUMNS)[number]['key'];
export type SortDir = 'asc' | 'desc';

export interface NodeTableQuery {
  q: string;
  state: NodeState | null;
  /** Only nodes carrying this tag (issue 16); empty: any. */
  tag: string;
  sort: SortKey;
  dir: SortDir;
  /** 1-based page of PAGE_SIZE nodes. */
  page: number;
}

export const DEFAULT_QUERY: NodeTableQuery = {
  q: '',
  state: null,
  tag: '',
  sort: 'name',
  dir: 'asc',
  page: 1,
};

function first(value: unknown): string {
  if (Array.isArray(value)) return first(value[0]);
  return typeof value === 'string' ? value : '';
}

/** Reads ?q=&state=&tag=&sort=&dir=; anything unknown falls back to the default rather than failing the page. */
export function parseNodeTableQuery(query: Record<string, unknown>): NodeTableQuery {
  const state = first(query['state']);
  const sort = first(query['sort']);
  const dir = first(query['dir']);
  const page = Number(first(query['page']));
  return {
    q: first(query['q']).trim().slice(0, 200),
    state: (NODE_STATES as readonly string[]).includes(state) ? (state as NodeState) : null,
    tag: first(query['tag']).trim().slice(0, 64),
    sort: COLUMNS.some((c) => c.key === sort) ? (sort as SortKey) : DEFAULT_QUERY.sort,
    dir: dir === 'desc' ? 'desc' : 'asc',
    page: Number.isSafeInteger(page) && page > 1 ? page : 1,
  };
}

/** `/nodes?…` for a query, leaving out defaults so plain links stay plain. */
export function nodeTableHref(query: NodeTableQuery): string {
  const params = new URLSearchParams();
  if (query.q) params.set('q', query.q);
  if (query.state) params.set('state', query.state);
  if (query.tag) params.set('tag', query.tag);
  if (query.sort !== DEFAULT_QUERY.sort || query.dir !== DEFAULT_QUERY.dir) params.set('sort', query.sort);
  if (query.dir !== DEFAULT_QUERY.dir) params.set('dir', query.dir);
  if (query.page > 1) params.set('page', String(query.page));
  const qs = params.toString();
  return qs ? `/nodes?${qs}` : '/nodes';
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** The value a column sorts by; null sorts last in both directions, so blanks never crowd the top. */
function sortValue(key: SortKey, raw: string | number | null): string | number | null {
  if (raw === null) return null;
  switch (key) {
    case 'ip':
      return ipToInt(String(raw));
    case 'state':
      // Lifecycle order reads better than alphabetical: discovered first, failed last.
      return NODE_STATES.indexOf(raw as NodeState);
    case 'lastSeen':
      return Date.parse(String(raw));
    default:
      return raw;
  }
}

function compareValues(a: string | number, b: string | number): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return collator.compare(String(a), String(b));
}

/** A node as the sort sees it: [mac, name, the sort column's stored value] (NodeQuery.sortKeys). */
export type SortKeyRow = [string, string, string | number | null];

/** Sorts by the query's column, then by name; returns the MACs in order. */
export function sortRows(rows: readonly SortKeyRow[], query: NodeTableQuery): string[] {
  const sign = query.dir === 'desc' ? -1 : 1;
  const keyed = rows.map(([mac, name, raw]) => ({ mac, name, v: sortValue(query.sort, raw) }));
  keyed.sort((ra, rb) => {
    const a = ra.v;
    const b = rb.v;
    if (a === null || b === null) {
      if (a !== b) return a === null ? 1 : -1;
    } else {
      const c = compareValues(a, b);
      if (c !== 0) return sign * c;
    }
    return collator.compare(ra.name, rb.name);
  });
  return keyed.map((r) => r.mac);
}

/** The node table's sort keys are node_facts columns of the same meaning. */
export const SORT_COLUMN: Record<SortKey, SortColumn> = {
  name: 'name',
  mac: 'mac',
  ip: 'ip',
  state: 'state',
  role: 'role',
  cpu: 'cpu',
  memory: 'memory',
  disks: 'disks',
  lastSeen: 'lastSeen',
};

export interface ColumnHeader {
  label: string;
  href: string;
  numeric: boolean;
  /** The value of the th's aria-sort attribute. */
  ariaSort: 'ascending' | 'descending' | 'none';
}

/** Header links: a column's link sorts by it ascending, or flips the direction when it is already the sort. */
export function columnHeaders(query: NodeTableQuery): ColumnHeader[] {
  return COLUMNS.map((c) => {
    const current = query.sort === c.key;
    const dir: SortDir = current && query.dir === 'asc' ? 'desc' : 'asc';
    return {
      label: c.label,
      numeric: c.numeric,
      href: nodeTableHref({ ...query, sort: c.key, dir, page: 1 }),
      ariaSort: current ? (query.dir === 'asc' ? 'ascending' : 'descending') : 'none',
    };
  });
}

/** Previous/next links and the "101-200 of 10 000" line of a page. */
export function pageLinks(
  query: NodeTableQuery,
  matched: number,
): { from: number; to: number; pages: number; prev: string | null; next: string | null } {
  const pages = Math.max(1, Math.ceil(matched / PAGE_SIZE));
  const page = Math.min(query.page, pages);
  return {
    from: matched ? (page - 1) * PAGE_SIZE + 1 : 0,
    to: Math.min(page * PAGE_SIZE, matched),
    pages,
    prev: page > 1 ? nodeTableHref({ ...query, page: page - 1 }) : null,
    next: page < pages ? nodeTableHref({ ...query, page: page + 1 }) : null,
  };
}

/** A row of the node table as the view reads it. */
export interface NodeTableRow extends NodeListRow {
  cpu: string | null;
  href: string;
}

export function tableRow(row: NodeListRow): NodeTableRow {
  return { ...row, cpu: cpuSummary(row), href: nodeHref(row.mac) };
}

/**
 * Sorted orders of the node list and its tag list, reused while the node list's generation is unchanged
 * (NodeQuery.generation: any write to any node changes it). At 10 000 nodes reading and sorting every
 * matching node's sort key costs tens of milliseconds per page view (docs/scale.md); paging through a
 * list that does not change need not repeat it, nor count the nodes per state. A node write drops
 * everything: the next view recomputes.
 */
export class NodeListCache {
  private generation = -1;
  private readonly orders = new Map<string, string[]>();
  private tags: string[] | null = null;
  private states: Record<string, number> | null = null;

  /** `maxOrders`: distinct filter and sort combinations kept (the oldest is dropped first). */
  constructor(private readonly maxOrders = 32) {}

  /** Forgets everything computed at another generation. */
  at(generation: number): this {
    if (generation !== this.generation) {
      this.generation = generation;
      this.orders.clear();
      this.tags = null;
      this.states = null;
    }
    return this;
  }

  /** MACs in the query's order (its page ignored), from the cache or from `compute`. */
  order(query: NodeTableQuery, compute: () => string[]): string[] {
    const key = JSON.stringify([query.q, query.state, query.tag, query.sort, query.dir]);
    let macs = this.orders.get(key);
    if (!macs) {
      macs = compute();
      if (this.orders.size >= this.maxOrders) {
        const oldest = this.orders.keys().next();
        if (!oldest.done) this.orders.delete(oldest.value);
      }
      this.orders.set(key, macs);
    }
    return macs;
  }

  tagList(compute: () => string[]): string[] {
    this.tags ??= compute();
    return this.tags;
  }

  /** Nodes per state (the state filter's counts): a state change is a node write, so it changes the generation. */
  stateCounts(compute: () => Record<string, number>): Record<string, number> {
    this.states ??= compute();
    return this.states;
  }
}
