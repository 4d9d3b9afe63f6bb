/**
 * The master's side of a disk that did not boot (local-fallback.ts): remembers the local answers it gave,
 * and on a report it believes marks the node `failed` (lifecycle, with an event) and records the step in
 * the boot timeline. The surface (surface.ts) then answers the node with the usual decision, which for a
 * failed node is the node environment.
 */
import { transition, type LifecycleRepos } from '../nodes/lifecycle.js';
import type { Logger } from '../util/logger.js';
import type { BootActivitySink } from './activity.js';
import { isReturn, judgeLocalFailure, LocalAnswers, type DiskFailureVia } from './local-fallback.js';

export interface DiskFailureDeps {
  repos: LifecycleRepos;
  logger: Logger;
  activity?: BootActivitySink | undefined;
  now?: () => number;
}

export interface DiskFailureReports {
  /**
   * The disk provider answered `mac` "boot your disk"; `silent`: its boot loader cannot report a failure;
   * `path`: the firmware boot option that asked (activity.ts firmwareBootPath), when known.
   */
  localServed(mac: string, silent?: boolean, path?: string): void;
  /**
   * `mac` asks to network-boot (from firmware boot option `path`, when known): if that is a return soon
   * after a silent local answer (isReturn), it is taken as the disk's failure (`returned`) and true comes
   * back (the node is now `failed`). Otherwise nothing happens.
   */
  returned(mac: string, ip: string, path?: string): boolean;
  /** A sign of the node's running OS (first-boot report, cloud-init fetch, metrics): its disk booted. */
  osSeen(mac: string): void;
  /** A boot loader says the disk did not boot; true when believed (the node is now `failed`). */
  report(mac: string, via: DiskFailureVia, ip: string): boolean;
}

/** The node's boot loader gets this when its report is not believed: on to the next boot device. */
export const REFUSED_SCRIPT = {
  ipxe: '#!ipxe\necho Corral: disk boot failure not taken (no recent local-disk answer); leaving for the next boot device (exit 1)\nexit 1\n',
  grub: 'echo "Corral: disk boot failure not taken (no recent local-disk answer); leaving for the next boot device (exit 1)"\nexit 1\n',
} as const;

export function diskFailureReports(deps: DiskFailureDeps): DiskFailureReports {
  const log = deps.logger.child({ module: 'local-fallback' });
  const now = deps.now ?? Date.now;
  const answers = new LocalAnswers();
  const reports: DiskFailureReports = {
    localServed: (mac, silent = false, path) => answers.served(mac, now(), silent, path),
    returned: (mac, ip, path) =>
      isReturn(answers.peek(mac), now(), path) && reports.report(mac, 'returned', ip),
    osSeen: (mac) => answers.forget(mac),
    report(mac, via, ip) {
      const node = deps.repos.nodes.get(mac);
      const j = judgeLocalFailure(node, answers.take(mac), now(), via);
      deps.activity?.record(mac, {
        kind: 'disk-failed',
        via,
        accepted: j.accept,
        ip,
        ...(j.accept ? {} : { refused: j.why }),
      });
      if (!j.accept || !node) {
        log.warn({ mac, via, ip, why: j.accept ? 'no node' : j.why }, 'disk boot failure report refused');
        return false;
      }
      try {
        transition(deps.repos, mac, { to: 'failed', reason: j.reason, actor: 'boot', data: { via, ip } });
      } catch (err) {
        // Lost a race with an operator's own transition (say a redeploy): theirs stands.
        log.warn({ err, mac }, 'disk boot failure not recorded on the node');
        return false;
      }
      log.warn(
        { mac, node: node.name, via, ip },
        'disk boot failed: node marked failed, node environment served',
      );
      return true;
    },
  };
  return reports;
}
