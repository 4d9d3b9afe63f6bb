/**
 * Peer-to-peer image downloads as a feature (issue 19): opentracker under the daemon supervisor (started
 * by the first wave), and the
 * ImagesP2p service the node surface asks for torrents, the wave's count and the plan's variables. A
 * tracker that cannot start does not stop the master: installers then get plain HTTP (useP2p), and the
 * supervisor keeps trying; health says so.
 */
import { join } from 'node:path';
import type { FrozenConfig } from '../config.js';
import { publicUrl } from '../config.js';
import type { Started } from '../feature.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { ImagesP2p, p2pUrls } from './p2p.js';
import { Tracker } from './p2p-tracker.js';

export interface ImagesP2pFeatureDeps {
  config: Pick<FrozenConfig, 'p2p' | 'dataDir' | 'address' | 'http'>;
  repos: Pick<Repos, 'images' | 'deployments'>;
  logger: Logger;
}

export async function startImagesP2p(deps: ImagesP2pFeatureDeps): Promise<Started<{ p2p: ImagesP2p }>> {
  const { config, logger } = deps;
  const tracker = new Tracker({
    settings: {
      bind: config.address,
      port: config.p2p.trackerPort,
      dir: join(config.dataDir, 'p2p', 'tracker'),
    },
    bin: config.p2p.trackerBin,
    logger,
  });
  // Started by the first wave (ImagesP2p.planEnv), not here: a master that never deploys a wave runs no
  // tracker (and a master killed with SIGKILL before one leaves none behind; docs/images-p2p.md).
  let started = false;
  const p2p = new ImagesP2p({
    config: config.p2p,
    dataDir: config.dataDir,
    urls: p2pUrls(publicUrl(config), config.p2p.trackerPort),
    images: deps.repos.images,
    deployments: deps.repos.deployments,
    // Down only once it was asked for and could not start (the supervisor keeps trying meanwhile).
    trackerRunning: () => {
      if (!started) {
        started = true;
        void tracker.run();
        return true;
      }
      return tracker.running;
    },
    allowOnTracker: (hashes) => tracker.allow(hashes),
    logger,
  });
  return {
    p2p,
    health: () => ({
      p2p: { mode: config.p2p.mode, tracker: tracker.running ? 'running' : started ? 'down' : 'idle' },
    }),
    close: () => tracker.stop(),
  };
}
