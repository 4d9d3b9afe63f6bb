/**
 * The shared-root subsystem of a running master: the domain (SharedRoots), and the NFS server kept in
 * step with it. Changes may come from this process (API, console) or from the CLI writing the database
 * directly, so a reconcile loop compares the config the exports need with the one ganesha runs and
 * applies the difference; a config ganesha rejected is not retried until the wanted config changes.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { renderGaneshaConfig } from './ganesha-config.js';
import { NfsServer, type NfsServerStatus } from './nfs-server.js';
import { SharedRoots } from './service.js';
import { exportable } from './tree.js';

export { SharedRoots } from './service.js';

export interface SharedRootSubsystem {
  roots: SharedRoots;
  nfs: NfsServer;
  /** Brings the NFS server in line with the wanted exports now (also runs on a timer). */
  reconcile(): Promise<void>;
  status(): NfsServerStatus & { exports: number; rejected: string | null };
  close(): Promise<void>;
}

export function startSharedRoot(deps: {
  repos: Repos;
  config: FrozenConfig;
  logger: Logger;
}): SharedRootSubsystem {
  const log = deps.logger.child({ module: 'sharedroot' });
  const roots = new SharedRoots(deps.repos, deps.config);
  const nfsDir = join(roots.dir, 'nfs');
  const nfs = new NfsServer({
    dir: nfsDir,
    bin: deps.config.sharedRoot.ganeshaBin,
    logger: log,
    startTimeoutMs: deps.config.sharedRoot.startTimeoutSeconds * 1000,
  });
  let rejected: { text: string; error: string } | undefined;
  let exportCount = 0;
  let busy: Promise<void> | undefined;
  let closed = false;

  const reconcileOnce = async (): Promise<void> => {
    if (closed || !deps.config.sharedRoot.enabled) return;
    const exports = roots.exports();
    exportCount = exports.length;
    if (exports.length === 0 && !nfs.status().running) return;
    for (const e of exports) if (e.access === 'RW') await mkdir(e.path, { recursive: true, mode: 0o755 });
    await mkdir(join(nfsDir, 'recovery'), { recursive: true });
    const text = renderGaneshaConfig({ port: 2049, recoveryDir: join(nfsDir, 'recovery'), exports });
    if (rejected?.text === text) return;
    if (nfs.status().running && (await nfs.currentConfig()) === text) return;
    try {
      // Before ganesha starts: it finds each export's file system in the mount table as it loads them.
      for (const e of exports) if (e.access === 'RO') await exportable(e.path);
      await nfs.apply(text);
      rejected = undefined;
      log.info({ exports: exports.map((e) => e.pseudo) }, 'NFS exports applied');
    } catch (err) {
      rejected = { text, error: (err as Error).message };
      log.error({ err: rejected.error }, 'NFS exports not applied');
    }
  };
  const reconcile = (): Promise<void> => {
    busy ??= reconcileOnce().finally(() => (busy = undefined));
    return busy;
  };
  const timer = setInterval(() => void reconcile(), deps.config.sharedRoot.reconcileSeconds * 1000);
  timer.unref();
  void reconcile();

  return {
    roots,
    nfs,
    reconcile,
    status: () => ({ ...nfs.status(), exports: exportCount, rejected: rejected?.error ?? null }),
    close: async () => {
      closed = true;
      clearInterval(timer);
      await busy?.catch(() => undefined);
      await nfs.close();
    },
  };
}
