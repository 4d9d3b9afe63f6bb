import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRepos, type Repos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';
import { buildConfig, type ConfigFlags, type FrozenConfig } from '../../master/config.js';

/** A temporary store; `cleanup()` closes it and removes the directory. */
export function tempRepos(now?: () => Date): {
  repos: Repos;
  dir: string;
  path: string;
  cleanup: () => void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'corral-test-'));
  const path = join(dir, 'corral.db');
  const repos = openRepos({ path, logger: silentLogger(), ...(now ? { now } : {}) });
  return {
    repos,
    dir,
    path,
    cleanup: () => {
      repos.store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function testConfig(file: Record<string, unknown> = {}, flags: ConfigFlags = {}): FrozenConfig {
  return buildConfig({ dataDir: '/tmp/corral-unused', address: '10.99.0.1', ...file }, flags);
}
