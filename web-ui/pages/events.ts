import type { Router } from 'express';
import { findNode } from '../../master/nodes/service.js';
import { eventPage } from '../event-pages.js';
import { eventNodes, eventRows } from '../event-view.js';
import { NodeQuery } from '../../master/store/node-query.js';
import { nodeHref } from '../node-view.js';
import { sendPage, type ConsoleContext } from '../page.js';

const PAGE_SIZE = 50;

function first(value: unknown): string {
  if (Array.isArray(value)) return first(value[0]);
  return typeof value === 'string' ? value : '';
}

export function mountEvents(router: Router, ctx: ConsoleContext): void {
  const nodeQuery = new NodeQuery(ctx.repos.store);
  router.get('/events', (req, res) => {
    const nodeParam = first(req.query['node']);
    const node = nodeParam ? findNode(ctx.repos.nodes, nodeParam) : undefined;
    const beforeParam = first(req.query['before']);
    const before = /^\d{1,15}$/.test(beforeParam) ? Number(beforeParam) : undefined;
    const page = eventPage(ctx.repos.events, {
      limit: PAGE_SIZE,
      ...(before !== undefined ? { before } : {}),
      ...(node ? { nodeMac: node.mac } : {}),
    });
    const link = (cursor?: number): string => {
      const params = new URLSearchParams();
      if (node) params.set('node', node.mac);
      if (cursor !== undefined) params.set('before', String(cursor));
      const qs = params.toString();
      return qs ? `/events?${qs}` : '/events';
    };
    const newerHref = before !== undefined ? link() : null;
    const olderHref = page.olderCursor !== null ? link(page.olderCursor) : null;
    sendPage(ctx, res, 'events', {
      title: node ? `Events of ${node.name}` : 'Events',
      nav: 'events',
      events: eventRows(page.events, node ? [node] : eventNodes(page.events, (m) => nodeQuery.byMacs(m))),
      node: node ? { name: node.name, mac: node.mac, href: nodeHref(node.mac) } : null,
      newerHref,
      olderHref,
      paged: Boolean(newerHref || olderHref),
      allHref: '/events',
    });
  });
}
