/**
 * DHCPv6 and router advertisements on the provisioning network (issue 18): the feature's one entry.
 * `startDhcp6` takes its config slice, the lease store and a logger; the master calls it when
 * dhcp6.enabled is set and closes it at shutdown.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lease6Store } from '../store/dhcp6-leases.js';
import type { DeepReadonly } from '../config.js';
import { CorralError } from '../util/errors.js';
import type { SubsystemFaults } from '../util/faults.js';
import type { Logger } from '../util/logger.js';
import {
  resolveBootFiles,
  type BootFilesConfig,
  type LegacyBootFiles,
  type UefiChainChoice,
} from '../dhcp/boot-files.js';
import { parseIPv6, parsePrefix6 } from './address.js';
import { parseRange6, type Dhcp6Config } from './config.js';
import { Radvd } from './radvd.js';
import { ipv6UefiLoader } from './uefi-loader.js';
import { startDhcp6Server, type Dhcp6Server, type Dhcp6Stats } from './server.js';
import { encodeDomainSearch } from '../dhcp/domain-search.js';
import { ipv6BaseUrl } from '../http-bind.js';
import type { BootActivitySink } from '../boot/activity.js';

export { Dhcp6ConfigSchema, DHCP6_CONFIG_DEFAULTS, type Dhcp6Config } from './config.js';

export interface Dhcp6Deps {
  config: DeepReadonly<Dhcp6Config>;
  /** The top-level interface, used when dhcp6.interface is not set. */
  defaultInterface?: string;
  dataDir: string;
  httpPort: number;
  bootFiles: Readonly<BootFilesConfig>;
  legacyBootFiles: LegacyBootFiles;
  leases: Lease6Store;
  logger: Logger;
  faults?: SubsystemFaults;
  /** The cluster zone's server (knot on dhcp6.address) and domain, named first (options 23, 24). */
  cluster?: { server: string; domain: string };
  /**
   * boot.uefiChain and the nodes' own choices, as over DHCPv4: x64 UEFI clients get the Secure Boot chain
   * (shim over TFTP, the signed ISO over HTTP boot) by default. Without it, iPXE.
   */
  chain?: UefiChainChoice;
  /** The Secure Boot chain's ISO URL for an HTTP boot client, on the IPv6 base URL (http-boot-iso.ts). */
  signedHttpUrl?: (httpBaseUrl: string, mac: string) => string;
  /** A binding was stored for a client with a known MAC (server.ts). */
  onBound?: (mac: string, address: string) => void;
  /** The boot timeline (server.ts records boot clients' SOLICIT and REQUEST). */
  activity?: BootActivitySink;
  /** Whether a MAC's node is recorded at an address (allocator.ts). */
  nodeHolds?: (address: string, mac: string) => boolean;
}

export interface Dhcp6Feature {
  server: Dhcp6Server;
  stats(): Dhcp6Stats;
  close(): Promise<void>;
}

/** RFC 8415 §11.5 DUID-UUID (type 4), made once and kept in DATA_DIR/dhcp6/server-duid. */
export function serverDuid(dir: string): Buffer {
  const file = join(dir, 'server-duid');
  if (existsSync(file)) {
    const hex = readFileSync(file, 'utf8').trim();
    if (/^0004[0-9a-f]{32}$/.test(hex)) return Buffer.from(hex, 'hex');
  }
  mkdirSync(dir, { recursive: true });
  const duid = Buffer.concat([Buffer.from([0, 4]), randomBytes(16)]);
  writeFileSync(file, `${duid.toString('hex')}\n`, { mode: 0o644 });
  return duid;
}

export async function startDhcp6(deps: Dhcp6Deps): Promise<Dhcp6Feature> {
  const c = deps.config;
  const iface = c.interface ?? deps.defaultInterface;
  const address = c.address;
  const range = c.range ? parseRange6(c.range, c.prefix) : null;
  const prefix = parsePrefix6(c.prefix);
  if (!iface)
    throw new CorralError(
      'CONFIG_INVALID',
      'config error: dhcp6.interface: is required when dhcp6 is enabled (or set interface)',
    );
  // The schema already refused the others; this keeps the types honest.
  if (!address || !range || !prefix)
    throw new CorralError('CONFIG_INVALID', 'config error: dhcp6: address, prefix and range are required');
  const dir = join(deps.dataDir, 'dhcp6');
  const httpBaseUrl = ipv6BaseUrl(c, deps.httpPort);
  const server = await startDhcp6Server({
    interfaceName: iface,
    port: c.port,
    range,
    leases: deps.leases,
    logger: deps.logger,
    ...(deps.faults ? { faults: deps.faults } : {}),
    ...(deps.onBound ? { onBound: deps.onBound } : {}),
    ...(deps.activity ? { activity: deps.activity } : {}),
    ...(deps.nodeHolds ? { nodeHolds: deps.nodeHolds } : {}),
    policy: Object.freeze({
      serverDuid: serverDuid(dir),
      prefix,
      leaseSeconds: c.leaseSeconds,
      dns: [
        ...(deps.cluster ? [deps.cluster.server] : []),
        ...c.dns.filter((d) => d !== deps.cluster?.server),
      ].map((d) => parseIPv6(d) ?? 0n),
      ...(deps.cluster ? { domainList: encodeDomainSearch([deps.cluster.domain], false) } : {}),
      rapidCommit: c.rapidCommit,
      boot: ipv6UefiLoader(
        resolveBootFiles(
          deps.bootFiles,
          deps.legacyBootFiles,
          httpBaseUrl,
          address,
          deps.chain,
          deps.signedHttpUrl ? (mac) => deps.signedHttpUrl!(httpBaseUrl, mac) : undefined,
        ),
        c.uefiIpxe,
        httpBaseUrl,
      ),
    }),
  });
  let radvd: Radvd | undefined;
  if (c.routerAdvertisements.enabled) {
    radvd = new Radvd({
      dir,
      bin: c.routerAdvertisements.radvdBin,
      logger: deps.logger.child({ module: 'radvd' }),
      settings: {
        interfaceName: iface,
        prefix: prefix.text,
        routerLifetimeSeconds: c.routerAdvertisements.routerLifetimeSeconds,
      },
    });
    try {
      await radvd.start();
    } catch (err) {
      await server.close();
      throw err;
    }
  }
  return {
    server,
    stats: () => server.stats(),
    async close() {
      await radvd?.stop();
      await server.close();
    },
  };
}
