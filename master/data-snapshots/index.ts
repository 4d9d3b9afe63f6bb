/**
 * Data snapshots of nodes (issue 17), in the feature shape of ARCHITECTURE.md: one entry that takes only
 * what it needs and returns its API routes (mounted under /api/v1 after auth), its console pages and
 * close(). master.ts mounts `api` with one line and hands `pages` to the console with one line.
 */
import { join } from 'node:path';
import type { Router } from 'express';
import type { FrozenConfig } from '../config.js';
import { masterKeyPath } from '../deploy/ssh.js';
import { HostKeyPins, recordHostKeyRefusal } from '../remote/host-keys.js';
import { SecretBox } from '../remote/secrets.js';
import type { Repos } from '../store/repos.js';
import { DataSetStore } from '../store/data-sets.js';
import type { Logger } from '../util/logger.js';
import type { ConsoleContext } from '../../web-ui/page.js';
import { createDataSnapshotApi } from './api.js';
import { createDataSnapshotPages } from './pages.js';
import { DataSnapshots } from './service.js';

export interface DataSnapshotsFeature {
  service: DataSnapshots;
  api: Router;
  /** Console pages; they render through the console's context (layout, session, CSRF). */
  pages: (ctx: ConsoleContext) => Router;
  close(): Promise<void>;
}

export function dataSnapshotDir(config: FrozenConfig): string {
  return config.dataSnapshots.dir ?? join(config.dataDir, 'data-snapshots');
}

export function startDataSnapshots(deps: {
  config: FrozenConfig;
  repos: Pick<Repos, 'store' | 'nodes' | 'events'>;
  logger: Logger;
  /** Run the scheduler (off in tests that drive tick() themselves). */
  schedule?: boolean;
}): DataSnapshotsFeature {
  const { config, repos, logger } = deps;
  const exec = config.remote.exec;
  let box: SecretBox | undefined;
  const service = new DataSnapshots({
    store: new DataSetStore(repos.store),
    repos,
    config: config.dataSnapshots,
    dir: dataSnapshotDir(config),
    // Opened on first use, as power control does: a master without sealed secrets needs no key file.
    secrets: () => (box ??= SecretBox.forDataDir(config.dataDir)),
    ssh: {
      user: exec.user,
      port: exec.port,
      privateKeyPath: masterKeyPath(config.dataDir),
      connectTimeoutMs: exec.connectTimeoutSeconds * 1000,
      hostKeys: HostKeyPins.forConfig(config),
      onHostKeyRefused: (node, reason) => recordHostKeyRefusal(repos, node, reason),
    },
    logger: logger.child({ module: 'data-snapshots' }),
  });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  if (deps.schedule !== false) {
    timer = setInterval(() => {
      running ??= service.tick().finally(() => (running = undefined));
    }, config.dataSnapshots.tickSeconds * 1000);
    timer.unref();
  }
  return {
    service,
    api: createDataSnapshotApi(service),
    pages: (ctx) => createDataSnapshotPages(ctx, service),
    close: async () => {
      if (timer) clearInterval(timer);
      await running;
    },
  };
}
