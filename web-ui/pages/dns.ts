import type { Router } from 'express';
import type { DnsService } from '../../master/dns/dns-service.js';
import { sendPage, type ConsoleContext } from '../page.js';

/**
 * The DNS page (issue 21): the cluster zone as knot serves it (every record, SOA first), what was left
 * out and why, and the last error (a zone knot's check refused keeps the previous one serving). With
 * dns.enabled false it says so (the navigation lists the page either way).
 */
export function mountDns(router: Router, ctx: ConsoleContext, dns: DnsService | undefined): void {
  router.get('/dns', (_req, res) => {
    if (!dns) return sendPage(ctx, res, 'dns', { title: 'DNS', nav: 'dns', disabled: true });
    const status = dns.status();
    sendPage(ctx, res, 'dns', {
      title: 'DNS',
      nav: 'dns',
      status,
      server: status.listen.map((a) => `${a}:${status.port}`).join(', '),
    });
  });
}
