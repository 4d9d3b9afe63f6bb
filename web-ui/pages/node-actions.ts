/**
 * Node actions from the console: rename / set role, lifecycle transitions (through master/nodes/lifecycle.ts,
 * the only writer of node state), delete, and the same as bulk actions on the node list, which can also
 * deploy an image and switch power (node-bulk.ts). Roles are checked here on the server (operator; delete
 * needs admin), exactly as the API checks them.
 */
import type { Request, Router } from 'express';
import { checkTag } from '../../master/nodes/tags.js';
import { NODE_NAME, NODE_ROLE, NodeService } from '../../master/nodes/service.js';
import { TRANSITIONS } from '../../master/nodes/lifecycle.js';
import { NODE_STATES, type NodeRecord, type NodeState } from '../../master/store/nodes.js';
import type { PowerAction } from '../../master/remote/power-driver.js';
import { CorralError, isCorralError } from '../../master/util/errors.js';
import { formField, formList, requireConfirmed, withFlash } from '../form.js';
import { requireConsoleRole, type ConsoleContext } from '../page.js';
import { bulkDeploy, bulkPower, bulkSummary, type BulkOutcome, type NodeBulkDeps } from './node-bulk.js';

export function nodeHref(node: Pick<NodeRecord, 'mac'>): string {
  return `/nodes/${encodeURIComponent(node.mac)}`;
}

/** What the node page offers: the states the lifecycle allows next. */
export function transitionOptions(node: NodeRecord): NodeState[] {
  return [...TRANSITIONS[node.state]];
}

function isState(s: string): s is NodeState {
  return (NODE_STATES as readonly string[]).includes(s);
}

/** The console's wording of the shape checks; the nodes service checks the name is free and writes. */
function update(
  nodes: NodeService,
  node: NodeRecord,
  name: string | undefined,
  role: string | null | undefined,
  actor: string,
): void {
  if (name !== undefined && !NODE_NAME.test(name))
    throw new CorralError('BODY_INVALID', 'A name is a lower-case DNS label (letters, digits, hyphens).');
  if (role && !NODE_ROLE.test(role))
    throw new CorralError('BODY_INVALID', 'A role is 1-32 lower-case letters, digits, - or _.');
  nodes.update(node, { name, role }, actor);
}

export function mountNodeActions(router: Router, ctx: ConsoleContext, deps: NodeBulkDeps = {}): void {
  const nodes = new NodeService(ctx.repos);
  const act = (
    path: string,
    back: (req: Request) => string,
    fn: (req: Request, actor: string) => string | Promise<string>,
  ): void => {
    router.post(path, async (req, res) => {
      let target = back(req);
      try {
        const message = await fn(req, requireConsoleRole(res, 'operator').user.name);
        if (message.startsWith('/')) return res.redirect(303, message);
        res.redirect(303, withFlash(target, 'ok', message));
      } catch (err) {
        if (!isCorralError(err) || err.status >= 500 || err.code === 'FORBIDDEN') throw err;
        if (err.code === 'NODE_NOT_FOUND') target = '/nodes';
        res.redirect(303, withFlash(target, 'err', err.message));
      }
    });
  };
  const byId = (req: Request): string => `/nodes/${encodeURIComponent(String(req.params['id'] ?? ''))}`;

  act('/nodes/:id/update', byId, (req, actor) => {
    const node = nodes.find(String(req.params['id']));
    const name = formField(req, 'name', 80).trim();
    const role = formField(req, 'role', 40).trim();
    update(
      nodes,
      node,
      name && name !== node.name ? name : undefined,
      role === (node.role ?? '') ? undefined : role || null,
      actor,
    );
    return withFlash(nodeHref(ctx.repos.nodes.get(node.mac) ?? node), 'ok', 'Saved.');
  });

  act('/nodes/:id/transition', byId, (req, actor) => {
    requireConfirmed(req);
    const node = nodes.find(String(req.params['id']));
    const to = formField(req, 'to', 20);
    if (!isState(to)) throw new CorralError('BODY_INVALID', `Unknown state '${to}'.`);
    const reason = formField(req, 'reason', 500).trim();
    nodes.transition(node, to, reason || null, actor);
    return `${node.name}: ${node.state} → ${to}.`;
  });

  act('/nodes/:id/delete', byId, (req, actor) => {
    requireConsoleRole(undefinedRes(req), 'admin');
    const node = nodes.find(String(req.params['id']));
    if (formField(req, 'confirm', 80) !== node.name)
      throw new CorralError('BODY_INVALID', `Type ${node.name} to confirm deleting it.`);
    nodes.delete(node, actor);
    return withFlash('/nodes', 'ok', `Deleted ${node.name}.`);
  });

  act(
    '/nodes/bulk',
    () => '/nodes',
    async (req, actor) => {
      const macs = formList(req, 'mac', 500);
      if (!macs.length) throw new CorralError('BODY_INVALID', 'Select at least one node.');
      requireConfirmed(req);
      const action = formField(req, 'action', 40);
      const targets = macs.map((m) => nodes.find(m));
      const report = (what: string, o: BulkOutcome): string => {
        const s = bulkSummary(what, o);
        return withFlash('/nodes', s.kind, s.message);
      };
      if (action === 'deploy') {
        const image = formField(req, 'image', 64).trim();
        const layout = formField(req, 'layout', 32).trim() || undefined;
        try {
          const o = await bulkDeploy(
            { ...deps, repos: ctx.repos, config: ctx.config },
            targets,
            image,
            layout,
            actor,
          );
          return report(`Deploying ${image}`, o);
        } catch (err) {
          if (!isCorralError(err) || err.code !== 'SNAPSHOT_FAILED') throw err;
          return withFlash(
            '/nodes',
            'err',
            `No restore point could be taken, so nothing was deployed: ${err.message}. ${err.hint}`,
          );
        }
      }
      if (action.startsWith('power:'))
        return report(
          `Power ${action.slice(6)}`,
          await bulkPower(deps, targets, action.slice(6) as PowerAction, actor),
        );
      const done: string[] = [];
      const failed: string[] = [];
      // Bulk tagging (issue 16): one tag added to or removed from every selected node.
      const tag = action.startsWith('tag:') ? checkTag(formField(req, 'tag', 40).trim()) : '';
      for (const node of targets) {
        try {
          if (action === 'tag:add' || action === 'tag:remove')
            nodes.tag(node, action === 'tag:add' ? { add: [tag] } : { remove: [tag] }, actor);
          else if (action === 'role')
            update(nodes, node, undefined, formField(req, 'role', 40).trim() || null, actor);
          else if (action.startsWith('to:') && isState(action.slice(3)))
            nodes.transition(node, action.slice(3) as NodeState, 'bulk action', actor);
          else if (action === 'delete') {
            requireConsoleRole(undefinedRes(req), 'admin');
            nodes.delete(node, actor);
          } else throw new CorralError('BODY_INVALID', `Choose an action (got '${action}').`);
          done.push(node.name);
        } catch (err) {
          if (!isCorralError(err) || err.code === 'FORBIDDEN' || err.code === 'BODY_INVALID') throw err;
          failed.push(`${node.name} (${err.message})`);
        }
      }
      return report('', { done, failed });
    },
  );
}

/** The response of the request being handled, which express keeps on `req.res`. */
function undefinedRes(req: Request): import('express').Response {
  if (!req.res) throw new CorralError('INTERNAL', 'no response object');
  return req.res;
}
