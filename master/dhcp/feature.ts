/**
 * DHCP as a feature: the PXE-aware server (or proxyDHCP) on the provisioning segment. With HA only the
 * VIP holder serves it (onRole); it writes the config's reservations into the store before serving.
 */
import { publicUrl, type FrozenConfig } from '../config.js';
import type { Started } from '../feature.js';
import type { BootConfig } from '../boot/config.js';
import type { DhcpConfig } from './config.js';
import { resolveBootFiles, uefiChainFromTags, type BootFilesConfig } from './boot-files.js';
import type { BootActivitySink } from '../boot/activity.js';
import { httpBootIsoUrl } from '../boot/http-boot-iso.js';
import { recordNodeIp } from '../nodes/address.js';
import type { LeaseStore } from '../store/leases.js';
import type { Repos } from '../store/repos.js';
import type { Faults } from '../util/faults.js';
import type { Logger } from '../util/logger.js';
import { clusterDns } from '../dns/dhcp-options.js';
import { dhcpPools } from './pools-from-config.js';
import { syncReservations } from './reservations.js';
import { startDhcpServer, type DhcpServer } from './server.js';

export interface DhcpFeatureDeps {
  config: { dhcp: DhcpConfig; boot: BootConfig; bootFiles: Readonly<BootFilesConfig> } & Pick<
    FrozenConfig,
    'address' | 'interface' | 'http' | 'dns'
  >;
  repos: Pick<Repos, 'store' | 'nodes'>;
  leases: LeaseStore;
  logger: Logger;
  /** Fault counters; its `dhcp` subsystem is registered when the server first starts (health shows it then). */
  faults: Pick<Faults, 'subsystem'>;
  activity: BootActivitySink;
  /** With HA: wait for onRole('primary') instead of serving at start. */
  primaryOnly: boolean;
}

export async function startDhcp(
  deps: DhcpFeatureDeps,
): Promise<Started<{ stats(): ReturnType<DhcpServer['stats']> | undefined }>> {
  const { config, repos, leases } = deps;
  let server: DhcpServer | undefined;
  const serve = async (): Promise<void> => {
    syncReservations(config.dhcp.reservations, repos.store, leases);
    if (config.dhcp.mode === 'off' || server) return;
    server = await startDhcpServer({
      mode: config.dhcp.mode,
      serverAddress: config.address,
      ...(config.interface ? { interfaceName: config.interface } : {}),
      port: config.dhcp.port,
      pools: dhcpPools(config.dhcp, clusterDns(config)),
      leaseSeconds: config.dhcp.leaseSeconds,
      boot: resolveBootFiles(
        config.bootFiles,
        config.boot,
        publicUrl(config),
        config.address,
        {
          uefiChain: config.boot.uefiChain,
          forNode: (mac) => uefiChainFromTags(repos.nodes.get(mac)?.tags ?? []),
        },
        (mac) => httpBootIsoUrl(publicUrl(config), mac),
      ),
      leases,
      logger: deps.logger,
      onBound: (mac, ip) => recordNodeIp(repos, mac, ip),
      faults: deps.faults.subsystem('dhcp'),
      activity: deps.activity,
    });
  };
  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    await s?.close();
  };
  if (!deps.primaryOnly) await serve();
  return {
    stats: () => server?.stats(),
    health: () => ({ dhcp: config.dhcp.mode, ...(server ? { dhcpStats: server.stats() } : {}) }),
    onRole: (role) => (role === 'primary' ? serve() : stop()),
    close: stop,
  };
}
