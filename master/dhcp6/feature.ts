/**
 * DHCPv6 as a feature (issue 18): the DHCPv6 server and radvd's router advertisements on the
 * provisioning link, off unless `dhcp6.enabled`. With HA only the VIP holder serves it (onRole), as DHCP.
 */
import type { FrozenConfig } from '../config.js';
import type { Started } from '../feature.js';
import type { Repos } from '../store/repos.js';
import { Lease6Store } from '../store/dhcp6-leases.js';
import type { Faults } from '../util/faults.js';
import type { Logger } from '../util/logger.js';
import { clusterDns6 } from '../dns/dhcp-options.js';
import { startDhcp6, type Dhcp6Feature } from './index.js';
import { uefiChainFromTags } from '../dhcp/boot-files.js';
import { httpBootIsoUrl } from '../boot/http-boot-iso.js';
import { recordNodeIp6 } from '../nodes/address.js';
import type { BootActivitySink } from '../boot/activity.js';

export interface Dhcp6FeatureDeps {
  config: Pick<
    FrozenConfig,
    'dhcp6' | 'dhcp' | 'interface' | 'dataDir' | 'http' | 'bootFiles' | 'boot' | 'dns'
  >;
  repos: Pick<Repos, 'store' | 'nodes'>;
  logger: Logger;
  faults: Pick<Faults, 'subsystem'>;
  /** With HA: wait for onRole('primary') instead of serving at start. */
  primaryOnly: boolean;
  /** The boot timeline, as DHCPv4's. */
  activity?: BootActivitySink;
}

export async function startDhcp6Feature(deps: Dhcp6FeatureDeps): Promise<Started> {
  const { config } = deps;
  let running: Dhcp6Feature | undefined;
  const serve = async (): Promise<void> => {
    if (!config.dhcp6.enabled || running) return;
    const cluster = clusterDns6(config);
    running = await startDhcp6({
      config: config.dhcp6,
      ...(config.interface ? { defaultInterface: config.interface } : {}),
      dataDir: config.dataDir,
      httpPort: config.http.port,
      bootFiles: config.bootFiles,
      legacyBootFiles: config.boot,
      leases: new Lease6Store(deps.repos.store),
      logger: deps.logger,
      faults: deps.faults.subsystem('dhcp6'),
      ...(cluster ? { cluster } : {}),
      // The Secure Boot chain by default over IPv6 too (issue 18): shim, then network GRUB over TFTP/IPv6.
      chain: {
        uefiChain: config.boot.uefiChain,
        forNode: (mac) => uefiChainFromTags(deps.repos.nodes.get(mac)?.tags ?? []),
      },
      signedHttpUrl: httpBootIsoUrl,
      ...(deps.activity ? { activity: deps.activity } : {}),
      // The binding's own node by its MAC (the primary key), not every node at the address.
      nodeHolds: (address, mac) => deps.repos.nodes.get(mac)?.ip === address,
      onBound: (mac, address) => recordNodeIp6(deps.repos, mac, address, config.dhcp.mode === 'server'),
    });
  };
  const stop = async (): Promise<void> => {
    const r = running;
    running = undefined;
    await r?.close();
  };
  if (!deps.primaryOnly) await serve();
  return {
    health: () => (running ? { dhcp6: running.stats() } : {}),
    onRole: (role) => (role === 'primary' ? serve() : stop()),
    close: stop,
  };
}
