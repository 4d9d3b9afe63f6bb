/**
 * REST API v1 for remote control (mounted by one line in api/v1.ts, after Basic auth):
 *   GET    /nodes/:id/power           viewer    driver settings (no secret: `hasPassword`) and state
 *   PUT    /nodes/:id/power           admin     {driver, address?, port?, username?, password?, wolMac?, repin?}
 *                                               driver: ipmi | redfish | auto (Redfish if offered, else IPMI) | wol | manual
 *   DELETE /nodes/:id/power           admin     forget the driver
 *   GET    /nodes/:id/power/bmc       viewer    Redfish: the BMC's inventory (model, serial, BIOS) and log entries
 *   POST   /nodes/:id/power/:action   operator  on | off | cycle | pxe | uefi-http | disk (next boot only) |
 *                                               status (reads the state now)
 *   POST   /exec                      admin     {nodes?|role?|tag?, command, timeoutSeconds?, parallel?} →
 *                                               NDJSON stream: {node, stream, text}…, then {summary, runId}
 *   GET    /exec/runs[/:id]           admin     recorded runs with their output
 */
import express, { type Router } from 'express';
import { z } from 'zod';
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import { requireRole } from '../api/auth.js';
import { clientIp } from '../util/client-ip.js';
import { zodToCorral } from '../api/errors.js';
import { findNode } from '../nodes/service.js';
import { CorralError } from '../util/errors.js';
import { DRIVER_CHOICES, POWER_ACTIONS } from './power-driver.js';
import type { PowerControl } from './power.js';
import { execOnNodes, resolveTargets } from './exec-service.js';

export interface RemoteApiDeps {
  repos: Pick<Repos, 'nodes' | 'execRuns' | 'audit' | 'events'>;
  config: Pick<FrozenConfig, 'remote' | 'dataDir' | 'sharedRoot'>;
  power: PowerControl;
  privateKeyPath: string;
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw zodToCorral(r.error);
  return r.data;
}

const param = (v: string | string[] | undefined): string => (Array.isArray(v) ? (v[0] ?? '') : (v ?? ''));

const host = z.string().regex(/^[A-Za-z0-9.:-]{1,253}$/, 'must be a host name or IP address');

export const PowerSettingsBody = z
  .object({
    driver: z.enum(DRIVER_CHOICES),
    address: host.optional(),
    port: z.number().int().min(1).max(65535).optional(),
    username: z.string().min(1).max(64).optional(),
    password: z.string().max(128).optional(),
    wolMac: z
      .string()
      .regex(/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/, 'expected a MAC like 52:54:00:12:34:56')
      .optional(),
    repin: z.boolean().optional(),
  })
  .strict();

export const ExecBody = z
  .object({
    nodes: z.array(z.string().min(1).max(64)).max(1000).optional(),
    role: z.string().min(1).max(32).optional(),
    tag: z.string().min(1).max(32).optional(),
    command: z.string().min(1).max(4000),
    timeoutSeconds: z.number().int().min(1).max(86_400).optional(),
    parallel: z.number().int().min(1).max(256).optional(),
  })
  .strict();

export function createRemoteApiRouter(deps: RemoteApiDeps): Router {
  const { repos, power } = deps;
  const router = express.Router();

  router.get('/nodes/:id/power', (req, res) => {
    const node = findNode(repos.nodes, param(req.params['id']));
    res.json({ node: node.name, power: power.view(node.mac) ?? null });
  });

  router.put('/nodes/:id/power', requireRole('admin'), (req, res) => {
    const body = parse(PowerSettingsBody, req.body);
    const node = findNode(repos.nodes, param(req.params['id']));
    res.json({ node: node.name, power: power.configure(node, body, req.user?.name ?? null) });
  });

  router.delete('/nodes/:id/power', requireRole('admin'), (req, res) => {
    const node = findNode(repos.nodes, param(req.params['id']));
    power.remove(node, req.user?.name ?? null);
    res.status(204).end();
  });

  router.get('/nodes/:id/power/bmc', async (req, res) => {
    const node = findNode(repos.nodes, param(req.params['id']));
    const details = await power.bmcDetails(node);
    if (!details) {
      throw new CorralError(
        'POWER_UNSUPPORTED',
        `the power driver of ${node.name} cannot read the BMC's inventory and log (Redfish can)`,
      );
    }
    res.json({ node: node.name, bmc: details });
  });

  router.post('/nodes/:id/power/:action', requireRole('operator'), async (req, res) => {
    const node = findNode(repos.nodes, param(req.params['id']));
    const action = param(req.params['action']);
    if (action === 'status') {
      const state = await power.refresh(node);
      return void res.json({ node: node.name, state, power: power.view(node.mac) });
    }
    const a = z.enum(POWER_ACTIONS).safeParse(action);
    if (!a.success)
      throw new CorralError('NOT_FOUND', `no power action '${action}' (${POWER_ACTIONS.join(', ')}, status)`);
    const result = await power.act(node, a.data, req.user?.name ?? null);
    res.json({ node: node.name, action: a.data, ...result });
  });

  router.post('/exec', requireRole('admin'), async (req, res) => {
    const body = parse(ExecBody, req.body);
    // Targets are checked before the stream starts, so a bad name is a plain JSON error.
    resolveTargets(repos, body);
    res.status(200).type('application/x-ndjson').set('Cache-Control', 'no-store');
    res.flushHeaders();
    const { runId, summary, summaryLines } = await execOnNodes(
      { repos, config: deps.config, privateKeyPath: deps.privateKeyPath },
      { ...body, actor: req.user?.name ?? 'unknown', via: 'api', ip: clientIp(req) },
      { line: (text, node, stream) => void res.write(`${JSON.stringify({ node, stream, text })}\n`) },
    );
    res.end(`${JSON.stringify({ runId, summary, summaryLines })}\n`);
  });

  router.get('/exec/runs', requireRole('admin'), (_req, res) => {
    res.json({ runs: repos.execRuns.list(50).map(({ output: _o, ...r }) => r) });
  });

  router.get('/exec/runs/:id', requireRole('admin'), (req, res) => {
    const run = repos.execRuns.get(Number(param(req.params['id'])));
    if (!run) throw new CorralError('NOT_FOUND', `no exec run ${param(req.params['id'])}`);
    res.json({ run });
  });
  return router;
}
