/**
 * The `lb` section of the master config (docs/load-balancing.md). Defined here,
 * composed into ConfigSchema by one line in master/config.ts.
 */
import { z } from 'zod';
import type { DeepReadonly } from '../util/deep-readonly.js';
import { ipv4 } from '../util/net-schema.js';

export const LbConfigSchema = z
  .object({
    /** Run HAProxy for declared services (it starts with the first service). */
    enabled: z.boolean().default(true),
    haproxyBin: z.string().min(1).default('haproxy'),
    /** Address the services' front ends bind; defaults to the HA VIP when HA is on, else `address`. */
    bind: ipv4.optional(),
    /** How often HAProxy's server states are read (events, admin-state repair, membership). */
    pollMs: z.number().int().min(100).max(60_000).default(1000),
  })
  .strict()
  .default({ enabled: true, haproxyBin: 'haproxy', pollMs: 1000 });
export type LbConfig = DeepReadonly<z.infer<typeof LbConfigSchema>>;
