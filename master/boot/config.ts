/**
 * The `boot` and `nodeImage` sections of the master config (docs/node-images.md). Defined here,
 * composed into ConfigSchema by one line in master/config.ts.
 */
import { z } from 'zod';
import type { DeepReadonly } from '../util/deep-readonly.js';

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

/**
 * Which chain a UEFI x86-64 PXE client (DHCP option 93 = 7 or 9) is given (issue 18, docs/secure-boot.md).
 * DHCP cannot tell whether the firmware enforces Secure Boot, so the default is the chain every x86-64
 * UEFI machine with Microsoft's keys accepts, as MAAS does: Debian's shim-signed (signed by Microsoft's
 * UEFI CA) → grub-efi-amd64-signed's network GRUB (signed by Debian, checked by shim) → Debian's signed
 * kernel (checked by GRUB through shim's protocol). `ipxe` gives such clients iPXE instead (its HTTP
 * downloads and scripts), which only boots with Secure Boot off. Per node and per enrolment rule too.
 */
export const UEFI_CHAINS = ['secure-boot', 'ipxe'] as const;
export type UefiChain = (typeof UEFI_CHAINS)[number];

export const SECURE_BOOT_SHAPE = {
  uefiChain: z.enum(UEFI_CHAINS).default('secure-boot'),
  /** Debian's shim-signed, served over TFTP as shimx64.efi (the DHCP boot file of the signed chain). */
  shimFile: z.string().default('/usr/lib/shim/shimx64.efi.signed'),
  /**
   * grub-efi-amd64-signed's network GRUB, served as grubx64.efi beside shim: shim loads that name from
   * the directory it came from. Its built-in prefix is (tftp,SERVER)/grub: it reads /grub/grub.cfg.
   */
  grubFile: z.string().default('/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed'),
};

export const SECURE_BOOT_DEFAULTS = {
  uefiChain: 'secure-boot' as const,
  shimFile: '/usr/lib/shim/shimx64.efi.signed',
  grubFile: '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed',
};

export const BootConfigSchema = z
  .object({
    /** Where Debian's ipxe package puts its binaries. */
    ipxeDir: z.string().default('/usr/lib/ipxe'),
    biosFile: z.string().default('undionly.kpxe'),
    uefiFile: z.string().default('ipxe.efi'),
    /** Extra kernel arguments for every node boot; the consoles (tty0, ttyS0) are always set. */
    kernelArgs: z.string().max(1024).default(''),
    ...BOOT_FAILURE_SHAPE,
    ...SECURE_BOOT_SHAPE,
  })
  .strict()
  .default({
    ipxeDir: '/usr/lib/ipxe',
    biosFile: 'undionly.kpxe',
    uefiFile: 'ipxe.efi',
    kernelArgs: '',
    ...BOOT_FAILURE_DEFAULTS,
    ...SECURE_BOOT_DEFAULTS,
  });
export type BootConfig = DeepReadonly<z.infer<typeof BootConfigSchema>>;

export const NodeImageConfigSchema = z
  .object({
    /** Cache of downloaded Debian kernel packages, shared between data directories. */
    cacheDir: z.string().default('/var/cache/corral'),
    /** `generic`: Debian's kernel with the drivers of physical servers; `cloud`: virtio VMs only. */
    flavour: z.enum(['cloud', 'generic']).default('generic'),
    /** The master builds (or refreshes) the node environment in the background at start. */
    autoBuild: z.boolean().default(true),
  })
  .strict()
  .default({ cacheDir: '/var/cache/corral', flavour: 'generic', autoBuild: true });
export type NodeImageConfig = DeepReadonly<z.infer<typeof NodeImageConfigSchema>>;
