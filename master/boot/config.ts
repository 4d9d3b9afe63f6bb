import { z } from 'zod';

/**
 * What a node does when its boot from the master fails (issue 18, "never strand a node"): iPXE retries
 * the boot (kernel, initrd or boot failed) with a doubling wait, `retries` times, then asks the master
 * once more and gets the operator's fallback — which the master records in the node's boot timeline.
 */
export const BOOT_FAILURE_SHAPE = {
  /**
   * After the last retry. `local-disk`: iPXE exits with status 1, so the firmware goes on to its next
   * boot entry (exit 0 made UEFI stop at its boot menu: Tinkerbell #984). `shell`: the iPXE shell, for
   * someone at the console. `retry-forever`: never give up (the wait stays at its cap).
   */
  onFailure: z.enum(['local-disk', 'retry-forever', 'shell']).default('local-disk'),
  /** Boot attempts after the first one before the fallback. */
  retries: z.number().int().min(0).max(20).default(5),
  /** The first wait before a retry; it doubles with each attempt, up to MAX_RETRY_WAIT_SECONDS. */
  retrySeconds: z.number().int().min(1).max(300).default(10),
};

export const BOOT_FAILURE_DEFAULTS = {
  onFailure: 'local-disk' as const,
  retries: 5,
  retrySeconds: 10,
};

export type BootFailurePolicy = {
  onFailure: 'local-disk' | 'retry-forever' | 'shell';
  retries: number;
  retrySeconds: number;
};
