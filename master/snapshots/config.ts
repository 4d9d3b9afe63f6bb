/**
 * The `snapshots` section of the master config (docs/snapshots.md). Defined here,
 * composed into ConfigSchema by one line in master/config.ts.
 */
import { z } from 'zod';
import type { DeepReadonly } from '../util/deep-readonly.js';
import { RetentionPolicySchema, ScheduleSchema } from './retention.js';

export const SnapshotsConfigSchema = z
  .object({
    /** Where restore points live; defaults to DATA_DIR/snapshots. */
    dir: z.string().min(1).optional(),
    /** Scheduled restore points (one per due period, checked every tickSeconds). */
    schedule: ScheduleSchema.default({ hourly: false, daily: false, weekly: false }),
    /** Retention of scheduled, automatic and safety restore points (manual ones are kept). */
    retention: RetentionPolicySchema.default({
      keepLast: 5,
      keepHourly: 24,
      keepDaily: 7,
      keepWeekly: 4,
    }),
    /** Take an automatic restore point before risky operations (image delete, mass deploy). */
    beforeRisky: z.boolean().default(true),
    tickSeconds: z.number().int().min(1).max(3600).default(60),
  })
  .strict()
  .default({
    schedule: { hourly: false, daily: false, weekly: false },
    retention: { keepLast: 5, keepHourly: 24, keepDaily: 7, keepWeekly: 4 },
    beforeRisky: true,
    tickSeconds: 60,
  });
export type SnapshotsConfig = DeepReadonly<z.infer<typeof SnapshotsConfigSchema>>;
