/**
 * The `metrics` section of the master config (README "Monitoring with Prometheus"), mounted into
 * ConfigSchema by one line in config.ts.
 */
import { z } from 'zod';

export const MetricsConfigSchema = z
  .object({
    /** Serve the Prometheus exposition at /metrics. */
    enabled: z.boolean().default(true),
    /**
     * Bearer token a Prometheus server off the master's machine sends (`authorization: { credentials_file }`).
     * Without one only loopback may scrape. Hidden everywhere like every `*token` key (master/util/redact.ts).
     */
    token: z.string().min(16, 'must be at least 16 characters').max(256).optional(),
    /** The port prometheus-node-exporter listens on in the images Corral builds (scrape config targets). */
    nodeExporterPort: z.number().int().min(1).max(65535).default(9100),
  })
  .strict();

export type MetricsConfig = z.infer<typeof MetricsConfigSchema>;

export const METRICS_CONFIG_DEFAULTS = { enabled: true, nodeExporterPort: 9100 } as const;
