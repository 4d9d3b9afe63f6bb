/**
 * High availability as a feature (issue #8): the role controller, the change feed and file sync from
 * the primary, keepalived for the VIP (started once the HTTP port is known), the write gate, the HA
 * console page. Role changes are passed on to the features that only the VIP holder runs.
 */
import express from 'express';
import type { Authenticator } from '../auth/users.js';
import type { FrozenConfig } from '../config.js';
import type { Started } from '../feature.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { mountHa } from '../../web-ui/pages/ha.js';
import { backupLagSeconds } from './backup-lag.js';
import type { HaRole } from './controller.js';
import { createHa, type Ha } from './index.js';

export interface HaFeatureDeps {
  config: FrozenConfig;
  repos: Repos;
  logger: Logger;
  authenticator: Authenticator;
  /** Called on promotion and demotion (master.ts tells the role-gated features). */
  onRole: (role: HaRole) => Promise<void>;
}

export interface HaExposed {
  ha: Ha;
  /** How far the backup is behind (the monitor's "backup lagging" alert). */
  backupLagSeconds(): number | undefined;
}

export function startHa(deps: HaFeatureDeps): Started<HaExposed> {
  const ha = createHa(deps);
  return {
    ha,
    backupLagSeconds: () => backupLagSeconds(ha.controller.status()),
    pages: (ctx) => {
      const router = express.Router();
      mountHa(router, ctx, ha.controller);
      return router;
    },
    health: () => ({ ha: { role: ha.controller.role, epoch: deps.repos.store.epoch() } }),
    serve: async (http) => ha.start(http.port),
    close: () => ha.close(),
  };
}
