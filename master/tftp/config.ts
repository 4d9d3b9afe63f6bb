/**
 * The `tftp` section of the master config (docs/tftp.md). Defined here,
 * composed into ConfigSchema by one line in master/config.ts.
 */
import { z } from 'zod';
import type { DeepReadonly } from '../util/deep-readonly.js';

export const TftpConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    port: z.number().int().min(0).max(65535).default(69),
    /** Largest blksize granted (RFC 2348); 1468 fits a 1500-byte MTU. */
    maxBlksize: z.number().int().min(512).max(65464).default(1468),
    /** Concurrent transfers per client address (issue 14): one address cannot take every slot. */
    maxPerClient: z.number().int().min(1).max(256).default(4),
    /** Retransmission timeout until a client's first ACK, whatever timeout it asked for (docs/tftp.md). */
    firstAckTimeoutMs: z.number().int().min(100).max(255_000).default(3000),
  })
  .strict()
  .default({ enabled: true, port: 69, maxBlksize: 1468, maxPerClient: 4, firstAckTimeoutMs: 3000 });
export type TftpConfig = DeepReadonly<z.infer<typeof TftpConfigSchema>>;
