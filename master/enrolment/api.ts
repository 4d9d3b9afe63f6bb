/**
 * REST API v1 for enrolment rules and node tags (issue 16), mounted after Basic auth:
 *   GET    /rules                  viewer    the ordered rules with their counts
 *   GET    /rules/dry-run          viewer    which current nodes each rule would catch, and which it passes
 *   GET    /rules/:id              viewer    one rule (id or name)
 *   POST   /rules                  admin     {name, enabled?, limit?, match?, outcome?, position?}
 *   PUT    /rules/:id              admin     the whole rule again (its count is kept)
 *   PATCH  /rules/:id              admin     {enabled?, limit?}: enable, disable, change the limit
 *   POST   /rules/:id/move         admin     {position} (1 = first)
 *   DELETE /rules/:id              admin
 *   POST   /rules/apply            operator  {nodes?}: run the rules now on discovered/ready nodes
 *   PUT    /nodes/:id/tags         operator  {tags}: replace
 *   POST   /nodes/:id/tags         operator  {add?, remove?}
 *   DELETE /nodes/:id/tags/:tag    operator
 */
import express, { type Router } from 'express';
import { z } from 'zod';
import { requireRole } from '../api/auth.js';
import { zodToCorral } from '../api/errors.js';
import { NodeService } from '../nodes/service.js';
import type { Repos } from '../store/repos.js';
import { MAX_RULE_LIMIT } from './rule.js';
import type { Enrolment } from './service.js';

function param(v: string | string[] | undefined): string {
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw zodToCorral(r.error);
  return r.data;
}

const tagList = z.array(z.string().max(64)).max(64);
const SetTags = z.object({ tags: tagList }).strict();
const ChangeTags = z.object({ add: tagList.optional(), remove: tagList.optional() }).strict();
const Move = z.object({ position: z.number().int().min(1).max(10_000) }).strict();
const Patch = z
  .object({
    enabled: z.boolean().optional(),
    limit: z.number().int().min(1).max(MAX_RULE_LIMIT).nullable().optional(),
  })
  .strict();
const Apply = z.object({ nodes: z.array(z.string().min(1).max(64)).max(1000).optional() }).strict();

export function createEnrolmentApiRouter(enrolment: Enrolment, repos: Repos): Router {
  const nodes = new NodeService(repos);
  const router = express.Router();
  const actor = (req: express.Request): string | null => req.user?.name ?? null;

  router.get('/rules', (_req, res) => {
    res.json({ rules: enrolment.list() });
  });
  router.get('/rules/dry-run', (_req, res) => {
    res.json({ rules: enrolment.dryRun() });
  });
  router.post('/rules/apply', requireRole('operator'), async (req, res) => {
    const body = parse(Apply, req.body ?? {});
    res.json({ results: await enrolment.apply(body.nodes) });
  });
  router.get('/rules/:id', (req, res) => {
    res.json({ rule: enrolment.find(param(req.params['id'])) });
  });
  router.post('/rules', requireRole('admin'), (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const { position, ...spec } = body;
    const at = position === undefined ? undefined : parse(Move, { position }).position;
    res.status(201).json({ rule: enrolment.create(spec, actor(req), at) });
  });
  router.put('/rules/:id', requireRole('admin'), (req, res) => {
    res.json({ rule: enrolment.update(param(req.params['id']), req.body, actor(req)) });
  });
  router.patch('/rules/:id', requireRole('admin'), (req, res) => {
    const body = parse(Patch, req.body);
    res.json({ rule: enrolment.patch(param(req.params['id']), body, actor(req)) });
  });
  router.post('/rules/:id/move', requireRole('admin'), (req, res) => {
    const body = parse(Move, req.body);
    res.json({ rule: enrolment.move(param(req.params['id']), body.position, actor(req)) });
  });
  router.delete('/rules/:id', requireRole('admin'), (req, res) => {
    enrolment.remove(param(req.params['id']), actor(req));
    res.status(204).end();
  });

  router.put('/nodes/:id/tags', requireRole('operator'), (req, res) => {
    const body = parse(SetTags, req.body);
    const node = nodes.find(param(req.params['id']));
    res.json({ node: nodes.tag(node, { set: body.tags }, actor(req)) });
  });
  router.post('/nodes/:id/tags', requireRole('operator'), (req, res) => {
    const body = parse(ChangeTags, req.body);
    const node = nodes.find(param(req.params['id']));
    res.json({ node: nodes.tag(node, body, actor(req)) });
  });
  router.delete('/nodes/:id/tags/:tag', requireRole('operator'), (req, res) => {
    const node = nodes.find(param(req.params['id']));
    res.json({ node: nodes.tag(node, { remove: [param(req.params['tag'])] }, actor(req)) });
  });
  return router;
}
