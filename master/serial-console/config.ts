/** The `serialConsole` section of the master config (issue 20): where nodes' serial lines are and how much is kept. */
import { z } from 'zod';

export const SerialConsoleConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    /**
     * A directory of Unix sockets named after nodes' MACs (`52-54-00-12-34-56.sock`), each one a node's
     * serial line: what `corral lab` gives its VMs. A node with a socket here uses it; else its BMC's
     * serial-over-LAN through the IPMI power driver.
     */
    socketDir: z.string().min(1).optional(),
    /** Output kept per console session for replay (input is never recorded: passwords are typed there). */
    recordBytes: z
      .number()
      .int()
      .min(0)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024),
    /** Recordings kept per node; the oldest are deleted beyond this. */
    keepRecordings: z.number().int().min(1).max(1000).default(20),
  })
  .strict();

export type SerialConsoleConfig = z.infer<typeof SerialConsoleConfigSchema>;

export const SERIAL_CONSOLE_CONFIG_DEFAULTS: SerialConsoleConfig = SerialConsoleConfigSchema.parse({});
