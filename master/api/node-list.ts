/**
 * GET /api/v1/nodes with server-side filtering and paging (issue 19): `?q&state&role&tag` filter in SQLite,
 * `?limit` with `cursor` (keyset, stable while nodes come and go) or `offset` pages. Without limit,
 * cursor or offset every matching node is returned, as before (the CLI's `node list`).
 */
import { z } from 'zod';
import { NODE_STATES, type NodeRecord } from '../store/nodes.js';
import type { NodeQuery } from '../store/node-query.js';
import { CorralError } from '../util/errors.js';
import { zodToCorral } from './errors.js';

export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;

const NodeListQuery = z
  .object({
    q: z.string().max(200).optional(),
    state: z.enum(NODE_STATES).optional(),
    role: z.string().max(32).optional(),
    /** Repeatable: nodes carrying every tag given (issue 16). */
    tag: z.union([z.string().max(64), z.array(z.string().max(64)).max(32)]).optional(),
    limit: z.coerce.number().int().min(1).max(MAX_PAGE).optional(),
    cursor: z.string().max(200).optional(),
    offset: z.coerce.number().int().min(0).optional(),
  })
  .strict()
  .refine((q) => q.cursor === undefined || q.offset === undefined, {
    message: 'give cursor or offset, not both',
    path: ['offset'],
  });

/** The cursor is opaque to clients: base64url of the last returned node's sequence number. */
export function encodeCursor(afterSeq: number): string {
  return Buffer.from(JSON.stringify({ after: afterSeq })).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const bad = (): never => {
    throw new CorralError('CURSOR_INVALID', `cursor "${cursor.slice(0, 40)}" is not one this master issued`);
  };
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return bad();
  }
  const after = (parsed as { after?: unknown } | null)?.after;
  if (typeof after !== 'number' || !Number.isSafeInteger(after) || after < 0) bad();
  return after as number;
}

/** The reply's shape (what `listNodes` writes as JSON text). */
export interface NodeListReply {
  nodes: NodeRecord[];
  /** Nodes matching the filter, all pages together. */
  total: number;
  /** Present when paging: the cursor of the next page, or null on the last one. */
  nextCursor?: string | null;
}

/**
 * The reply to GET /api/v1/nodes as JSON text (a NodeListReply). The nodes' JSON comes from SQLite and is
 * joined here, not parsed and stringified (NodeQuery.pageJson): the reply is the same JSON, at a fraction
 * of the event loop's time.
 */
export function listNodes(query: unknown, nodes: NodeQuery): string {
  const r = NodeListQuery.safeParse(query);
  if (!r.success) throw zodToCorral(r.error, 'QUERY_INVALID');
  const q = r.data;
  const filter = { q: q.q, state: q.state, role: q.role, tags: [q.tag ?? []].flat() };
  const total = nodes.count(filter);
  const paging = q.limit !== undefined || q.cursor !== undefined || q.offset !== undefined;
  const array = (rows: [number, string][]): string => `[${rows.map((row) => row[1]).join(',')}]`;
  if (!paging) return `{"nodes":${array(nodes.pageJson(filter, { limit: -1 }))},"total":${total}}`;
  const limit = q.limit ?? DEFAULT_PAGE;
  const afterSeq = q.cursor !== undefined ? decodeCursor(q.cursor) : undefined;
  // One extra row tells whether a next page exists without a second query.
  const rows = nodes.pageJson(filter, {
    limit: limit + 1,
    ...(afterSeq !== undefined ? { afterSeq } : {}),
    ...(q.offset !== undefined ? { offset: q.offset } : {}),
  });
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  const nextCursor = rows.length > limit && last ? encodeCursor(last[0]) : null;
  return `{"nodes":${array(page)},"total":${total},"nextCursor":${JSON.stringify(nextCursor)}}`;
}

/**
 * Runs jobs one per event-loop turn, in arrival order. The master is one event loop: eight API clients
 * listing nodes back to back kept it busy with their lists, and a console page that arrived meanwhile
 * waited behind all of them (docs/scale.md: /nodes p95 1953 ms under that load). A list taken through
 * here runs in the check phase, one per turn, so the loop polls its sockets between two lists and an
 * interactive request waits for at most the one list in progress. The API's throughput is unchanged.
 */
export class TurnQueue {
  private readonly jobs: (() => void)[] = [];
  private scheduled = false;

  run<T>(job: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.jobs.push(() => {
        try {
          resolve(job());
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
      this.schedule();
    });
  }

  /** Jobs waiting for their turn (not counting one running now). */
  get waiting(): number {
    return this.jobs.length;
  }

  private schedule(): void {
    if (this.scheduled || !this.jobs.length) return;
    this.scheduled = true;
    // setImmediate scheduled from a check-phase callback runs on the next turn, after the next poll.
    setImmediate(() => {
      this.scheduled = false;
      this.jobs.shift()?.();
      this.schedule();
    });
  }
}
