import express, { type RequestHandler, type Router } from 'express';
import { z } from 'zod';
import type { FrozenConfig } from '../config.js';
import type { Authenticator } from '../auth/users.js';
import type { Repos } from '../store/repos.js';
import { NODE_STATES } from '../store/nodes.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { VERSION } from '../util/version.js';
import type { EnlistStats } from '../nodes/enlist-guard.js';
import { NODE_NAME, NODE_ROLE, NodeService } from '../nodes/service.js';
import { requireBasicAuth, requireRole } from './auth.js';
import { zodToCorral } from './errors.js';
import { auditMutations } from './audit.js';
import { createUsersRouter } from './users.js';
import { NodeQuery } from '../store/node-query.js';
import { listNodes, TurnQueue } from './node-list.js';

export interface ApiDeps {
  repos: Repos;
  config: FrozenConfig;
  logger: Logger;
  authenticator: Authenticator;
  startedAt: number;
  /**
   * The features' routes (master/feature.ts `api`), in the master's feature order, all mounted after
   * the one authentication boundary: a feature adds routes without touching this file.
   */
  features?: readonly Router[];
  /** High availability (master/ha): its /ha routes and the write gate (NOT_PRIMARY, sync replication). */
  ha?: { router: Router; gate: RequestHandler };
  /** Extra health facts from subsystems (dhcp, tftp, node image), filled by master.ts. */
  health?: () => Record<string, unknown>;
  /** Enlistment's counters for /health (nodes/enlist-guard.ts; the route is in boot/surface.ts). */
  enlistStats?: () => EnlistStats;
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw zodToCorral(r.error);
  return r.data;
}

function idParam(value: string | string[] | undefined): string {
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

const PatchNode = z
  .object({
    name: z.string().regex(NODE_NAME, 'must be a lower-case DNS label (letters, digits, hyphens)').optional(),
    role: z
      .string()
      .regex(NODE_ROLE, 'must be 1-32 lower-case letters, digits, - or _')
      .nullable()
      .optional(),
    // The node's address is Corral's record (DHCP lease, first contact), moved by an operator only here.
    ip: z.ipv4({ message: 'must be an IPv4 address' }).nullable().optional(),
  })
  .strict();

const TransitionBody = z.object({ to: z.enum(NODE_STATES), reason: z.string().max(500).optional() }).strict();

const EventsQuery = z.object({
  node: z.string().optional(),
  kind: z.string().max(64).optional(),
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

const ChangesQuery = z.object({
  since: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(10000).default(1000),
});

/** A route that answers without a login, and what it checks instead. */
interface PublicRoute {
  method: 'get' | 'post';
  path: string;
  credential: string;
  handlers: RequestHandler[];
}

/**
 * Every API route that answers WITHOUT a login, as one explicit list, each with the credential it checks
 * instead; mounted before the one authentication boundary (requireBasicAuth in createApiRouter). HA's
 * peer routes (/ha, the HA token) come before it too, with the write gate. Node-facing routes (enlist,
 * node metrics, boot files) are listed in boot/surface.ts. A route added anywhere else needs a login.
 */
export function publicApiRoutes(deps: ApiDeps): PublicRoute[] {
  return [
    {
      // Load balancers and keepalived track scripts probe it; it reveals no inventory.
      method: 'get',
      path: '/health',
      credential: 'none',
      handlers: [
        (_req, res) => {
          res.json({
            status: 'ok',
            version: VERSION,
            uptimeSeconds: Math.round((Date.now() - deps.startedAt) / 1000),
            schemaVersion: deps.repos.store.schemaVersion(),
            ...(deps.enlistStats ? { enlist: deps.enlistStats() } : {}),
            ...(deps.health ? deps.health() : {}),
          });
        },
      ],
    },
  ];
}

function publicRoutes(deps: ApiDeps): Router {
  const router = express.Router();
  for (const r of publicApiRoutes(deps)) router[r.method](r.path, ...r.handlers);
  return router;
}

export function createApiRouter(deps: ApiDeps): Router {
  const { repos } = deps;
  const nodes = new NodeService(repos);
  const nodeQuery = new NodeQuery(repos.store);
  const listTurns = new TurnQueue();
  const router = express.Router();
  router.use(express.json({ limit: '1mb' }));
  if (deps.ha) router.use('/ha', deps.ha.router).use(deps.ha.gate);

  router.use(publicRoutes(deps));
  // Every state-changing call from here on is audited, including refused ones (docs/security.md).
  router.use(auditMutations({ audit: repos.audit, via: 'api', logger: deps.logger }));
  // The one authentication boundary: every route below needs a login, whatever its line.
  router.use(requireBasicAuth(deps.authenticator));
  router.use(createUsersRouter(repos));

  // One list per event-loop turn, so console pages are not queued behind a burst of API lists (issue 19).
  router.get('/nodes', (req, res, next) => {
    listTurns.run(() => res.type('json').send(listNodes(req.query, nodeQuery))).catch(next);
  });

  router.get('/nodes/:id', (req, res) => {
    const node = nodes.find(idParam(req.params['id']));
    res.json({
      node,
      events: repos.events.list({ nodeMac: node.mac, limit: 100 }),
      bootActivity: repos.bootActivity.forMac(node.mac),
    });
  });

  router.patch('/nodes/:id', requireRole('operator'), (req, res) => {
    const body = parse(PatchNode, req.body);
    const node = nodes.find(idParam(req.params['id']));
    res.json({ node: nodes.update(node, body, req.user?.name ?? null) });
  });

  router.post('/nodes/:id/transition', requireRole('operator'), (req, res) => {
    const body = parse(TransitionBody, req.body);
    const node = nodes.find(idParam(req.params['id']));
    res.json({ node: nodes.transition(node, body.to, body.reason ?? null, req.user?.name ?? null) });
  });

  router.delete('/nodes/:id', requireRole('admin'), (req, res) => {
    nodes.delete(nodes.find(idParam(req.params['id'])), req.user?.name ?? null);
    res.status(204).end();
  });

  router.get('/events', (req, res) => {
    const q = parse(EventsQuery, req.query);
    const nodeMac = q.node ? nodes.find(q.node).mac : undefined;
    res.json({
      events: repos.events.list({
        ...(nodeMac ? { nodeMac } : {}),
        ...(q.kind ? { kind: q.kind } : {}),
        ...(q.after !== undefined ? { after: q.after } : {}),
        ...(q.limit !== undefined ? { limit: q.limit } : {}),
      }),
    });
  });

  // The change journal (replication feed of the HA issue); admin only.
  router.get('/changes', requireRole('admin'), (req, res) => {
    const q = parse(ChangesQuery, req.query);
    res.json({ lastSeq: repos.changes.lastSeq(), changes: repos.changes.since(q.since, q.limit) });
  });

  for (const api of deps.features ?? []) router.use(api);

  router.use((req, _res, next) =>
    next(new CorralError('NOT_FOUND', `no API route ${req.method} ${req.path}`)),
  );
  return router;
}
