/**
 * The disk-failure reporter (master/boot/local-fallback-report.ts) against a real temporary store with one
 * deployed node, its boot timeline steps recorded in memory and a clock the test moves.
 */
import { diskFailureReports } from '../../master/boot/local-fallback-report.js';
import type { BootActivitySink, BootStep } from '../../master/boot/activity.js';
import { transition } from '../../master/nodes/lifecycle.js';
import { silentLogger } from '../../master/util/logger.js';
import { tempRepos } from './repos.js';

export interface DiskFailureHarness {
  t: ReturnType<typeof tempRepos>;
  reports: ReturnType<typeof diskFailureReports>;
  /** The timeline steps recorded, oldest first. */
  steps: BootStep[];
  /** The reporter's clock (ms); a test moves `clock.now`. */
  clock: { now: number };
}

/** A deployed node `mac` (enlisted, deploying, deployed) and its reporter; `t.cleanup()` when done. */
export function deployedNodeReporter(mac: string, t0: number): DiskFailureHarness {
  const t = tempRepos();
  t.repos.store.write((j) => t.repos.nodes.insertIn(j, { mac, name: 'node-1', seqNo: 1, state: 'ready' }));
  transition(t.repos, mac, { to: 'deploying' });
  transition(t.repos, mac, { to: 'deployed' });
  const steps: BootStep[] = [];
  const activity: BootActivitySink = {
    record: (_mac, s) => steps.push(s),
    recordByIp: () => undefined,
    watchFetch: () => undefined,
  };
  const clock = { now: t0 };
  const reports = diskFailureReports({
    repos: t.repos,
    logger: silentLogger(),
    activity,
    now: () => clock.now,
  });
  return { t, reports, steps, clock };
}
