/**
 * Console pages for load-balanced services (issue #7): the list with per-service health, one service
 * with per-node health and check results, and the drain / maintenance / ready buttons, which go to
 * HAProxy's runtime API without a reload. Forms post with the session's CSRF token like every console form.
 */
import type { Router } from 'express';
import { roleAllows } from '../../master/api/auth.js';
import type { LoadBalancer } from '../../master/lb/load-balancer.js';
import { servedBy } from '../../master/lb/service-spec.js';
import { CorralError } from '../../master/util/errors.js';
import { adminStateField, healthBadge as badge, serverRow } from '../lb-view.js';
import { sendPage, signedIn, type ConsoleContext } from '../page.js';
import type { Role } from '../../master/store/users.js';

function field(body: unknown, name: string): string {
  const v = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  return typeof v === 'string' ? v.trim() : '';
}

function intField(body: unknown, name: string): number | undefined {
  const v = field(body, name);
  return v === '' ? undefined : Number(v);
}

/** The create form's fields → the API's service body (validated by the same schema). */
export function serviceFromForm(body: unknown): Record<string, unknown> {
  const members = field(body, 'members');
  const kind = field(body, 'memberKind');
  const checkType = field(body, 'checkType') === 'http' ? 'http' : 'tcp';
  return {
    name: field(body, 'name'),
    port: intField(body, 'port'),
    protocol: field(body, 'protocol') || 'http',
    ...(kind === 'nodes'
      ? { nodes: members.split(/[\s,]+/).filter(Boolean) }
      : kind === 'tag'
        ? { tag: members }
        : { role: members }),
    backendPort: intField(body, 'backendPort'),
    check:
      checkType === 'http'
        ? {
            type: 'http',
            path: field(body, 'checkPath') || '/',
            expectStatus: intField(body, 'expectStatus') ?? 200,
          }
        : { type: 'tcp' },
    ...(intField(body, 'intervalMs') !== undefined ? { intervalMs: intField(body, 'intervalMs') } : {}),
    ...(intField(body, 'rise') !== undefined ? { rise: intField(body, 'rise') } : {}),
    ...(intField(body, 'fall') !== undefined ? { fall: intField(body, 'fall') } : {}),
  };
}

export function mountServices(router: Router, ctx: ConsoleContext, lb: LoadBalancer): void {
  const role = (res: Parameters<typeof signedIn>[0]): Role => signedIn(res)?.user.role ?? 'viewer';
  const need = (res: Parameters<typeof signedIn>[0], min: Role): void => {
    if (!roleAllows(role(res), min)) throw new CorralError('FORBIDDEN', `this needs the ${min} role`);
  };

  router.get('/services', (_req, res) => {
    const views = lb.views();
    sendPage(ctx, res, 'services', {
      title: 'Services',
      nav: 'services',
      status: lb.status(),
      canAdmin: roleAllows(role(res), 'admin'),
      services: views.map((v) => ({
        ...v,
        href: `/services/${encodeURIComponent(v.spec.name)}`,
        badge: badge(v.health),
        members: v.spec.role
          ? `role ${v.spec.role}`
          : v.spec.tag
            ? `tag ${v.spec.tag}`
            : (v.spec.nodes ?? []).join(', '),
        check:
          v.spec.check.type === 'http'
            ? `GET ${v.spec.check.path} → ${v.spec.check.expectStatus}`
            : 'TCP connect',
      })),
    });
  });

  router.post('/services', async (req, res) => {
    need(res, 'admin');
    const spec = await lb.putService(serviceFromForm(req.body), signedIn(res)?.user.name ?? null, 'create');
    res.redirect(303, `/services/${encodeURIComponent(spec.name)}`);
  });

  router.get('/services/:name', (req, res) => {
    const v = lb.view(lb.service(String(req.params['name'] ?? '')));
    const canOperate = roleAllows(role(res), 'operator');
    sendPage(ctx, res, 'service', {
      title: v.spec.name,
      nav: 'services',
      service: v,
      badge: badge(v.health),
      canOperate,
      canAdmin: roleAllows(role(res), 'admin'),
      check:
        v.spec.check.type === 'http'
          ? `GET ${v.spec.check.path} → ${v.spec.check.expectStatus}`
          : 'TCP connect',
      members: servedBy(v.spec),
      servers: v.servers.map((s) => ({
        ...serverRow(
          s,
          `/services/${encodeURIComponent(v.spec.name)}/servers/${encodeURIComponent(s.mac)}/state`,
        ),
        nodeHref: `/nodes/${encodeURIComponent(s.mac)}`,
      })),
    });
  });

  router.post('/services/:name/servers/:node/state', async (req, res) => {
    need(res, 'operator');
    const state = adminStateField(req);
    const name = String(req.params['name'] ?? '');
    await lb.setServerState(name, String(req.params['node'] ?? ''), state, signedIn(res)?.user.name ?? null);
    res.redirect(303, `/services/${encodeURIComponent(name)}`);
  });

  router.post('/services/:name/delete', async (req, res) => {
    need(res, 'admin');
    await lb.deleteService(String(req.params['name'] ?? ''), signedIn(res)?.user.name ?? null);
    res.redirect(303, '/services');
  });
}
