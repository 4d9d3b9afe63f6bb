/**
 * The `monitor` section of the master config (docs/monitoring.md). Defined here,
 * composed into ConfigSchema by one line in master/config.ts.
 */
import { z } from 'zod';
import type { DeepReadonly } from '../util/deep-readonly.js';

export const MonitorConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Sampling interval of the master itself. */
    intervalSeconds: z.number().int().min(1).max(3600).default(10),
    /**
     * How often deployed nodes are sampled over SSH (master/monitor/node-collector.ts, with the
     * remote.exec user, port, fan-out and connect timeout); 0 turns the collector off.
     */
    nodeSshSeconds: z.number().int().min(0).max(3600).default(30),
    /** A node that reported metrics and then stays silent this many intervals raises "node down". */
    nodeDownIntervals: z.number().int().min(2).max(1000).default(6),
    /** A master filesystem fuller than this (percent) raises "disk nearly full". */
    diskAlertPercent: z.number().min(1).max(100).default(90),
    rawRetentionHours: z
      .number()
      .int()
      .min(1)
      .max(24 * 14)
      .default(24),
    rollupRetentionDays: z.number().int().min(1).max(3650).default(30),
  })
  .strict()
  .default({
    enabled: true,
    intervalSeconds: 10,
    nodeSshSeconds: 30,
    nodeDownIntervals: 6,
    diskAlertPercent: 90,
    rawRetentionHours: 24,
    rollupRetentionDays: 30,
  });
export type MonitorConfig = DeepReadonly<z.infer<typeof MonitorConfigSchema>>;
