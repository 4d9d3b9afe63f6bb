/**
 * DNS-SD as a feature (issue 21): knot serving the cluster zone, kept in step with the inventory and the
 * load balancer's healthy servers (dns-service.ts), its API and console page. Started once the HTTP
 * listeners are up, like the load balancer it follows. Off (dns.enabled false), the API route answers
 * DNS_DISABLED and the page says how to turn it on, rather than a bare 404.
 */
import express from 'express';
import type { FrozenConfig } from '../config.js';
import type { ConsolePages, Started } from '../feature.js';
import type { LoadBalancer } from '../lb/load-balancer.js';
import { Lease6Store } from '../store/dhcp6-leases.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { mountDns } from '../../web-ui/pages/dns.js';
import { createDnsRouter } from './api.js';
import { DnsService } from './dns-service.js';

export interface DnsFeatureDeps {
  config: Pick<FrozenConfig, 'dns' | 'address' | 'dataDir' | 'ha' | 'dhcp6'>;
  repos: Pick<Repos, 'store' | 'nodes'>;
  /** The load balancer (absent or disabled: the zone holds nodes only). */
  lb: Pick<LoadBalancer, 'enabled' | 'views'> | undefined;
  logger: Logger;
}

export function startDns(deps: DnsFeatureDeps): Started<{ dns: DnsService | undefined }> {
  if (!deps.config.dns.enabled) {
    return {
      dns: undefined,
      api: createDnsRouter(undefined),
      pages: dnsPages(undefined),
      close: async () => {},
    };
  }
  const { lb } = deps;
  const dns = new DnsService({
    config: deps.config,
    nodes: deps.repos.nodes,
    leases6: new Lease6Store(deps.repos.store),
    services: () => (lb?.enabled ? lb.views() : []),
    logger: deps.logger,
  });
  return {
    dns,
    api: createDnsRouter(dns),
    pages: dnsPages(dns),
    health: () => ({ dns: { running: dns.knot.running, serial: dns.status().serial } }),
    serve: () => dns.start(),
    close: () => dns.close(),
  };
}

function dnsPages(dns: DnsService | undefined): ConsolePages {
  return (ctx) => {
    const router = express.Router();
    mountDns(router, ctx, dns);
    return router;
  };
}
