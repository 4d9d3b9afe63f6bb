/**
 * REST API v1 for the cluster zone (mounted after the one authentication boundary): what knot serves,
 * for every signed-in user (names and addresses of the inventory, nothing secret).
 */
import express, { type Router } from 'express';
import { CorralError } from '../util/errors.js';
import type { DnsService } from './dns-service.js';

export function createDnsRouter(dns: DnsService | undefined): Router {
  const router = express.Router();
  router.get('/dns', (_req, res) => {
    if (!dns) throw new CorralError('DNS_DISABLED', 'DNS-SD is disabled (dns.enabled = false)');
    res.json(dns.status());
  });
  return router;
}
