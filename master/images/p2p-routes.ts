/**
 * The node-facing routes of peer-to-peer image downloads (rows torrent and deployWave of NODE_ROUTES in
 * boot/surface.ts, which mounts them):
 *   GET /boot/torrents/<sha256>     the image's .torrent (public by sha256, as the image itself is)
 *   GET /boot/installer/p2p-tools.img   aria2c and its libraries, unpacked by a p2p installer into its root
 *   GET /boot/deploy/<mac>/wave     how many other installers of this node's wave still fetch the image:
 *                                   a plain number; the installer seeds on while it is above 0
 */
import type { RequestHandler } from 'express';
import { normaliseMac } from '../nodes/inventory.js';
import { requireNodeCredential } from '../nodes/credentials.js';
import { sendFile } from '../boot/send-file.js';
import type { Repos } from '../store/repos.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { ImagesP2p } from './p2p.js';

export function p2pNodeHandlers(deps: { p2p: ImagesP2p; repos: Repos; logger: Logger }): {
  torrent: RequestHandler[];
  wave: RequestHandler[];
  tools: RequestHandler[];
} {
  const log = deps.logger.child({ module: 'p2p' });
  const torrent: RequestHandler = (req, res, next) => {
    deps.p2p
      .torrentPath(String(req.params['sha256'] ?? ''))
      .then((file) => {
        res.type('application/x-bittorrent');
        sendFile(res, file, log);
      })
      .catch(next);
  };
  const wave: RequestHandler = (req, res) => {
    const raw = req.params['mac'];
    const mac = normaliseMac(typeof raw === 'string' ? raw : '');
    if (!mac) throw new CorralError('MAC_INVALID', `'${String(raw)}' is not a MAC address`);
    requireNodeCredential(deps.repos, mac, req.headers);
    res.type('text/plain').setHeader('Cache-Control', 'no-store');
    res.send(`${deps.p2p.waveLeft(mac)}\n`);
  };
  const tools: RequestHandler = (_req, res, next) => {
    deps.p2p
      .p2pTools()
      .then((file) => sendFile(res, file, log))
      .catch(next);
  };
  return { torrent: [torrent], wave: [wave], tools: [tools] };
}
