/**
 * Boot-time HTTP for diskless nodes (no login, like all of /boot: firmware and the initramfs cannot log
 * in). The handlers only: the one node-facing router (boot/surface.ts) mounts them and lists each route;
 * the diskless boot script is shared root's BootProvider (boot-provider.ts).
 *   GET  /sharedroot/:mac/identity.tar   the node's identity (hostname, machine-id, host keys, network)
 *   POST /sharedroot/:mac/booted         the initramfs reports the root id it mounted
 * The identity holds the node's private host keys, so it is served only with the node's credential
 * (Authorization: Bearer, issued at enlistment: master/nodes/credentials.ts) AND to the node's own
 * recorded address, which no request can move (issue 14); not at all while none is recorded. The boot
 * report needs the credential too. See docs/security.md.
 */
import express, { type Request, type RequestHandler } from 'express';
import type { Repos } from '../store/repos.js';
import type { NodeRecord } from '../store/nodes.js';
import type { Logger } from '../util/logger.js';
import { normaliseMac } from '../nodes/inventory.js';
import { CorralError } from '../util/errors.js';
import { requireNodeCredential } from '../nodes/credentials.js';
import { clientIp } from '../util/client-ip.js';
import type { SharedRoots } from './service.js';

export interface SharedRootBootDeps {
  repos: Repos;
  logger: Logger;
  roots: SharedRoots;
}

/**
 * Whether `sourceIp` may have the identity (private host keys) of `node`: only from the node's own
 * recorded address, learnt at enlistment or from its DHCP lease. A node without a recorded address is
 * refused too: anyone who knows its MAC could otherwise take its keys.
 */
export function identityRefusal(node: Pick<NodeRecord, 'name' | 'ip'>, sourceIp: string): CorralError | null {
  if (!node.ip) {
    return new CorralError(
      'SHAREDROOT_IDENTITY_REFUSED',
      `${node.name} has no recorded address yet, so its identity is not served to ${sourceIp || 'an unknown address'}`,
    );
  }
  if (node.ip !== sourceIp) {
    return new CorralError(
      'SHAREDROOT_IDENTITY_REFUSED',
      `the identity of ${node.name} is served only to ${node.ip}, not to ${sourceIp || 'an unknown address'}`,
    );
  }
  return null;
}

export interface SharedRootNodeHandlers {
  identity: RequestHandler[];
  booted: RequestHandler[];
}

export function sharedRootNodeHandlers(deps: SharedRootBootDeps): SharedRootNodeHandlers {
  const log = deps.logger.child({ module: 'sharedroot-boot' });

  const nodeFor = (req: Request): NonNullable<ReturnType<Repos['nodes']['get']>> => {
    const mac = normaliseMac(String(req.params['mac'] ?? ''));
    const node = mac ? deps.repos.nodes.get(mac) : undefined;
    if (!node || !deps.repos.sharedRoots.assignment(node.mac)) {
      throw new CorralError('NODE_NOT_FOUND', `no diskless node with MAC ${req.params['mac']}`);
    }
    return node;
  };

  const identity: RequestHandler = (req, res, next) => {
    try {
      const node = nodeFor(req);
      const ip = clientIp(req) ?? '';
      try {
        requireNodeCredential(deps.repos, node.mac, req.headers);
      } catch (err) {
        log.warn(
          { mac: node.mac, ip, code: (err as CorralError).code },
          'identity refused: no valid credential',
        );
        throw err;
      }
      const refusal = identityRefusal(node, ip);
      if (refusal) {
        log.warn({ mac: node.mac, ip, expected: node.ip }, 'identity refused: not from the node');
        throw refusal;
      }
      deps.roots.identity(node).then(
        (tar) => {
          res.type('application/x-tar').setHeader('Cache-Control', 'no-store');
          res.send(tar);
        },
        (err: unknown) => next(err),
      );
    } catch (err) {
      next(err);
    }
  };

  const booted: RequestHandler = (req, res, next) => {
    try {
      const node = nodeFor(req);
      requireNodeCredential(deps.repos, node.mac, req.headers);
      const body = (req.body ?? {}) as { rootId?: unknown; address?: unknown };
      if (typeof body.rootId !== 'string' || body.rootId.length > 200) {
        throw new CorralError('BODY_INVALID', 'rootId must be a string');
      }
      const address = typeof body.address === 'string' ? body.address.slice(0, 64) : null;
      const r = deps.roots.booted(node, body.rootId, address);
      log.info({ mac: node.mac, rootId: body.rootId, version: r.version }, 'diskless node booted');
      res.json({ ok: true, version: r.version });
    } catch (err) {
      next(err);
    }
  };
  return { identity: [identity], booted: [express.json({ limit: '4kb' }), booted] };
}
