import express, { type ErrorRequestHandler, type RequestHandler, type Router } from 'express';
import { z } from 'zod';
import type { FrozenConfig } from '../config.js';
import type { Authenticator } from '../auth/users.js';
import type { Repos } from '../store/repos.js';
import { NODE_STATES } from '../store/nodes.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { VERSION } from '../util/version.js';
import { ENLIST_BODY_LIMIT_BYTES } from '../nodes/inventory.js';
import { EnlistGuard } from '../nodes/enlist-guard.js';
import { bearerCredential } from '../nodes/credentials.js';
import { NODE_NAME, NODE_ROLE, NodeService } from '../nodes/service.js';
import { requireBasicAuth, requireRole } from './auth.js';
import { zodToCorral } from './errors.js';
import { createLbRouter } from '../lb/api.js';
import { auditMutations } from './audit.js';
import { createNodeMetricsRouter } from './metrics.js';
import { createUsersRouter } from './users.js';
import type { Monitor } from '../monitor/monitor.js';
import type { LoadBalancer } from '../lb/load-balancer.js';
import type { BootActivitySink } from '../boot/activity.js';
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
  /** Performance monitoring (issue #10): node metric reports are accepted when given. */
  monitor?: Monitor;
  /** Shared roots and diskless nodes (master/sharedroot/api.ts), mounted after auth. */
  sharedRootApi?: Router;
  /** cloud-init layers and node previews (issue 16; master/cloudinit/api.ts). */
  cloudInitApi?: Router;
  /** The boot timeline (issue 22): enlistment is one of its steps. */
  activity?: BootActivitySink;
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

/** The enlist route's body errors: over ENLIST_BODY_LIMIT_BYTES → 413 ENLIST_TOO_LARGE, counted. */
function enlistBodyErrors(guard: EnlistGuard): ErrorRequestHandler {
  return (err: unknown, req, _res, next) => {
    const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '') || null;
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

export function createApiRouter(deps: ApiDeps): Router {
  const { repos, config } = deps;
  const nodes = new NodeService(repos);
  const router = express.Router();
  const enlistGuard = new EnlistGuard({ repos, config, logger: deps.logger });
  // Enlistment is unauthenticated: its own, small body limit (issue 14); the general parser then skips it.
  router.use('/enlist', express.json({ limit: ENLIST_BODY_LIMIT_BYTES }), enlistBodyErrors(enlistGuard));
  router.use(express.json({ limit: '1mb' }));
  if (deps.ha) router.use('/ha', deps.ha.router).use(deps.ha.gate);

  // Unauthenticated: load balancers and keepalived track scripts probe this; it reveals no inventory.
  router.get('/health', (_req, res) => {
    res.json({
      status: 'ok',
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - deps.startedAt) / 1000),
      schemaVersion: repos.store.schemaVersion(),
      enlist: enlistGuard.stats(),
      ...(deps.health ? deps.health() : {}),
    });
  });

  // Unauthenticated by design (as MAAS enlistment): a new node has no credential yet. Bounded: 64 KiB,
  // a strict schema, new MACs rate-limited. A known MAC needs its credential, or a new one is issued only
  // to the node's own leased/recorded address in a state that boots the node environment (nodes/enlist.ts).
  router.post('/enlist', (req, res) => {
    const sourceIp = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '') || null;
    try {
      const { reply, created, node, credentialIssued } = enlistGuard.enlist(req.body, {
        sourceIp,
        credential: bearerCredential(req.headers),
      });
      deps.logger.info(
        { mac: node.mac, name: node.name, created, ip: sourceIp, credential: credentialIssued ?? 'kept' },
        'node enlisted',
      );
      deps.activity?.record(node.mac, { kind: 'enlist', name: node.name, created, ip: sourceIp ?? '' });
      res
        .status(created ? 201 : 200)
        .setHeader('Cache-Control', 'no-store')
        .json(reply);
    } catch (err) {
      const retry = err instanceof CorralError ? err.details?.['retryAfterSeconds'] : undefined;
      if (retry !== undefined) res.setHeader('Retry-After', String(retry));
      throw err;
    }
  });

  if (deps.monitor) router.use(createNodeMetricsRouter(repos, deps.monitor));
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
  if (deps.cloudInitApi) router.use(deps.cloudInitApi);
  router.use(createBootActivityRouter(repos));

  router.use((req, _res, next) =>
    next(new CorralError('NOT_FOUND', `no API route ${req.method} ${req.path}`)),
  );
  return router;
}
