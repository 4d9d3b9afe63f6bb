/**
 * The node side of deployment, under /boot (no login: firmware and installers cannot log in). The
 * handlers only: the one node-facing router (boot/surface.ts) mounts them and lists each route.
 *   GET  /boot/images/<sha256>               a registered image (Range, Content-Length; boot/send-file.ts)
 *   GET  /boot/installer/tools.img           the installer tools initrd (node-images/os-image-tools.ts)
 *   GET  /boot/deploy/<mac>/<file>[?deployment=ID]   plan.env and the rendered files of the current deployment
 *   POST /boot/deploy/<mac>/progress|result|booted  {token, ...}   installer and first-boot reports
 * Plan files name the master in the family the installer's request came in on, and a node that came over
 * IPv6 gets the DHCPv6 network file (plan.ts planForArrival; issue 18).
 * The plan files include the private SSH host key Corral made for the installed system (deploy.ts planFile),
 * adopted as the node's pinned key when the result reports success (remote/host-keys.ts).
 * Every one of these needs the node's credential (Authorization: Bearer, issued at enlistment; issue 14).
 * The plan is served only while the deployment is pending or installing; it holds the deployment's
 * token (in node.conf), which the reports must also carry, so an installer of a superseded deployment
 * is refused. The token is on no boot script and no URL. `booted` is accepted once (the token is then
 * spent) and never moves the node's address. Images are public by sha256, as boot files are.
 */
import express, { type Request, type RequestHandler } from 'express';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { CorralError } from '../util/errors.js';
import { normaliseMac } from '../nodes/inventory.js';
import { requireNodeCredential } from '../nodes/credentials.js';
import { zodToCorral } from '../api/errors.js';
import { imagePath } from '../images/registry.js';
import {
  adoptHostKey,
  authorise,
  planFile,
  planReadable,
  recordBooted,
  recordProgress,
  recordResult,
} from './deploy.js';
import type { HostKeyPins } from '../remote/host-keys.js';
import type { BootActivitySink } from '../boot/activity.js';
import { sendFile } from '../boot/send-file.js';
import { clientIp } from '../util/client-ip.js';
import type { ImagesP2p } from '../images/p2p.js';
import { planForArrival, renderEnv, type DeployPlan } from './plan.js';
import type { Arrival } from '../http-bind.js';

export interface DeployBootDeps {
  repos: Repos;
  dataDir: string;
  logger: Logger;
  installerTools: () => string | undefined;
  /** Host key pins (remote/host-keys.ts): the deployment's host key is served from, and adopted into, them. */
  hostKeys: HostKeyPins;
  /** The boot timeline (issue 22): image downloads and installer reports. */
  activity?: BootActivitySink;
  /** Peer-to-peer downloads (images/p2p.ts): adds the torrent's variables to plan.env for a wave. */
  p2p?: Pick<ImagesP2p, 'planEnv'>;
  /**
   * The family a request came in on and the master's URL in it (http-bind.ts arrivalOf): plan files name
   * the master as the installer reached it (issue 18). Absent: served as rendered (http.publicUrl).
   */
  arrival?: (req: Request) => Arrival;
}

const Progress = z.object({
  token: z.string().max(128),
  phase: z.string().regex(/^[a-z-]{1,32}$/),
  percent: z.coerce.number().min(0).max(100).optional(),
  bytes: z.coerce.number().int().min(0).optional(),
  bytesPerSec: z.coerce.number().min(0).optional(),
});
const Result = z.object({
  token: z.string().max(128),
  ok: z.boolean(),
  reason: z.string().max(2000).optional(),
  logTail: z.string().max(16_000).optional(),
});
const Booted = z.object({
  token: z.string().max(128),
  hostname: z.string().max(253).optional(),
  kernel: z.string().max(128).optional(),
});

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw zodToCorral(r.error);
  return r.data;
}

function macParam(req: Request): string {
  const raw = req.params['mac'];
  const mac = normaliseMac(typeof raw === 'string' ? raw : '');
  if (!mac) throw new CorralError('MAC_INVALID', `'${String(raw)}' is not a MAC address`);
  return mac;
}

/** The MAC of the URL, once the request has shown that node's credential. */
function nodeMac(repos: Repos, req: Request): string {
  const mac = macParam(req);
  requireNodeCredential(repos, mac, req.headers);
  return mac;
}

