/**
 * GET /api/v1/boot-activity            tracked MACs, newest first, each with its last and last failing step
 * GET /api/v1/boot-activity?mac=M      one MAC's timeline, oldest step first
 *   &unenlisted=1                       (list only) MACs with no node record
 * Viewer role (the API's default after Basic auth): it reveals what the node pages already show.
 */
import express, { type Router } from 'express';
import type { Repos } from '../store/repos.js';
import { CorralError } from '../util/errors.js';
import { normaliseMac } from '../nodes/inventory.js';

export function createBootActivityRouter(repos: Pick<Repos, 'bootActivity' | 'nodes'>): Router {
  const router = express.Router();
  router.get('/boot-activity', (req, res) => {
    const store = repos.bootActivity;
    const raw = req.query['mac'];
    if (raw !== undefined) {
      const mac = typeof raw === 'string' ? normaliseMac(raw) : null;
      if (!mac) throw new CorralError('MAC_INVALID', `'${String(raw)}' is not a MAC address`);
      const node = repos.nodes.get(mac);
      res.json({
        mac,
        node: node ? { name: node.name, state: node.state } : null,
        entries: store.forMac(mac),
      });
      return;
    }
    res.json({
      bounds: { perMac: store.bounds.perMac, maxMacs: store.bounds.maxMacs },
      machines: store.machines({ unenlisted: req.query['unenlisted'] === '1' }),
    });
  });
  return router;
}
