/**
 * The node page's Load balancer panel (issues #4 and #7): every service the node serves, with HAProxy's
 * health and check result there and the operator's admin state, and Ready / Drain / Maintenance buttons.
 * The buttons go through LoadBalancer.setServerState, as the Services page and the API do; drain and
 * maintenance need "I confirm", checked here on the server so it holds without JavaScript.
 */
import type { Router } from 'express';
import { roleAllows } from '../../master/api/auth.js';
import { findNode } from '../../master/nodes/service.js';
import type { LoadBalancer } from '../../master/lb/load-balancer.js';
import type { NodeRecord } from '../../master/store/nodes.js';
import type { Role } from '../../master/store/users.js';
import { isCorralError } from '../../master/util/errors.js';
import { isConfirmed, withFlash } from '../form.js';
import { adminStateField, CONFIRMED_ADMIN_STATES, serverRow, type ServerRow } from '../lb-view.js';
import { requireConsoleRole, type ConsoleContext } from '../page.js';
import { nodeHref } from './node-actions.js';

export interface NodeLbPanel {
  /** Why there are no rows, when there are none (the panel's empty state). */
  empty: string | null;
  rows: (ServerRow & { service: string; serviceHref: string; frontend: string })[];
  canOperate: boolean;
}

const LABEL = { ready: 'ready', drain: 'drain', maint: 'maintenance' } as const;

export function nodeLbPanel(
  lb: LoadBalancer | undefined,
  node: NodeRecord,
  role: Role | undefined,
): NodeLbPanel {
  const canOperate = role !== undefined && roleAllows(role, 'operator');
  if (!lb) return { empty: 'Load balancing is not available on this master.', rows: [], canOperate };
  if (!lb.enabled)
    return { empty: 'Load balancing is disabled (lb.enabled = false in the config).', rows: [], canOperate };
  const rows = lb.nodeHealth(node.mac).map(({ service, server }) => ({
    ...serverRow(server, `${nodeHref(node)}/lb/${encodeURIComponent(service)}/state`),
    service,
    serviceHref: `/services/${encodeURIComponent(service)}`,
    frontend: `${lb.bind}:${lb.service(service).port}`,
  }));
  const empty = rows.length
    ? null
    : `${node.name} serves no load-balanced service: a node joins one when it is deployed with an address and the service's role (or is named in it).`;
  return { empty, rows, canOperate };
}

export function mountNodeLb(router: Router, ctx: ConsoleContext, lb: LoadBalancer): void {
  router.post('/nodes/:id/lb/:service/state', async (req, res) => {
    const actor = requireConsoleRole(res, 'operator').user.name;
    const node = findNode(ctx.repos.nodes, String(req.params['id'] ?? ''));
    const service = String(req.params['service'] ?? '');
    try {
      const state = adminStateField(req);
      if (CONFIRMED_ADMIN_STATES.includes(state) && !isConfirmed(req)) {
        return void res.redirect(
          303,
          withFlash(
            nodeHref(node),
            'err',
            `Tick "I confirm" to set ${node.name} to ${LABEL[state]} in service ${service}.`,
          ),
        );
      }
      const s = await lb.setServerState(service, node.mac, state, actor);
      res.redirect(
        303,
        withFlash(nodeHref(node), 'ok', `${node.name} is now ${LABEL[s.admin]} in service ${service}.`),
      );
    } catch (err) {
      // LB_DISABLED, SERVICE_NOT_FOUND, LB_NOT_MEMBER, HAProxy's refusal: one sentence on the node page.
      if (!isCorralError(err) || err.code === 'FORBIDDEN') throw err;
      res.redirect(303, withFlash(nodeHref(node), 'err', err.message));
    }
  });
}
