/** The `remote` section of the master config (power control and commands on nodes, issue #11). */
import { isIPv4 } from 'node:net';
import { z } from 'zod';

export const RemoteConfigSchema = z
  .object({
    power: z
      .object({
        /** How often configured nodes' power state is read; 0 turns the poller off. */
        pollSeconds: z.number().int().min(0).max(86_400).default(60),
        ipmitoolBin: z.string().min(1).default('ipmitool'),
        /**
         * RMCP+ cipher suite (`ipmitool -C`); unset lets ipmitool ask the BMC, which costs a timeout (~5 s a
         * call) on BMCs without Get Channel Cipher Suites, such as OpenIPMI's ipmi_sim. 3 = SHA1/AES-128.
         */
        cipherSuite: z.number().int().min(0).max(17).optional(),
        /** Bound on one ipmitool call. */
        timeoutSeconds: z.number().int().min(1).max(300).default(20),
        /** UDP port of Wake-on-LAN magic packets (9 = discard; some NICs listen on 7). */
        wolPort: z.number().int().min(1).max(65535).default(9),
        /** Default WoL broadcast; the broadcast of dhcp.subnet (or the /24 around address) when unset. */
        wolBroadcast: z
          .string()
          .refine((s) => isIPv4(s), 'expected an IPv4 address')
          .optional(),
        /** Power nodes configured with a driver through a cycle (+ PXE next boot) when a deploy needs a reboot. */
        rebootForDeploy: z.boolean().default(true),
      })
      .strict()
      .default({
        pollSeconds: 60,
        ipmitoolBin: 'ipmitool',
        timeoutSeconds: 20,
        wolPort: 9,
        rebootForDeploy: true,
      }),
    exec: z
      .object({
        user: z.string().min(1).default('root'),
        port: z.number().int().min(1).max(65535).default(22),
        /** Nodes worked on at once. */
        parallel: z.number().int().min(1).max(256).default(16),
        connectTimeoutSeconds: z.number().int().min(1).max(300).default(10),
        commandTimeoutSeconds: z.number().int().min(1).max(86_400).default(300),
      })
      .strict()
      .default({
        user: 'root',
        port: 22,
        parallel: 16,
        connectTimeoutSeconds: 10,
        commandTimeoutSeconds: 300,
      }),
  })
  .strict();

export type RemoteConfig = z.infer<typeof RemoteConfigSchema>;

export const REMOTE_CONFIG_DEFAULTS: RemoteConfig = RemoteConfigSchema.parse({});
