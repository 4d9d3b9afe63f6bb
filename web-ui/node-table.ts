import { ipToInt } from '../master/config.js';
import { NODE_STATES, type NodeState } from '../master/store/nodes.js';
import type { NodeRow } from './node-view.js';

/**
 * The node list's filter, search and sort, done on the server so the page works without JavaScript
 * and every view is a URL an admin can bookmark or paste into a ticket.
 */

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
}

export const DEFAULT_QUERY: NodeTableQuery = { q: '', state: null, tag: '', sort: 'name', dir: 'asc' };

function first(value: unknown): string {
  if (Array.isArray(value)) return first(value[0]);
  return typeof value === 'string' ? value : '';
}

/** Reads ?q=&state=&tag=&sort=&dir=; anything unknown falls back to the default rather than failing the page. */
export function parseNodeTableQuery(query: Record<string, unknown>): NodeTableQuery {
  const state = first(query['state']);
  const sort = first(query['sort']);
  const dir = first(query['dir']);
  return {
    q: first(query['q']).trim().slice(0, 200),
    state: (NODE_STATES as readonly string[]).includes(state) ? (state as NodeState) : null,
    tag: first(query['tag']).trim().slice(0, 64),
    sort: COLUMNS.some((c) => c.key === sort) ? (sort as SortKey) : DEFAULT_QUERY.sort,
    dir: dir === 'desc' ? 'desc' : 'asc',
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
  const qs = params.toString();
  return qs ? `/nodes?${qs}` : '/nodes';
}

/** Every text an admin might paste: name, MAC (with or without colons), IP, role, tags, CPU, DMI and disk serials. */
function haystack(row: NodeRow): string {
  const { node, inventory } = row;
  return [
    node.name,
    node.mac,
    node.mac.replace(/:/g, ''),
    node.ip,
    node.role,
    ...node.tags,
    node.state,
    node.image,
    row.cpu,
    inventory.dmi.vendor,
    inventory.dmi.product,
    inventory.dmi.serial,
    ...inventory.disks.map((d) => d.serial),
    ...inventory.nics.map((n) => n.mac),
  ]
    .filter((s): s is string => typeof s === 'string' && s !== '')
    .join('\n')
    .toLowerCase();
}

export function filterRows(rows: readonly NodeRow[], query: NodeTableQuery): NodeRow[] {
  const needle = query.q.toLowerCase();
  return rows.filter(
    (row) =>
      (!query.state || row.node.state === query.state) &&
      (!query.tag || row.node.tags.includes(query.tag)) &&
      (!needle || haystack(row).includes(needle)),
  );
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** The value a column sorts by; null sorts last in both directions, so blanks never crowd the top. */
function sortValue(row: NodeRow, key: SortKey): string | number | null {
  const { node, inventory } = row;
  switch (key) {
    case 'name':
      return node.name;
    case 'mac':
      return node.mac;
    case 'ip':
      return node.ip ? ipToInt(node.ip) : null;
    case 'state':
      // Lifecycle order reads better than alphabetical: discovered first, failed last.
      return NODE_STATES.indexOf(node.state);
    case 'role':
      return node.role;
    case 'cpu':
      return inventory.cpuCount;
    case 'memory':
      return inventory.memoryBytes;
    case 'disks':
      return inventory.disksTotalBytes;
    case 'lastSeen':
      return node.lastSeenAt ? Date.parse(node.lastSeenAt) : null;
  }
}

function compareValues(a: string | number, b: string | number): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return collator.compare(String(a), String(b));
}

export function sortRows(rows: readonly NodeRow[], query: NodeTableQuery): NodeRow[] {
  const sign = query.dir === 'desc' ? -1 : 1;
  return [...rows].sort((ra, rb) => {
    const a = sortValue(ra, query.sort);
    const b = sortValue(rb, query.sort);
    if (a === null || b === null) {
      if (a !== b) return a === null ? 1 : -1;
    } else {
      const c = compareValues(a, b);
      if (c !== 0) return sign * c;
    }
    return collator.compare(ra.node.name, rb.node.name);
  });
}

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
      href: nodeTableHref({ ...query, sort: c.key, dir }),
      ariaSort: current ? (query.dir === 'asc' ? 'ascending' : 'descending') : 'none',
    };
  });
}
