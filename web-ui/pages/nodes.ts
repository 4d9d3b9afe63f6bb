import type { Router } from 'express';
import { findNode } from '../../master/nodes/service.js';
import { NODE_STATES } from '../../master/store/nodes.js';
import { eventRows } from '../event-view.js';
import {
  columnHeaders,
  DEFAULT_QUERY,
  NodeListCache,
  nodeTableHref,
  pageLinks,
  PAGE_SIZE,
  parseNodeTableQuery,
  SORT_COLUMN,
  sortRows,
  tableRow,
} from '../node-table.js';
import { NodeQuery } from '../../master/store/node-query.js';
import { nodeRow } from '../node-view.js';
import { bootTimeline } from '../node-view.js';
import { sendPage, signedIn, type ConsoleContext } from '../page.js';
import { roleAllows } from '../../master/api/auth.js';
import { flash } from '../form.js';
import { powerPanel } from '../power-view.js';
import { perfFacts, RANGE_LINKS } from '../perf-view.js';
import { mountNodeActions, transitionOptions } from './node-actions.js';
import type { LoadBalancer } from '../../master/lb/load-balancer.js';
import { BULK_POWER_ACTIONS, type NodeBulkDeps } from './node-bulk.js';
import { mountNodeLb, nodeLbPanel } from './node-lb.js';

/** The subsystems the node pages use when the master has them (bulk deploy and power, the LB panel). */
export interface NodePagesDeps extends NodeBulkDeps {
  lb?: LoadBalancer | undefined;
}

const TIMELINE_EVENTS = 100;

function can(res: import('express').Response, role: 'operator' | 'admin'): boolean {
  const who = signedIn(res);
  return Boolean(who && roleAllows(who.user.role, role));
}

function nodePerf(ctx: ConsoleContext, mac: string): Record<string, unknown> {
  const latest = ctx.repos.metrics.latest(mac);
  return {
    id: 'node',
    heading: 'Performance',
    source: mac,
    facts: perfFacts(latest),
    at: latest ? new Date(latest.at * 1000).toISOString() : null,
    ranges: RANGE_LINKS,
    empty:
      'No metrics for this node yet. The master samples deployed nodes over SSH with its key (monitor.nodeSshSeconds); other nodes appear only if they POST to /api/v1/nodes/MAC/metrics (docs/monitoring.md).',
  };
}

export function mountNodes(router: Router, ctx: ConsoleContext, deps: NodePagesDeps = {}): void {
  mountNodeActions(router, ctx, deps);
  if (deps.lb) mountNodeLb(router, ctx, deps.lb);
  const nodeQuery = new NodeQuery(ctx.repos.store);
  const listCache = new NodeListCache();
  router.get('/nodes', (req, res) => {
    const query = parseNodeTableQuery(req.query as Record<string, unknown>);
    // Filter in SQLite, sort the small rows (or reuse the order and counts while no node changed), then
    // load and render one page of table rows, not of whole records (issue 19).
    const cache = listCache.at(nodeQuery.generation());
    const counts = cache.stateCounts(() => ctx.repos.nodes.countByState());
    const total = NODE_STATES.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
    const matched = cache.order(query, () =>
      sortRows(
        nodeQuery.sortKeys(
          { q: query.q, state: query.state ?? undefined, tags: query.tag ? [query.tag] : [] },
          SORT_COLUMN[query.sort],
        ),
        query,
      ),
    );
    const pages = pageLinks(query, matched.length);
    const start = pages.from ? pages.from - 1 : 0;
    const rows = nodeQuery.listRows(matched.slice(start, start + PAGE_SIZE)).map(tableRow);
    sendPage(ctx, res, 'nodes', {
      title: 'Nodes',
      nav: 'nodes',
      query,
      rows,
      total,
      matched: matched.length,
      pages: pages.pages > 1 ? pages : null,
      filtered: Boolean(query.q || query.state || query.tag),
      tagOptions: cache
        .tagList(() => nodeQuery.allTags())
        .map((tag) => ({ tag, selected: tag === query.tag })),
      columns: columnHeaders(query),
      stateOptions: NODE_STATES.map((state) => ({
        state,
        count: counts[state] ?? 0,
        selected: state === query.state,
      })),
      // Hidden inputs keep the sort when the filter form is submitted.
      sort: query.sort === DEFAULT_QUERY.sort && query.dir === DEFAULT_QUERY.dir ? null : query,
      clearHref: nodeTableHref({ ...query, q: '', state: null, tag: '', page: 1 }),
      canOperate: can(res, 'operator'),
      canDelete: can(res, 'admin'),
      bulkStates: ['ready', 'retiring'],
      bulkDeploy: deps.deployer
        ? {
            images: ctx.repos.images.list().map((i) => i.name),
            layouts: ['default', ...Object.keys(ctx.config.deploy.layouts).filter((l) => l !== 'default')],
          }
        : null,
      bulkPower: deps.power ? BULK_POWER_ACTIONS : null,
      ...flash(req),
    });
  });

  router.get('/nodes/:id', (req, res) => {
    const node = findNode(ctx.repos.nodes, String(req.params['id'] ?? ''));
    const row = nodeRow(node);
    const events = ctx.repos.events.list({ nodeMac: node.mac, limit: TIMELINE_EVENTS + 1 });
    sendPage(ctx, res, 'node', {
      title: node.name,
      nav: 'nodes',
      node,
      cpu: row.cpu,
      inv: row.inventory,
      inventoryJson: JSON.stringify(node.inventory, null, 2),
      events: eventRows(events.slice(0, TIMELINE_EVENTS), [node]),
      moreEvents: events.length > TIMELINE_EVENTS,
      eventsHref: `/events?node=${encodeURIComponent(node.mac)}`,
      canOperate: can(res, 'operator'),
      canDelete: can(res, 'admin'),
      transitions: transitionOptions(node),
      perf: ctx.monitor ? nodePerf(ctx, node.mac) : null,
      charts: Boolean(ctx.monitor),
      power: powerPanel(
        ctx.repos.powerConfigs.get(node.mac),
        signedIn(res)?.user.role,
        {},
        deps.power?.cachedBmc(node.mac),
      ),
      lb: nodeLbPanel(deps.lb, node, signedIn(res)?.user.role),
      bootActivity: bootTimeline(ctx.repos.bootActivity.forMac(node.mac)),
      ...flash(req),
    });
  });
}
