/** The `dataSnapshots` section of the master config (issue 17): where archives go and the scheduler's pace. */
import { z } from 'zod';

export const DataSnapshotsConfigSchema = z
  .object({
    /** Where snapshot archives live; defaults to DATA_DIR/data-snapshots. */
    dir: z.string().min(1).optional(),
    /** How often schedules are checked (one snapshot per due period per node, then retention). */
    tickSeconds: z.number().int().min(1).max(3600).default(60),
    /** Bound on one snapshot or restore on a node (SSH command), transfer included. */
    timeoutSeconds: z
      .number()
      .int()
      .min(10)
      .max(86_400)
      .default(6 * 3600),
    /** How often a running transfer records its progress (row, log line). */
    progressSeconds: z.number().int().min(1).max(600).default(5),
    /** Seconds a restored database has to answer after its service starts. */
    startWaitSeconds: z.number().int().min(1).max(3600).default(120),
  })
  .strict();

export type DataSnapshotsConfig = z.infer<typeof DataSnapshotsConfigSchema>;

export const DATA_SNAPSHOTS_CONFIG_DEFAULTS: DataSnapshotsConfig = DataSnapshotsConfigSchema.parse({});
