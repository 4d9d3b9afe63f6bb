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
import { createLbRouter } from '../lb/api.js';
import { auditMutations } from './audit.js';
import { createUsersRouter } from './users.js';
import type { LoadBalancer } from '../lb/load-balancer.js';
import { createBootActivityRouter } from '../boot/activity-api.js';

export interface ApiDeps {
  repos: Repos;
  config: FrozenConfig;
  logger: Logger;
  authenticator: Authenticator;
  startedAt: number;
  /** Images and deployment (master/deploy/api.ts), mounted after auth. */
  deployApi?: Router;
  /** Power control and commands on nodes (master/remote/api.ts, issue #11), mounted after auth. */
  remoteApi?: Router;
  /** High availability (master/ha): its /ha routes and the write gate (NOT_PRIMARY, sync replication). */
  ha?: { router: Router; gate: RequestHandler };
  /** Extra health facts from subsystems (dhcp, tftp, node image), filled by master.ts. */
  health?: () => Record<string, unknown>;
  /** Services and HAProxy (issue #7); its routes are mounted when given. */
  lb?: LoadBalancer;
  /** Restore points (master/snapshots/api.ts), mounted at /snapshots after auth. */
  snapshotsApi?: Router;
  /** Shared roots and diskless nodes (master/sharedroot/api.ts), mounted after auth. */
  sharedRootApi?: Router;
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

export function createApiRouter(deps: ApiDeps): Router {
  const { repos } = deps;
  const nodes = new NodeService(repos);
  const router = express.Router();
  router.use(express.json({ limit: '1mb' }));
  if (deps.ha) router.use('/ha', deps.ha.router).use(deps.ha.gate);

  // Unauthenticated: load balancers and keepalived track scripts probe this; it reveals no inventory.
  router.get('/health', (_req, res) => {
    res.json({
      status: 'ok',
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - deps.startedAt) / 1000),
      schemaVersion: repos.store.schemaVersion(),
      ...(deps.enlistStats ? { enlist: deps.enlistStats() } : {}),
      ...(deps.health ? deps.health() : {}),
    });
  });

  // Every state-changing call from here on is audited, including refused ones (docs/security.md).
  router.use(auditMutations({ audit: repos.audit, via: 'api', logger: deps.logger }));
  router.use(requireBasicAuth(deps.authenticator));
  router.use(createUsersRouter(repos));
  if (deps.deployApi) router.use(deps.deployApi);
  if (deps.remoteApi) router.use(deps.remoteApi);

  router.get('/nodes', (req, res) => {
    const state = typeof req.query['state'] === 'string' ? req.query['state'] : undefined;
    res.json({ nodes: repos.nodes.list().filter((n) => !state || n.state === state) });
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

  if (deps.lb) router.use(createLbRouter(deps.lb, repos));
  if (deps.snapshotsApi) router.use('/snapshots', deps.snapshotsApi);
  if (deps.sharedRootApi) router.use(deps.sharedRootApi);
  router.use(createBootActivityRouter(repos));

  router.use((req, _res, next) =>
    next(new CorralError('NOT_FOUND', `no API route ${req.method} ${req.path}`)),
  );
  return router;
}
