/** The DHCP service: the master calls `startDhcpServer`; the config layer uses `parseRange`/`validatePools`. */
export { startDhcpServer, type DhcpServer, type DhcpServerOptions, type DhcpStats } from './server.js';
export {
  parseRange,
  validatePools,
  parseCidr,
  parseIp,
  formatIp,
  MAX_POOL_SIZE,
  type Pool,
  type PoolSpec,
} from './pool.js';
export { type BootConfig, bootScriptUrl } from './pxe.js';
export { LeaseAllocator, type Availability, type LeaseView } from './allocator.js';
