/**
 * The `boot` and `nodeImage` sections of the master config (docs/node-images.md). Defined here,
 * composed into ConfigSchema by one line in master/config.ts.
 */
import { z } from 'zod';
import type { DeepReadonly } from '../util/deep-readonly.js';

export const BootConfigSchema = z
  .object({
    /** Where Debian's ipxe package puts its binaries. */
    ipxeDir: z.string().default('/usr/lib/ipxe'),
    biosFile: z.string().default('undionly.kpxe'),
    uefiFile: z.string().default('ipxe.efi'),
    /** Extra kernel arguments for every node boot; the consoles (tty0, ttyS0) are always set. */
    kernelArgs: z.string().max(1024).default(''),
  })
  .strict()
  .default({
    ipxeDir: '/usr/lib/ipxe',
    biosFile: 'undionly.kpxe',
    uefiFile: 'ipxe.efi',
    kernelArgs: '',
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
