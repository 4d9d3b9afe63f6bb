/**
 * The one validated configuration of a master. Sources, lowest priority first: built-in defaults, the
 * JSON config file, command-line flags. Only cli.ts reads files, flags and env; it hands the raw pieces
 * to `buildConfig`, which validates once and returns a deeply frozen object.
 */
import { isIPv4 } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { CorralError } from './util/errors.js';
import { RetentionPolicySchema, ScheduleSchema } from './snapshots/retention.js';
import { DATA_SNAPSHOTS_CONFIG_DEFAULTS, DataSnapshotsConfigSchema } from './data-snapshots/config.js';
import { HaSchema } from './ha/config-schema.js';
import { DeployConfigSchema, DEPLOY_CONFIG_DEFAULTS } from './deploy/config.js';
import { EnlistRateSchema, ENLIST_RATE_DEFAULTS } from './nodes/enlist-rate.js';
import { RemoteConfigSchema, REMOTE_CONFIG_DEFAULTS } from './remote/config.js';
import { SharedRootConfigSchema, SHAREDROOT_CONFIG_DEFAULTS } from './sharedroot/config.js';

const ipv4 = z.string().refine((s) => isIPv4(s), { message: 'expected an IPv4 address like 10.0.0.1' });

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

const cidr = z.string().refine(
  (s) => {
    const [ip, bits, ...rest] = s.split('/');
    return rest.length === 0 && !!ip && isIPv4(ip) && /^\d+$/.test(bits ?? '') && Number(bits) <= 32;
  },
  { message: 'expected a subnet in CIDR form like 10.0.0.0/24' },
);

const range = z.string().refine(
  (s) => {
    const [a, b, ...rest] = s.split('-');
    return rest.length === 0 && !!a && !!b && isIPv4(a) && isIPv4(b) && ipToInt(a) <= ipToInt(b);
  },
  {
    message: 'expected FIRST-LAST with two IPv4 addresses, first not above last (e.g. 10.0.0.100-10.0.0.200)',
  },
);

const mac = z
  .string()
  .regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, 'expected a MAC like 52:54:00:12:34:56')
  .transform((s) => s.toLowerCase());

const pool = z
  .object({
    subnet: cidr,
    range,
    router: ipv4.optional(),
    dns: z.array(ipv4).default([]),
    domain: z.string().optional(),
  })
  .strict();

