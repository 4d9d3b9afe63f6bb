/**
 * The backup's lag as the monitor's "backup lagging" alert wants it, from either side of the pair. On the
 * primary it is the age of the oldest change the backup has not acknowledged, so a backup that is gone
 * while writes go on lags too; on the backup it is how long it has been behind what the primary last
 * announced. Both consoles then show the same alert.
 */
import type { HaStatus } from './controller.js';

export function backupLagSeconds(status: Pick<HaStatus, 'role' | 'backup' | 'follower'>): number | undefined {
  return status.role === 'primary' ? status.backup?.lagSeconds : status.follower?.lagSeconds;
}
