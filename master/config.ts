/**
 * The one validated configuration of a master. Sources, lowest priority first: built-in defaults, the
 * JSON config file, command-line flags. Only cli.ts reads files, flags and env; it hands the raw pieces
 * to `buildConfig`, which validates once and returns a deeply frozen object.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { CorralError } from './util/errors.js';
import { DATA_SNAPSHOTS_CONFIG_DEFAULTS, DataSnapshotsConfigSchema } from './data-snapshots/config.js';
import { APPS_CONFIG_DEFAULTS, AppsConfigSchema } from './apps/config.js';
import { HaSchema } from './ha/config-schema.js';
import { DeployConfigSchema, DEPLOY_CONFIG_DEFAULTS } from './deploy/config.js';
import { EnlistRateSchema, ENLIST_RATE_DEFAULTS } from './nodes/enlist-rate.js';
import { RemoteConfigSchema, REMOTE_CONFIG_DEFAULTS } from './remote/config.js';
import { SharedRootConfigSchema, SHAREDROOT_CONFIG_DEFAULTS } from './sharedroot/config.js';
import { DhcpConfigSchema } from './dhcp/config.js';
import { TftpConfigSchema } from './tftp/config.js';
import { BootConfigSchema, NodeImageConfigSchema } from './boot/config.js';
import { LbConfigSchema } from './lb/config.js';
import { DnsConfigSchema } from './dns/config.js';
import { MonitorConfigSchema } from './monitor/config.js';
import { SnapshotsConfigSchema } from './snapshots/config.js';
import type { DeepReadonly } from './util/deep-readonly.js';
import { ipToInt, ipv4 } from './util/net-schema.js';
import { BootFilesSchema, BOOT_FILES_DEFAULTS } from './dhcp/boot-files.js';
import { Dhcp6ConfigSchema, DHCP6_CONFIG_DEFAULTS } from './dhcp6/config.js';
import { MetricsConfigSchema, METRICS_CONFIG_DEFAULTS } from './metrics/config.js';
import { SerialConsoleConfigSchema, SERIAL_CONSOLE_CONFIG_DEFAULTS } from './serial-console/config.js';
import { P2pConfigSchema, P2P_CONFIG_DEFAULTS } from './images/p2p-config.js';
import { HttpBindSchema, resolveHttpBind } from './http-bind.js';
import { RegistryConfigSchema, REGISTRY_CONFIG_DEFAULTS } from './registry/config.js';

export { ipToInt, intToIp } from './util/net-schema.js';

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
        /**
         * Addresses to listen on (HTTP and TFTP), IPv4 and/or IPv6, one or a list; resolved after parsing
         * (http-bind.ts): 0.0.0.0, plus :: when dhcp6 is enabled.
         */
        bind: HttpBindSchema.optional(),
        /** Base URL nodes use to reach the master over IPv4; defaults to http://ADDRESS:PORT. */
        publicUrl: z.string().url().optional(),
      })
      .strict()
      .default({ port: 80 }),
    dhcp: DhcpConfigSchema,
    tftp: TftpConfigSchema,
    boot: BootConfigSchema,
    bootFiles: BootFilesSchema.default(BOOT_FILES_DEFAULTS),
    dhcp6: Dhcp6ConfigSchema.default(DHCP6_CONFIG_DEFAULTS),
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
    nodeImage: NodeImageConfigSchema,
    lb: LbConfigSchema,
    dns: DnsConfigSchema,
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
        /**
         * With HTTPS on, plain HTTP redirects console pages to HTTPS (default). false: plain HTTP serves the
         * console too, and session cookies lose their Secure flag. For the virtual lab only, whose console
         * reaches the host through a loopback relay to port 80 while HTTPS carries the masters' replication.
         */
        redirectHttp: z.boolean().default(true),
      })
      .strict()
      .refine((c) => (c.certFile === undefined) === (c.keyFile === undefined), {
        message: 'certFile and keyFile must be set together',
      })
      .default({ https: true, allowInsecureBasicAuth: false, redirectHttp: true }),
    monitor: MonitorConfigSchema,
    snapshots: SnapshotsConfigSchema,
    store: z
      .object({ synchronous: z.enum(['NORMAL', 'FULL']).default('NORMAL') })
      .strict()
      .default({ synchronous: 'NORMAL' }),
    deploy: DeployConfigSchema.default(DEPLOY_CONFIG_DEFAULTS),
    remote: RemoteConfigSchema.default(REMOTE_CONFIG_DEFAULTS),
    sharedRoot: SharedRootConfigSchema.default(SHAREDROOT_CONFIG_DEFAULTS),
    metrics: MetricsConfigSchema.default(METRICS_CONFIG_DEFAULTS),
    p2p: P2pConfigSchema.default(P2P_CONFIG_DEFAULTS),
    registry: RegistryConfigSchema.default(REGISTRY_CONFIG_DEFAULTS),
    dataSnapshots: DataSnapshotsConfigSchema.default(DATA_SNAPSHOTS_CONFIG_DEFAULTS),
    apps: AppsConfigSchema.default(APPS_CONFIG_DEFAULTS),
    serialConsole: SerialConsoleConfigSchema.default(SERIAL_CONSOLE_CONFIG_DEFAULTS),
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

type ParsedConfig = z.infer<typeof ConfigSchema>;
/** As parsed, with http.bind resolved to its list (buildConfig). */
export type Config = Omit<ParsedConfig, 'http'> & {
  http: Omit<ParsedConfig['http'], 'bind'> & { bind: string[] };
};

export type { DeepReadonly } from './util/deep-readonly.js';
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
  const config: Config = {
    ...parsed.data,
    http: { ...parsed.data.http, bind: resolveHttpBind(parsed.data.http.bind, parsed.data.dhcp6) },
  };
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
export function publicUrl(config: Pick<FrozenConfig, 'http' | 'address'>): string {
  if (config.http.publicUrl) return config.http.publicUrl.replace(/\/$/, '');
  return config.http.port === 80
    ? `http://${config.address}`
    : `http://${config.address}:${config.http.port}`;
}