export const ConfigSchema = z
  .object({
    // Absolute from here on: files are served, and daemons configured, by paths under it (a relative
    // `--data-dir data` made every kernel fetch a 500: res.sendFile refuses relative paths).
    dataDir: z
      .string()
      .min(1, 'the data directory must be set (--data-dir)')
      .transform((p) => resolve(p)),
    interface: z.string().min(1).optional(),
    address: ipv4,
    http: z
      .object({
        port: z.number().int().min(0).max(65535).default(80),
        bind: ipv4.default('0.0.0.0'),
        /** Base URL nodes use to reach the master; defaults to http://ADDRESS:PORT. */
        publicUrl: z.string().url().optional(),
      })
      .strict()
      .default({ port: 80, bind: '0.0.0.0' }),
    dhcp: z
      .object({
        mode: z.enum(['off', 'server', 'proxy']).default('off'),
        range: range.optional(),
        subnet: cidr.optional(),
        router: ipv4.optional(),
        dns: z.array(ipv4).default([]),
        domain: z.string().optional(),
        leaseSeconds: z
          .number()
          .int()
          .min(60)
          .max(7 * 24 * 3600)
          .default(3600),
        port: z.number().int().min(1).max(65535).default(67),
        /** Pools for other subnets reached through DHCP relays (chosen by giaddr). */
        relayPools: z.array(pool).default([]),
        reservations: z
          .array(z.object({ mac, ip: ipv4, hostname: z.string().optional() }).strict())
          .default([]),
      })
      .strict()
      .default({ mode: 'off', dns: [], leaseSeconds: 3600, port: 67, relayPools: [], reservations: [] }),
    tftp: z
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
      .default({ enabled: true, port: 69, maxBlksize: 1468, maxPerClient: 4, firstAckTimeoutMs: 3000 }),
    boot: z
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
      }),
    nodes: z
      .object({
        /** `{n}` is the node's sequence number; `{mac}` its MAC without colons. */
        namePattern: z
          .string()
          .regex(/\{n\}|\{mac\}/, 'must contain {n} or {mac}')
          .default('node-{n}'),
        /** What a freshly discovered node is told: wait (poll for work) or power off. */
        discoverAction: z.enum(['wait', 'poweroff']).default('wait'),
        pollSeconds: z.number().int().min(1).max(3600).default(10),
        /**
         * Token buckets for enlistments of NEW MACs (issue 14): per source address and for the whole
         * master. A refused one gets 429 ENLIST_RATE_LIMITED; known nodes are never limited.
         */
        enlistRate: EnlistRateSchema.default(ENLIST_RATE_DEFAULTS),
      })
      .strict()
      .default({
        namePattern: 'node-{n}',
        discoverAction: 'wait',
        pollSeconds: 10,
        enlistRate: ENLIST_RATE_DEFAULTS,
      }),
    nodeImage: z
      .object({
        /** Cache of downloaded Debian kernel packages, shared between data directories. */
        cacheDir: z.string().default('/var/cache/corral'),
        /** `generic`: Debian's kernel with the drivers of physical servers; `cloud`: virtio VMs only. */
        flavour: z.enum(['cloud', 'generic']).default('generic'),
        /** The master builds (or refreshes) the node environment in the background at start. */
        autoBuild: z.boolean().default(true),
      })
      .strict()
      .default({ cacheDir: '/var/cache/corral', flavour: 'generic', autoBuild: true }),
    lb: z
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
      .default({ enabled: true, haproxyBin: 'haproxy', pollMs: 1000 }),
    console: z
      .object({
        /** Serve the console (and the API) over HTTPS; plain HTTP then redirects console pages there. */
        https: z.boolean().default(true),
        /** Default 443, or 0 (any free port) when http.port is 0, as in tests. */
        httpsPort: z.number().int().min(0).max(65535).optional(),
        /** A user-supplied certificate (PEM); both or neither. Without them one is generated into DATA_DIR/tls/. */
        certFile: z.string().min(1).optional(),
        keyFile: z.string().min(1).optional(),
        /**
         * Accept HTTP Basic credentials over plain HTTP from other hosts (refused by default: the password
         * would cross the network in clear; loopback is always accepted). For test labs in namespaces only.
         */
        allowInsecureBasicAuth: z.boolean().default(false),
      })
      .strict()
      .refine((c) => (c.certFile === undefined) === (c.keyFile === undefined), {
        message: 'certFile and keyFile must be set together',
      })
      .default({ https: true, allowInsecureBasicAuth: false }),
    monitor: z
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
      }),
    snapshots: z
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
      }),
    store: z
      .object({ synchronous: z.enum(['NORMAL', 'FULL']).default('NORMAL') })
      .strict()
      .default({ synchronous: 'NORMAL' }),
    deploy: DeployConfigSchema.default(DEPLOY_CONFIG_DEFAULTS),
    remote: RemoteConfigSchema.default(REMOTE_CONFIG_DEFAULTS),
    sharedRoot: SharedRootConfigSchema.default(SHAREDROOT_CONFIG_DEFAULTS),
    dataSnapshots: DataSnapshotsConfigSchema.default(DATA_SNAPSHOTS_CONFIG_DEFAULTS),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .default({ level: 'info' }),
    ha: HaSchema,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.dhcp.mode === 'server' && !c.dhcp.range) {
      ctx.addIssue({
        code: 'custom',
        path: ['dhcp', 'range'],
        message: 'is required when DHCP mode is server',
      });
    }
    if (c.dhcp.range) {
      const subnet = c.dhcp.subnet ?? defaultSubnet(c.address);
      const [net, bits] = subnet.split('/');
      const mask = Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0;
      const inside = (ip: string): boolean =>
        (ipToInt(ip) & mask) >>> 0 === (ipToInt(net ?? '') & mask) >>> 0;
      const [a, b] = c.dhcp.range.split('-') as [string, string];
      if (!inside(a) || !inside(b)) {
        ctx.addIssue({ code: 'custom', path: ['dhcp', 'range'], message: `is not inside subnet ${subnet}` });
      }
    }
  });

export type Config = z.infer<typeof ConfigSchema>;

