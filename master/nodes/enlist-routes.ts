/**
 * `POST /api/v1/enlist`: the node environment's agent reports the machine and learns what to do.
 * Unauthenticated by design (as MAAS enlistment): a new node has no credential yet. Bounded (issue 14):
 * its own 64 KiB body limit, a strict schema, new MACs rate-limited; a known MAC needs its credential, or
 * a new one is issued only to the node's own leased/recorded address in a state that boots the node
 * environment (enlist.ts). The handlers only: boot/surface.ts mounts them and lists the route.
 */
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import type { BootActivitySink } from '../boot/activity.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { clientIp } from '../util/client-ip.js';
import { bearerCredential } from './credentials.js';
import type { EnlistGuard } from './enlist-guard.js';
import type { NodeRecord } from '../store/nodes.js';
import { ENLIST_BODY_LIMIT_BYTES } from './inventory.js';

/** The enlist body's errors: over ENLIST_BODY_LIMIT_BYTES → 413 ENLIST_TOO_LARGE; both counted. */
function enlistBodyErrors(guard: EnlistGuard): ErrorRequestHandler {
  return (err: unknown, req, _res, next) => {
    const ip = clientIp(req);
    if ((err as { type?: string } | null)?.type === 'entity.too.large') {
      const e = new CorralError(
        'ENLIST_TOO_LARGE',
        `the enlist body is larger than ${ENLIST_BODY_LIMIT_BYTES} bytes`,
      );
      guard.refusedBecause('too-large', { ip, message: e.message });
      next(e);
      return;
    }
    guard.refusedBecause('invalid', { ip, message: 'body is not JSON' });
    next(err);
  };
}

export function enlistHandlers(deps: {
  guard: EnlistGuard;
  logger: Logger;
  /** The boot timeline (issue 22): enlistment is one of its steps. */
  activity?: BootActivitySink;
  /** Enrolment rules (issue 16): told about a machine enlisting for the first time. */
  onDiscovered?: ((node: NodeRecord) => void) | undefined;
}): (RequestHandler | ErrorRequestHandler)[] {
  const enlist: RequestHandler = (req, res) => {
    const sourceIp = clientIp(req);
    try {
      const { reply, created, node, credentialIssued } = deps.guard.enlist(req.body, {
        sourceIp,
        credential: bearerCredential(req.headers),
      });
      deps.logger.info(
        { mac: node.mac, name: node.name, created, ip: sourceIp, credential: credentialIssued ?? 'kept' },
        'node enlisted',
      );
      deps.activity?.record(node.mac, { kind: 'enlist', name: node.name, created, ip: sourceIp ?? '' });
      // Enrolment rules (issue 16) act on a machine seen for the first time.
      if (created) deps.onDiscovered?.(node);
      res
        .status(created ? 201 : 200)
        .setHeader('Cache-Control', 'no-store')
        .json(reply);
    } catch (err) {
      const retry = err instanceof CorralError ? err.details?.['retryAfterSeconds'] : undefined;
      if (retry !== undefined) res.setHeader('Retry-After', String(retry));
      throw err;
    }
  };
  return [express.json({ limit: ENLIST_BODY_LIMIT_BYTES }), enlistBodyErrors(deps.guard), enlist];
}
