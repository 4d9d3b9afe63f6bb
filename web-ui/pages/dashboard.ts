import type { Router } from 'express';
import { publicUrl, type FrozenConfig } from '../../master/config.js';
import { NODE_STATES } from '../../master/store/nodes.js';
import { eventNodes, eventRows } from '../event-view.js';
import { NodeQuery } from '../../master/store/node-query.js';
import { DEFAULT_QUERY, nodeTableHref } from '../node-table.js';
import { sendPage, type ConsoleContext } from '../page.js';
import { perfFacts, RANGE_LINKS } from '../perf-view.js';
import { MASTER_SOURCE } from '../../master/monitor/monitor.js';
import type { SubsystemHealth } from '../../master/util/faults.js';
import { nodeImageSummary, type NodeImageStatus } from '../../master/boot/node-image-builder.js';

const RECENT_EVENTS = 12;

function dhcpSummary(config: FrozenConfig): string {
  switch (config.dhcp.mode) {
    case 'server':
      return `server, range ${config.dhcp.range ?? '?'}${config.dhcp.subnet ? ` in ${config.dhcp.subnet}` : ''}`;
    case 'proxy':
      return 'proxyDHCP (boot information only; another server gives addresses)';
    case 'off':
      return 'off';
  }
}

/** Facts an admin checks first when a node does not boot: where the master listens and how it answers. */
function masterFacts(ctx: ConsoleContext): { label: string; value: string; mono: boolean }[] {
  const { config } = ctx;
  return [
    { label: 'Address', value: config.address, mono: true },
    { label: 'Interface', value: config.interface ?? 'any', mono: true },
    { label: 'HTTP', value: publicUrl(config), mono: true },
    { label: 'DHCP', value: dhcpSummary(config), mono: false },
    { label: 'TFTP', value: config.tftp.enabled ? `on, port ${config.tftp.port}` : 'off', mono: false },
    { label: 'Data directory', value: config.dataDir, mono: true },
    { label: 'Schema version', value: String(ctx.repos.store.schemaVersion()), mono: false },
    ...(ctx.faults ? [{ label: 'Faults', value: faultSummary(ctx.faults()), mono: false }] : []),
  ];
}

/** "dhcp 0 · tftp 2 (40 dropped); last tftp fault: ... at ..." (see /api/v1/health `subsystems`). */
function faultSummary(subsystems: Record<string, SubsystemHealth>): string {
  const entries = Object.entries(subsystems);
  const counts = entries
    .map(([name, s]) => `${name} ${s.faults}${s.dropped ? ` (${s.dropped} dropped)` : ''}`)
    .join(' · ');
  const last = entries
    .flatMap(([name, s]) => (s.lastFault ? [{ name, ...s.lastFault }] : []))
    .sort((a, b) => b.at.localeCompare(a.at))[0];
  return last ? `${counts}; last: ${last.name}, ${last.message} at ${last.at}` : counts || 'none';
}

/** The dashboard's "Node environment" line: state, and the stage and percent while it builds. */
function nodeImageLine(
  status: (() => NodeImageStatus) | undefined,
  now: number,
): { state: string; text: string } | null {
  if (!status) return null;
  const s = status();
  const text =
    s.state === 'building'
      ? `building (${s.stage ?? 'starting'}, ${s.percent ?? 0}%)${s.available ? '; the current one is served' : ''}`
      : s.state === 'off'
        ? 'not built (nodeImage.autoBuild is off): run corral node-image build'
        : nodeImageSummary(s, now).replace(/^the node environment build failed/, 'failed');
  return { state: s.state, text };
}

export function mountDashboard(router: Router, ctx: ConsoleContext, nodeImage?: () => NodeImageStatus): void {
  const nodeQuery = new NodeQuery(ctx.repos.store);
  router.get('/', (_req, res) => {
    const counts = ctx.repos.nodes.countByState();
    const total = NODE_STATES.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
    let offset = 0;
    const states = NODE_STATES.map((state) => {
      const count = counts[state] ?? 0;
      // The distribution bar is SVG geometry in attributes, not inline style, so the CSP can forbid styles.
      const width = total ? (count / total) * 100 : 0;
      const segment = { state, count, x: offset, width, href: nodeTableHref({ ...DEFAULT_QUERY, state }) };
      offset += width;
      return segment;
    });
    const recent = ctx.repos.events.list({ limit: RECENT_EVENTS });
    sendPage(ctx, res, 'dashboard', {
      title: 'Dashboard',
      nav: 'dashboard',
      total,
      states,
      segments: states.filter((s) => s.count > 0),
      events: eventRows(
        recent,
        eventNodes(recent, (m) => nodeQuery.byMacs(m)),
      ),
      eventCount: ctx.repos.events.count(),
      master: masterFacts(ctx),
      nodeImage: nodeImageLine(nodeImage, ctx.now()),
      perf: perfBlock(ctx),
      charts: Boolean(ctx.monitor),
    });
  });
}

function perfBlock(ctx: ConsoleContext): Record<string, unknown> | null {
  if (!ctx.monitor) return null;
  const latest = ctx.repos.metrics.latest(MASTER_SOURCE);
  return {
    id: 'master',
    heading: 'Master performance',
    source: MASTER_SOURCE,
    facts: perfFacts(latest),
    at: latest ? new Date(latest.at * 1000).toISOString() : null,
    ranges: RANGE_LINKS,
    empty: `No samples yet; the master samples itself every ${ctx.config.monitor.intervalSeconds} s.`,
  };
}