export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
export type FrozenConfig = DeepReadonly<Config>;

/** Flags as the CLI parsed them; each one overrides the same key of the file. */
export interface ConfigFlags {
  dataDir?: string;
  interface?: string;
  address?: string;
  dhcpRange?: string;
  proxyDhcp?: boolean;
  httpPort?: string;
  tftpPort?: string;
  logLevel?: string;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function section(raw: Record<string, unknown>, key: string): Record<string, unknown> {
  const existing = raw[key];
  if (existing === undefined) {
    const fresh: Record<string, unknown> = {};
    raw[key] = fresh;
    return fresh;
  }
  if (!isRecord(existing))
    throw new CorralError('CONFIG_INVALID', `config error: ${key}: expected an object`);
  return existing;
}

function portFlag(name: string, value: string): number {
  if (!/^\d+$/.test(value))
    throw new CorralError('CONFIG_INVALID', `config error: ${name}: expected a port number (got '${value}')`);
  return Number(value);
}

/** Subnet of a range when none is configured: the /24 around the master's address. */
export function defaultSubnet(address: string): string {
  const parts = address.split('.');
  return `${parts.slice(0, 3).join('.')}.0/24`;
}

/**
 * Merges the file's parsed JSON and the flags, validates, and freezes. Throws CorralError
 * CONFIG_INVALID whose message is one line naming the key and what is wrong.
 */
export function buildConfig(fileJson: unknown, flags: ConfigFlags): FrozenConfig {
  if (fileJson !== undefined && !isRecord(fileJson)) {
    throw new CorralError('CONFIG_INVALID', 'config error: the config file must hold a JSON object');
  }
  const raw: Record<string, unknown> = structuredClone(fileJson ?? {}) as Record<string, unknown>;
  if (flags.dataDir !== undefined) raw['dataDir'] = flags.dataDir;
  if (flags.interface !== undefined) raw['interface'] = flags.interface;
  if (flags.address !== undefined) raw['address'] = flags.address;
  if (flags.httpPort !== undefined)
    section(raw, 'http')['port'] = portFlag('http.port (--http-port)', flags.httpPort);
  if (flags.tftpPort !== undefined)
    section(raw, 'tftp')['port'] = portFlag('tftp.port (--tftp-port)', flags.tftpPort);
  if (flags.logLevel !== undefined) section(raw, 'log')['level'] = flags.logLevel;
  if (flags.dhcpRange !== undefined && flags.proxyDhcp) {
    throw new CorralError(
      'CONFIG_INVALID',
      'config error: dhcp.mode: --dhcp-range and --proxy-dhcp exclude each other',
    );
  }
  if (flags.dhcpRange !== undefined) {
    const dhcp = section(raw, 'dhcp');
    dhcp['mode'] = 'server';
    dhcp['range'] = flags.dhcpRange;
  }
  if (flags.proxyDhcp) section(raw, 'dhcp')['mode'] = 'proxy';

  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue && issue.path.length ? issue.path.join('.') : '(top level)';
    let message = issue?.message ?? 'invalid';
    if (issue?.code === 'unrecognized_keys') message = `unknown key(s) ${issue.keys.join(', ')}`;
    if (issue?.code === 'invalid_type' && message.includes('received undefined')) message = 'is required';
    throw new CorralError('CONFIG_INVALID', `config error: ${key}: ${message}`);
  }
  const config = parsed.data;
  config.console.httpsPort ??= config.http.port === 0 ? 0 : 443;
  if (config.dhcp.mode === 'server' && !config.dhcp.subnet)
    config.dhcp.subnet = defaultSubnet(config.address);
  return deepFreeze(config);
}

/** The subnets nodes boot from: the local segment's and every relayed pool's (CIDR). */
export function provisioningSubnets(config: FrozenConfig): string[] {
  const local = config.dhcp.subnet ?? defaultSubnet(config.address);
  return [...new Set([local, ...config.dhcp.relayPools.map((p) => p.subnet)])];
}

/** Base URL nodes use to reach the master's HTTP server. */
export function publicUrl(config: FrozenConfig): string {
  if (config.http.publicUrl) return config.http.publicUrl.replace(/\/$/, '');
  return config.http.port === 80
    ? `http://${config.address}`
    : `http://${config.address}:${config.http.port}`;
}
