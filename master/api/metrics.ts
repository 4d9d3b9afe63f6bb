/**
 * `POST /api/v1/nodes/:mac/metrics`: a deployed node's agent reports its load. No login, like
 * enlistment (the handlers only: boot/surface.ts mounts them and lists the route), so it is narrow: only a known MAC, only from the IP address the
 * master recorded for that node (DHCP lease or enlistment), only bounded numbers. It can add samples to
 * that node's own series and nothing else.
 */
import express, { type RequestHandler } from 'express';
import { z } from 'zod';
import type { Monitor } from '../monitor/monitor.js';
import { normaliseMac } from '../nodes/inventory.js';
import type { Repos } from '../store/repos.js';
import { CorralError } from '../util/errors.js';
import { clientIp } from '../util/client-ip.js';
import { zodToCorral } from './errors.js';

const bytes = z
  .number()
  .min(0)
  .max(2 ** 60)
  .nullable()
  .default(null);
export const NodeMetricsSchema = z
  .object({
    cpu: z.number().min(0).max(100).nullable().default(null),
    memUsed: bytes,
    memTotal: bytes,
    diskUsed: bytes,
    diskTotal: bytes,
    netRx: bytes,
    netTx: bytes,
    load1: z.number().min(0).max(1e6).nullable().default(null),
  })
  .strict();

export function nodeMetricsHandlers(
  repos: Pick<Repos, 'nodes'>,
  monitor: Pick<Monitor, 'recordNode'>,
): RequestHandler[] {
  const report: RequestHandler = (req, res) => {
    const mac = normaliseMac(String(req.params['mac'] ?? ''));
    const node = mac ? repos.nodes.get(mac) : undefined;
    const ip = clientIp(req);
    if (!node || !node.ip || node.ip !== ip) {
      throw new CorralError(
        'METRICS_REFUSED',
        `metrics for ${String(req.params['mac'])} refused from ${ip ?? '?'}`,
      );
    }
    const parsed = NodeMetricsSchema.safeParse(req.body);
    if (!parsed.success) throw zodToCorral(parsed.error);
    const sample = monitor.recordNode(node.mac, parsed.data);
    res.status(202).json({ accepted: sample.at });
  };
  return [express.json({ limit: '8kb' }), report];
}
