/** The `apps` section of the master config (issue 21): which nodes run the engine, and the reconcile pace. */
import { z } from 'zod';

export const AppsConfigSchema = z
  .object({
    /** Off by default: a master without engine nodes runs no reconcile timer and no SSH sessions. */
    enabled: z.boolean().default(false),
    engine: z
      .object({
        /** Engine nodes carry this role (when set) ... */
        role: z.string().min(1).max(32).optional(),
        /** ... or this tag (the default when no role is given). */
        tag: z.string().min(1).max(32).default('engine'),
        /** The docker CLI on the node (its PATH decides when a bare name is given). */
        dockerBin: z.string().min(1).default('docker'),
        /** Managers wanted: Raft tolerates the loss of (n-1)/2 of them, so 3 tolerates one. */
        managers: z.number().int().min(1).max(7).default(3),
        /** `docker swarm update --dispatcher-heartbeat`: a lost node is noticed after a few of these. */
        heartbeatSeconds: z.number().int().min(1).max(60).default(5),
      })
      .strict()
      .default({ tag: 'engine', dockerBin: 'docker', managers: 3, heartbeatSeconds: 5 }),
    /** Reconcile (swarm membership, services, HAProxy members, observations) at least this often. */
    reconcileSeconds: z.number().int().min(1).max(3600).default(10),
    /** Bound on one docker command over SSH. */
    commandTimeoutSeconds: z.number().int().min(1).max(600).default(60),
    /** Base image for apps given only a command; by default the master's registry (s4-registry). */
    baseImage: z.string().min(1).optional(),
    /** Task history kept per slot by the engine (`docker swarm update --task-history-limit`): bounds "restarts". */
    taskHistory: z.number().int().min(1).max(100).default(20),
  })
  .strict();

export type AppsConfig = z.infer<typeof AppsConfigSchema>;
export const APPS_CONFIG_DEFAULTS: AppsConfig = AppsConfigSchema.parse({});
