/**
 * The `deploy` section of the master config (README "Deployment"): disk layouts and deploy policy.
 * Defined here, mounted into ConfigSchema by one line in config.ts.
 */
import { z } from 'zod';

export const LayoutSchema = z
  .object({
    /** EFI system partition on UEFI nodes (BIOS nodes get a 1 MiB BIOS boot partition instead). */
    espMb: z.number().int().min(64).max(4096).default(256),
    /** 0 = no swap partition. */
    swapMb: z.number().int().min(0).max(1_048_576).default(0),
    /** Root partition size; null = the rest of the disk. */
    rootMb: z.number().int().min(512).nullable().default(null),
  })
  .strict();
export type Layout = z.infer<typeof LayoutSchema>;

export const DEFAULT_LAYOUT: Layout = { espMb: 256, swapMb: 0, rootMb: null };

export const DeployConfigSchema = z
  .object({
    /** Name of the layout used when a deploy names none; `default` is built in (and may be overridden). */
    defaultLayout: z.string().min(1).default('default'),
    layouts: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/), LayoutSchema).default({}),
    /** Extra public keys for root on deployed nodes; the master's own key (DATA_DIR/ssh) is always added. */
    sshAuthorizedKeys: z.array(z.string().regex(/^(ssh|ecdsa)-\S+ \S+/)).default([]),
    /** A deployment with no word from the node for this long fails (network cut, hung installer). */
    stallSeconds: z.number().int().min(30).max(86_400).default(900),
    /** Kernel arguments of the installed system (grub.cfg). */
    kernelArgs: z.string().max(1024).default('console=tty0 console=ttyS0,115200n8'),
  })
  .strict();
export type DeployConfig = z.infer<typeof DeployConfigSchema>;

export const DEPLOY_CONFIG_DEFAULTS: DeployConfig = {
  defaultLayout: 'default',
  layouts: {},
  sshAuthorizedKeys: [],
  stallSeconds: 900,
  kernelArgs: 'console=tty0 console=ttyS0,115200n8',
};
