import type { Router } from 'express';
import { requireConsoleRole, sendPage, type ConsoleContext } from '../page.js';

const PAGE = 50;

export function mountAudit(router: Router, ctx: ConsoleContext): void {
  router.get('/audit', (req, res) => {
    requireConsoleRole(res, 'admin');
    const before = /^\d+$/.test(String(req.query['before'] ?? '')) ? Number(req.query['before']) : undefined;
    const actor =
      typeof req.query['actor'] === 'string' && req.query['actor']
        ? req.query['actor'].slice(0, 128)
        : undefined;
    const rows = ctx.repos.audit.list({
      ...(before ? { before } : {}),
      ...(actor ? { actor } : {}),
      limit: PAGE + 1,
    });
    const page = rows.slice(0, PAGE);
    const last = page[page.length - 1];
    const qs = (p: Record<string, string | number | undefined>): string => {
      const u = new URLSearchParams();
      for (const [k, v] of Object.entries(p)) if (v !== undefined && v !== '') u.set(k, String(v));
      const s = u.toString();
      return s ? `/audit?${s}` : '/audit';
    };
    sendPage(ctx, res, 'audit', {
      title: 'Audit log',
      nav: 'audit',
      rows: page,
      actor: actor ?? '',
      total: ctx.repos.audit.count(),
      olderHref: rows.length > PAGE && last ? qs({ actor, before: last.id }) : null,
      newerHref: before ? qs({ actor }) : null,
    });
  });
}
