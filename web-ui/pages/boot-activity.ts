/**
 * "Boot activity" (issue 22): what this master's DHCP, TFTP and HTTP boot servers saw, per MAC, for
 * machines not yet enlisted (they have no node page) and for every recent boot attempt. `?mac=` shows one
 * MAC's timeline, the failing step marked with its hint. Read-only, any signed-in role.
 */
import type { Router } from 'express';
import { normaliseMac } from '../../master/nodes/inventory.js';
import { CorralError } from '../../master/util/errors.js';
import type { BootActivityMachine } from '../../master/store/boot-activity.js';
import { bootTimeline, nodeHref } from '../node-view.js';
import { sendPage, type ConsoleContext } from '../page.js';

/** Rows of the "recent attempts" table; the database keeps more (see the bounds on the page). */
const RECENT = 50;

function machineRow(m: BootActivityMachine): Record<string, unknown> {
  return {
    mac: m.mac,
    href: `/boot-activity?mac=${encodeURIComponent(m.mac)}`,
    node: m.node ? { ...m.node, href: nodeHref(m.mac) } : null,
    firstAt: m.firstAt,
    lastAt: m.lastAt,
    entries: m.entries,
    last: m.last?.summary ?? null,
    failure: m.failure ? { summary: m.failure.summary, hint: m.failure.hint, at: m.failure.at } : null,
  };
}

export function mountBootActivity(router: Router, ctx: ConsoleContext): void {
  router.get('/boot-activity', (req, res) => {
    const store = ctx.repos.bootActivity;
    const bounds = store.bounds;
    const raw = req.query['mac'];
    if (raw !== undefined) {
      const mac = typeof raw === 'string' ? normaliseMac(raw) : undefined;
      if (!mac) throw new CorralError('MAC_INVALID', `'${String(raw)}' is not a MAC address`);
      const node = ctx.repos.nodes.get(mac);
      const timeline = bootTimeline(store.forMac(mac));
      sendPage(ctx, res, 'boot-activity', {
        title: `Boot activity of ${node?.name ?? mac}`,
        nav: 'boot-activity',
        mac,
        node: node ? { name: node.name, state: node.state, href: nodeHref(mac) } : null,
        timeline,
        bounds,
      });
      return;
    }
    sendPage(ctx, res, 'boot-activity', {
      title: 'Boot activity',
      nav: 'boot-activity',
      unenlisted: store.machines({ unenlisted: true, limit: bounds.maxMacs }).map(machineRow),
      recent: store.machines({ limit: RECENT }).map(machineRow),
      bounds,
    });
  });
}