export interface DeployNodeHandlers {
  image: RequestHandler[];
  installerTools: RequestHandler[];
  planFile: RequestHandler[];
  progress: RequestHandler[];
  result: RequestHandler[];
  booted: RequestHandler[];
}

export function deployNodeHandlers(deps: DeployBootDeps): DeployNodeHandlers {
  const { repos } = deps;
  const log = deps.logger.child({ module: 'deploy' });
  const json = express.json({ limit: '64kb' });

  const image: RequestHandler = (req, res) => {
    const sha = String(req.params['sha256'] ?? '');
    const image = /^[0-9a-f]{64}$/.test(sha) ? repos.images.get(sha) : undefined;
    const file = image ? imagePath(deps.dataDir, image) : undefined;
    if (!file || !existsSync(file)) throw new CorralError('IMAGE_NOT_FOUND', `no image with sha256 ${sha}`);
    log.info({ image: image?.name, range: req.headers.range, ip: clientIp(req) }, 'serving image');
    deps.activity?.watchFetch(req, res);
    sendFile(res, file, log);
  };

  const installerTools: RequestHandler = (_req, res) => {
    const file = deps.installerTools();
    if (!file) throw new CorralError('NODE_IMAGE_MISSING', 'installer tools not built yet');
    sendFile(res, file, log);
  };

  const planFileHandler: RequestHandler = (req, res) => {
    const mac = nodeMac(repos, req);
    const d = planReadable(repos, mac, req.query['deployment']);
    const name = String(req.params['file']);
    let text = planFile(d, name, deps.hostKeys.deployKeyPath(mac));
    // Decided now, not when the deploy was made: the rest of the wave has its deployments by now.
    if (text !== undefined && name === 'plan.env' && deps.p2p) text += renderEnv(deps.p2p.planEnv(d));
    if (text === undefined) throw new CorralError('NOT_FOUND', `no plan file ${String(req.params['file'])}`);
    const arrival = deps.arrival?.(req);
    if (arrival) text = planForArrival(d.plan as unknown as DeployPlan, name, text, arrival);
    res.type('text/plain; charset=utf-8').setHeader('Cache-Control', 'no-store');
    res.send(text);
  };

  const progress: RequestHandler = (req, res) => {
    const body = parse(Progress, req.body);
    const d = recordProgress(repos, authorise(repos, nodeMac(repos, req), body.token), body);
    deps.activity?.record(d.nodeMac, { kind: 'deploy', event: 'progress', phase: body.phase });
    res.json({ status: d.status });
  };

  const result: RequestHandler = (req, res) => {
    const body = parse(Result, req.body);
    const d = recordResult(repos, authorise(repos, nodeMac(repos, req), body.token), body);
    log.info({ mac: d.nodeMac, ok: body.ok, reason: body.reason }, 'installer result');
    if (body.ok && d.status === 'installed') {
      try {
        if (adoptHostKey(deps.hostKeys, d))
          log.info({ mac: d.nodeMac }, "pinned the installed system's host key");
      } catch (err) {
        // The install stands; the node is then refused (old pin) until an operator redeploys.
        log.error({ err, mac: d.nodeMac }, "could not pin the installed system's host key");
      }
    }
    deps.activity?.record(d.nodeMac, {
      kind: 'deploy',
      event: 'result',
      ok: body.ok,
      ...(body.reason ? { reason: body.reason } : {}),
    });
    res.json({ status: d.status });
  };

  const booted: RequestHandler = (req, res) => {
    const body = parse(Booted, req.body);
    const ip = clientIp(req);
    const d = recordBooted(repos, authorise(repos, nodeMac(repos, req), body.token), {
      hostname: body.hostname,
      ip,
    });
    log.info({ mac: d.nodeMac, hostname: body.hostname, ip }, 'deployed node booted from disk');
    deps.activity?.record(d.nodeMac, { kind: 'deploy', event: 'booted' });
    res.json({ status: d.status });
  };
  return {
    image: [image],
    installerTools: [installerTools],
    planFile: [planFileHandler],
    progress: [json, progress],
    result: [json, result],
    booted: [json, booted],
  };
}
