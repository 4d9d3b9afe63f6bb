import type { EventRecord, EventStore } from '../master/store/events.js';

export interface EventPage {
  /** Newest first. */
  events: EventRecord[];
  /** `?before=` value of the next (older) page; null on the last page. */
  olderCursor: number | null;
}

// EventStore.list's largest limit: a window of this many ids always fits in one query.
const WINDOW = 1000;
// Bound on the work one page may do when a node filter makes matching ids sparse.
const MAX_WINDOWS = 20;

/**
 * One page of the event log, newest first, optionally starting below id `before`.
 *
 * EventStore.list offers only "newest N" and "ascending after id", so a page below a cursor is read as
 * windows of ids walking downwards: `after: hi - 1 - WINDOW, limit: WINDOW` returns every event in
 * (hi - 1 - WINDOW, hi) because there are at most WINDOW ids in that range and they are the smallest
 * above the bound. The whole log has dense ids (one window per page); a node's events may need several
 * windows, bounded by MAX_WINDOWS, after which the page ends short with a cursor to carry on from.
 * A `before` option in EventQuery would replace all of this with one query.
 */
export function eventPage(
  events: EventStore,
  options: { before?: number; limit: number; nodeMac?: string },
): EventPage {
  const nodeFilter = options.nodeMac ? { nodeMac: options.nodeMac } : {};
  const wanted = options.limit + 1; // one extra tells whether an older page exists
  if (options.before === undefined) {
    const rows = events.list({ ...nodeFilter, limit: wanted });
    return page(rows, options.limit, null);
  }
  const rows: EventRecord[] = [];
  let hi = options.before;
  for (let windows = 0; rows.length < wanted && hi > 1 && windows < MAX_WINDOWS; windows++) {
    const lo = Math.max(0, hi - 1 - WINDOW);
    const found = events.list({ ...nodeFilter, after: lo, limit: WINDOW }).filter((e) => e.id < hi);
    rows.push(...found.reverse());
    hi = lo + 1;
  }
  return page(rows, options.limit, hi > 1 ? hi : null);
}

function page(rows: EventRecord[], limit: number, resumeAt: number | null): EventPage {
  if (rows.length > limit) {
    const shown = rows.slice(0, limit);
    return { events: shown, olderCursor: shown[shown.length - 1]?.id ?? null };
  }
  return { events: rows, olderCursor: resumeAt };
}
