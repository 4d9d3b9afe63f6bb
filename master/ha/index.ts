/**
 * High availability of the master (issue #8): wiring of the role controller, the /api/v1/ha router and
 * write gate, keepalived supervision and the backup's file sync. master.ts calls `createHa` before the
 * HTTP server starts (the API needs the router and gate) and `start` once it listens (the track script
 * needs the port).
 */
import type { RequestHandler, Router } from 'express';
import { localHttpHost } from '../http-bind.js';
import { join } from 'node:path';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Authenticator } from '../auth/users.js';
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { HaController, type HaRole } from './controller.js';
import { syncFiles, syncLayout, type FileEntry } from './files.js';
import {
  keepalivedFiles,
  superviseKeepalived,
  writeKeepalivedConfig,
  type KeepalivedSupervisor,
} from './keepalived.js';
import { createHaRouter, haWriteGate } from './router.js';
import { lazyPeer, peerPin } from './peer-http.js';

export { HaController, type HaRole, type HaStatus } from './controller.js';
export { startWitness } from './witness.js';
export { clonePrimary } from './clone.js';

export interface Ha {
  controller: HaController;
  router: Router;
  gate: RequestHandler;
  start(httpPort: number): void;
  close(): Promise<void>;
}

export interface HaDeps {
  config: FrozenConfig;
  repos: Repos;
  logger: Logger;
  authenticator: Authenticator;
  onRole: (role: HaRole) => Promise<void>;
}

export function createHa(deps: HaDeps): Ha {
  const { config, logger } = deps;
  const ha = config.ha;
  const log = logger.child({ module: 'ha' });
  const controller = new HaController({ config, repos: deps.repos, logger, onRole: deps.onRole });
  let keepalived: KeepalivedSupervisor | undefined;
  let fileTimer: NodeJS.Timeout | undefined;
  let syncing = false;

  const filePeer = lazyPeer((ha.peerUrl ?? '').replace(/\/$/, ''), () => peerPin(config));
  const syncFromPrimary = async (): Promise<void> => {
    if (syncing || controller.role === 'primary' || !ha.peerUrl) return;
    syncing = true;
    const headers = { authorization: `Bearer ${ha.token ?? ''}` };
    try {
      const peer = filePeer();
      const res = await peer.fetch('/api/v1/ha/files', { headers, signal: AbortSignal.timeout(30_000) });
      if (!res.ok) return;
      const { files } = (await res.json()) as { files: FileEntry[] };
      const r = await syncFiles(syncLayout(config), files, async (p) => {
        const f = await peer.fetch(`/api/v1/ha/file?path=${encodeURIComponent(p)}`, {
          headers,
          signal: AbortSignal.timeout(600_000),
        });
        if (!f.ok || !f.body) throw new Error(`file ${p}: HTTP ${f.status}`);
        return f.body as WebReadableStream<Uint8Array>;
      });
      if (r.fetched || r.removed) log.info(r, 'boot files, images and SSH keys synced from the primary');
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'file sync failed; retrying later');
    } finally {
      syncing = false;
    }
  };

  return {
    controller,
    router: createHaRouter({
      controller,
      repos: deps.repos,
      config,
      logger,
      authenticator: deps.authenticator,
    }),
    gate: haWriteGate(controller, deps.repos.store),
    start(httpPort: number) {
      controller.start();
      fileTimer = setInterval(() => void syncFromPrimary(), ha.fileSyncSeconds * 1000);
      fileTimer.unref();
      void syncFromPrimary();
      if (ha.vip && ha.keepalived) {
        const files = keepalivedFiles(join(config.dataDir, 'ha'));
        const host = localHttpHost(config.http.bind);
        const iface = ha.interface ?? config.interface;
        const peer = ha.unicastPeer ?? (ha.peerUrl ? new URL(ha.peerUrl).hostname : undefined);
        if (!iface || !peer)
          throw new Error('ha.vip needs ha.interface (or interface) and ha.unicastPeer (or peerUrl)');
        writeKeepalivedConfig(
          {
            nodeId: controller.nodeId,
            interface: iface,
            address: config.address,
            unicastPeer: peer,
            vip: ha.vip,
            virtualRouterId: ha.virtualRouterId,
            priority: ha.priority,
            advertInt: ha.advertInt,
            trackUrl: `http://${host}:${httpPort}/api/v1/ha/track`,
          },
          files,
          ha.keepalivedBin,
        );
        keepalived = superviseKeepalived(files, ha.keepalivedBin, logger, (s) => controller.onVrrp(s));
      }
      log.info(
        {
          nodeId: controller.nodeId,
          peer: ha.peerUrl,
          vip: ha.vip ?? null,
          witness: ha.witnessUrl ?? null,
          mode: ha.mode,
        },
        'high availability started (backup until promoted)',
      );
    },
    async close() {
      clearInterval(fileTimer);
      await keepalived?.close();
      await controller.close();
    },
  };
}
