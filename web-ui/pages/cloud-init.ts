import type { Router } from 'express';
import type { CloudInit } from '../../master/cloudinit/service.js';
import { findNode } from '../../master/nodes/service.js';
import { CorralError } from '../../master/util/errors.js';
import { describeLayer } from '../../master/cloudinit/user-data.js';
import { requireConsoleRole, sendPage, type ConsoleContext } from '../page.js';

/**
 * The cloud-init page (issue 16): the stored layers, and a node's datasource files as its cloud-init
 * reads them (`?node=NAME`). Operators and admins only: user-data may carry secrets. Layers are edited
 * with `corral cloud-init set` or the API.
 */
export function mountCloudInit(router: Router, ctx: ConsoleContext, cloudInit: CloudInit): void {
  router.get('/cloud-init', (req, res) => {
    requireConsoleRole(res, 'operator');
    const nodeId = typeof req.query['node'] === 'string' ? req.query['node'].trim() : '';
    let preview: ReturnType<CloudInit['render']> | undefined;
    let nodeName = '';
    let err: string | undefined;
    if (nodeId) {
      try {
        const node = findNode(ctx.repos.nodes, nodeId);
        nodeName = node.name;
        preview = cloudInit.render(node);
      } catch (e) {
        if (!(e instanceof CorralError)) throw e;
        err = e.message;
      }
    }
    sendPage(ctx, res, 'cloud-init', {
      title: 'cloud-init',
      nav: 'cloud-init',
      layers: cloudInit.list().map((l) => ({ ...l, label: describeLayer(l) })),
      nodes: ctx.repos.nodes.list().map((n) => ({ name: n.name, selected: n.name === nodeName })),
      nodeName,
      preview,
      err,
    });
  });
}
