/**
 * The node-facing surface: every HTTP route that firmware (iPXE), the node environment's agent, the
 * installer, diskless initramfs and deployed nodes call: all of /boot, and enlistment and node metrics
 * under /api/v1. None of them can log in as a user, so each route says here, in NODE_ROUTES, who calls it
 * and what it checks instead. This is the only file that mounts a node-facing route: a feature adds one
 * as a row here, with its handler in its own folder.
 *
 * `/boot/ipxe` is one handler: it gathers the facts of the request, asks the boot providers in BOOT_ORDER
 * for a script (decision.ts, pure), renders it and records the step in the node's boot timeline.
 * docs/boot-surface.md follows one request through these files.
 */
import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Router } from 'express';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FrozenConfig } from '../config.js';
import { publicUrl } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { NodeRecord } from '../store/nodes.js';
import type { Logger } from '../util/logger.js';
import { renderTemplate } from '../util/templates.js';
import { clientIp } from '../util/client-ip.js';
import { arrivalOf, baseUrlFor, ipv6BaseUrl, type Arrival } from '../http-bind.js';
import { ipv6NodeArg } from '../dhcp6/node-address.js';
import { normaliseMac } from '../nodes/inventory.js';
import type { HostKeyPins } from '../remote/host-keys.js';
import type { SharedRoots } from '../sharedroot/service.js';
import type { Monitor } from '../monitor/monitor.js';
import { nodeMetricsHandlers } from '../api/metrics.js';
import { EnlistGuard, type EnlistStats } from '../nodes/enlist-guard.js';
import { enlistHandlers } from '../nodes/enlist-routes.js';
import { sharedRootBootProvider } from '../sharedroot/boot-provider.js';
import { sharedRootNodeHandlers } from '../sharedroot/boot-routes.js';
import { deployBootProvider, type DeployBootFacts } from '../deploy/boot-provider.js';
import { deployNodeHandlers } from '../deploy/boot-routes.js';
import type { BootActivitySink } from './activity.js';
import { diskBootProvider, discoveryBootProvider } from './core-providers.js';
import { decideBoot, type BootDecision, type BootProvider } from './decision.js';
import { diskFailureReports, REFUSED_SCRIPT } from './local-fallback-report.js';
import { ipxeLocalSilent } from './local-fallback.js';
import { grubTemplate, parseGrubRequest, renderGrubBootstrap, renderGrubConfig } from './grub.js';
import type { ScriptBase } from './scripts.js';
import type { GeneratedFile } from '../tftp/server.js';
import { nodeImageSummary, type NodeImageStatus } from './node-image-builder.js';
import type { NodeImageFiles } from './node-image.js';
import { MemoryFiles } from './memory-files.js';
import { fillCfgSlot, HttpBootIsos, sendIso } from './http-boot-iso.js';
import { loaderFileNames } from '../dhcp/boot-files.js';
import { loaderHandler } from '../dhcp/loader-route.js';
import { cloudInitHandler } from '../cloudinit/node-routes.js';
import type { CloudInit } from '../cloudinit/service.js';
import type { ImagesP2p } from '../images/p2p.js';
import { p2pNodeHandlers } from '../images/p2p-routes.js';

/** How a node-facing route is authorised, in place of a user's login. */
export type NodeRouteAuth =
  /** Anyone may ask: boot material and scripts that carry no secret. */
  | 'none'
  /** `Authorization: Bearer <node credential>`, issued at enlistment (nodes/credentials.ts, issue 14). */
  | 'node credential'
  /** The node credential and the deployment's token (in the plan's node.conf), for the live deployment only. */
  | 'node credential + deployment token'
  /** The node credential, and only from the address Corral recorded for the node (lease or enlistment). */
  | 'node credential + recorded address'
  /** Only from the address Corral recorded for the node (its agent holds no credential there). */
  | 'recorded address'
  /** The node credential, or the node's own leased or recorded address (cloud-init's fetcher sends none). */
  | 'node credential, or recorded address'
  /**
   * A new MAC needs nothing (rate-limited, and a credential is issued only to its leased/recorded address);
   * a known MAC needs its node credential (nodes/enlist.ts).
   */
  | 'node credential, or none for a new MAC'
  /**
   * Believed once, and only within 10 minutes after this master told the MAC to boot its disk
   * (boot/local-fallback.ts): a running deployed node cannot be failed by a stranger's request.
   */
  | 'a local-disk answer to the MAC in the last 10 minutes';

export interface NodeRoute {
  method: 'GET' | 'POST';
  /** The full path: http.ts mounts the surface at the root, before the API. */
  path: string;
  caller: string;
  auth: NodeRouteAuth;
  /**
   * Behind the HA write gate (a backup answers 503 NOT_PRIMARY): the /api/v1 writes, as when they were
   * API routes. The /boot reports are not (they never were): nodes reach only the VIP holder.
   */
  haGate?: true;
}

/** Every node-facing route. docs/boot-surface.md shows this table; a unit test keeps them equal. */
export const NODE_ROUTES = {
  ipxe: {
    method: 'GET',
    path: '/boot/ipxe',
    caller: 'iPXE (DHCP boot file URL, script retries)',
    auth: 'none',
  },
  localFailed: {
    method: 'GET',
    path: '/boot/local-failed',
    caller: "iPXE (a deployed BIOS node whose disk did not boot: local.hbs's sanboot failed; issue 18)",
    auth: 'a local-disk answer to the MAC in the last 10 minutes',
  },
  loader: {
    method: 'GET',
    path: '/boot/loader/:name',
    caller: 'UEFI HTTP boot firmware (DHCP boot file URL, issue 18)',
    auth: 'none',
  },
  httpBootIso: {
    method: 'GET',
    path: '/boot/http/:mac/corral.iso',
    caller:
      'UEFI HTTP boot firmware, Secure Boot chain (DHCP boot file URL; RAM-disk ISO: shim, GRUB, its config; issue 18)',
    auth: 'none',
  },
  kernel: {
    method: 'GET',
    path: '/boot/node/vmlinuz',
    caller: 'iPXE (node environment scripts)',
    auth: 'none',
  },
  initrd: {
    method: 'GET',
    path: '/boot/node/initrd.img',
    caller: 'iPXE (node environment scripts)',
    auth: 'none',
  },
  installerTools: {
    method: 'GET',
    path: '/boot/installer/tools.img',
    caller: 'iPXE (install script)',
    auth: 'none',
  },
  image: {
    method: 'GET',
    path: '/boot/images/:sha256',
    caller: 'installer (OS image, by sha256)',
    auth: 'none',
  },
  torrent: {
    method: 'GET',
    path: '/boot/torrents/:sha256',
    caller: 'installer (the image by BitTorrent: tracker and web seed; issue 19)',
    auth: 'none',
  },
  p2pTools: {
    method: 'GET',
    path: '/boot/installer/p2p-tools.img',
    caller: 'installer (aria2c for a p2p download; issue 19)',
    auth: 'none',
  },
  // Before deployPlan: that route's :file would take `wave`.
  deployWave: {
    method: 'GET',
    path: '/boot/deploy/:mac/wave',
    caller: 'installer (seeds on while others of its wave still fetch the image)',
    auth: 'node credential',
  },
  deployPlan: {
    method: 'GET',
    path: '/boot/deploy/:mac/:file',
    caller: 'installer (plan.env, node.conf, rendered files)',
    auth: 'node credential',
  },
  deployProgress: {
    method: 'POST',
    path: '/boot/deploy/:mac/progress',
    caller: 'installer',
    auth: 'node credential + deployment token',
  },
  deployResult: {
    method: 'POST',
    path: '/boot/deploy/:mac/result',
    caller: 'installer',
    auth: 'node credential + deployment token',
  },
  deployBooted: {
    method: 'POST',
    path: '/boot/deploy/:mac/booted',
    caller: "installed system's first boot",
    auth: 'node credential + deployment token',
  },
  sharedRootIdentity: {
    method: 'GET',
    path: '/boot/sharedroot/:mac/identity.tar',
    caller: 'diskless initramfs (host keys, hostname)',
    auth: 'node credential + recorded address',
  },
  sharedRootBooted: {
    method: 'POST',
    path: '/boot/sharedroot/:mac/booted',
    caller: 'diskless initramfs',
    auth: 'node credential',
  },
  cloudInit: {
    method: 'GET',
    path: '/boot/cloud-init/:mac/:file',
    caller: "deployed node's cloud-init (NoCloud seedfrom; the installer for network-config)",
    auth: 'node credential, or recorded address',
  },
  enlist: {
    method: 'POST',
    path: '/api/v1/enlist',
    caller: 'node environment agent (discover, install, sharedroot)',
    auth: 'node credential, or none for a new MAC',
    haGate: true,
  },
  nodeMetrics: {
    method: 'POST',
    path: '/api/v1/nodes/:mac/metrics',
    caller: "deployed node's metrics agent",
    auth: 'recorded address',
    haGate: true,
  },
} as const satisfies Record<string, NodeRoute>;

export type NodeRouteId = keyof typeof NODE_ROUTES;

export interface NodeSurfaceDeps {
  repos: Repos;
  config: FrozenConfig;
  logger: Logger;
  /** The built node environment, or undefined while it is not built. */
  nodeImage: () => NodeImageFiles | undefined;
  /** Where its build stands, told to a waiting node (node-image-builder.ts). */
  nodeImageStatus?: () => NodeImageStatus;
  /** The boot timeline (issue 22): scripts served, file fetches, installer reports. */
  activity?: BootActivitySink;
  /** Shared roots (issue 6): diskless boot parameters and identities. */
  sharedRoots: SharedRoots;
  /** The installer tools initrd, once built. */
  installerTools: () => string | undefined;
  /** Host key pins: a deployment's host key is served from, and adopted into, them. */
  hostKeys: HostKeyPins;
  /** Performance monitoring (issue #10): node metric reports are accepted when given. */
  monitor?: Monitor;
  /** Peer-to-peer image downloads (issue 19): torrents, the wave's count, the plan's p2p variables. */
  p2p?: ImagesP2p | undefined;
  /** cloud-init (issue 16): the NoCloud data of deployed nodes. */
  cloudInit?: CloudInit | undefined;
  /** Enrolment rules (issue 16): a machine enlisting for the first time. */
  onDiscovered?: ((node: NodeRecord) => void) | undefined;
  /** High availability: the write gate of the routes marked haGate (ha/router.ts haWriteGate). */
  writeGate?: RequestHandler;
}

export interface NodeSurface {
  /** Mounted at the root of the HTTP app, before the API (http.ts). */
  router: Router;
  /** Enlistment's counters, shown in /api/v1/health. */
  enlistStats: () => EnlistStats;
  /** What network GRUB reads over TFTP (grub.ts): handed to the TFTP server as its generated files. */
  tftpFile: (relative: string, peer: string) => GeneratedFile | undefined;
}

/**
 * The boot providers, asked in this order (decision.ts): a deployed node boots its disk without waiting
 * for anything; then, once the node environment is built, a deploying node installs (or boots the disk
 * it was just given), a diskless node mounts its shared root, and everything else runs discovery.
 */
export function bootOrder(lookups: {
  deployments: DeployBootFacts;
  sharedRoots: Pick<SharedRoots, 'bootFor'>;
}): BootProvider[] {
  return [
    diskBootProvider,
    deployBootProvider(lookups.deployments),
    sharedRootBootProvider(lookups.sharedRoots),
    discoveryBootProvider,
  ];
}

/** The `attempt` of a retry chain (scripts.ts): a small count; anything else is a first attempt. */
function attemptParam(raw: unknown): number {
  const n = typeof raw === 'string' && /^\d{1,4}$/.test(raw) ? Number(raw) : 0;
  return Math.min(n, 1000);
}

const passOn: RequestHandler = (_req, _res, next) => next();

export function createNodeSurface(deps: NodeSurfaceDeps): NodeSurface {
  const log = deps.logger.child({ module: 'boot' });
  const v4BaseUrl = publicUrl(deps.config);
  /** Issue 18: the family a node's request came in on, for the URLs of its plan and cloud-init data. */
  const arrival = (req: Request): Arrival => arrivalOf(req.socket, v4BaseUrl, deps.config.dhcp6);
  const providers = bootOrder({
    deployments: { latestDeployment: (mac) => deps.repos.deployments.latestFor(mac) },
    sharedRoots: deps.sharedRoots,
  });
  /** Where the build stands, while there is no image to serve (a `ready` status then has nothing to add). */
  const notReady = (): string | undefined => {
    const s = deps.nodeImageStatus?.();
    return s && s.state !== 'ready' ? nodeImageSummary(s, Date.now()) : undefined;
  };

  /** The facts of a boot request (/boot/ipxe, or GRUB's config over TFTP) and the decision on them. */
  const decide = (
    mac: string | undefined,
    attempt: number,
    baseUrl: string,
    kernelArgs: string,
  ): BootDecision => {
    const ready = deps.nodeImage() !== undefined;
    const { onFailure, retries, retrySeconds } = deps.config.boot;
    return decideBoot(
      {
        mac,
        node: mac ? deps.repos.nodes.get(mac) : undefined,
        baseUrl,
        kernelArgs,
        attempt,
        failure: { onFailure, retries, retrySeconds },
        nodeImage: { ready, status: ready ? undefined : notReady() },
      },
      providers,
    );
  };
  const diskFailures = diskFailureReports({
    repos: deps.repos,
    logger: deps.logger,
    activity: deps.activity,
  });
  /** Logs the decision and puts it in the node's boot timeline. */
  const record = (
    mac: string,
    decision: BootDecision,
    attempt: number,
    ip: string,
    silent: boolean,
  ): void => {
    log.info({ mac, by: decision.by, template: decision.template, ip }, 'boot script');
    if (decision.by === 'disk') diskFailures.localServed(mac, silent, firmwarePath(mac));
    if (decision.by === 'fallback') {
      const { onFailure } = deps.config.boot;
      log.warn({ mac, attempts: attempt, onFailure, ip }, 'boot failed: fallback');
      deps.activity?.record(mac, { kind: 'fallback', action: onFailure, attempts: attempt, ip });
    } else {
      deps.activity?.record(mac, { kind: 'script', template: decision.template, ip });
    }
  };

  /** boot.kernelArgs, after the node's IPv6 address (`corral.ip=`, ipv6NodeArg) where it has one. */
  const nodeKernelArgs = (v6Arg: string | null): string =>
    v6Arg ? `${v6Arg} ${deps.config.boot.kernelArgs}` : deps.config.boot.kernelArgs;

  /** The firmware boot option the MAC last asked from (PXE or HTTP boot, per family), when known. */
  const firmwarePath = (mac: string): string | undefined => deps.activity?.firmwarePath?.(mac);

  const ipxe: RequestHandler = (req, res) => {
    res.type('text/plain; charset=utf-8').setHeader('Cache-Control', 'no-store');
    const mac = normaliseMac(typeof req.query['mac'] === 'string' ? req.query['mac'] : '');
    const attempt = attemptParam(req.query['attempt']);
    // Issue 18: URLs in the family the request came in on; over IPv6 the node keeps iPXE's address.
    const baseUrl = baseUrlFor(req.socket, v4BaseUrl, deps.config.dhcp6);
    const kernelArgs = nodeKernelArgs(ipv6NodeArg(clientIp(req), deps.config.dhcp6));
    // A node back this soon after an iPXE local answer (UEFI: `exit 1`) did not boot its disk: failed first.
    if (mac && attempt === 0) diskFailures.returned(mac, clientIp(req) ?? '', firmwarePath(mac));
    const decision = decide(mac, attempt, baseUrl, kernelArgs);
    // iPXE's local answer is silent on UEFI (it exits); BIOS sanboot reports through /boot/local-failed.
    if (mac) record(mac, decision, attempt, clientIp(req) ?? '', ipxeLocalSilent(req.query['platform']));
    res.send(renderTemplate(decision.template, decision.vars));
  };

  /** A believed report marks the node failed; the usual decision (ipxe) then gives it the node environment. */
  const localFailed: RequestHandler = (req, res, next) => {
    const mac = normaliseMac(typeof req.query['mac'] === 'string' ? req.query['mac'] : '');
    if (mac && diskFailures.report(mac, 'sanboot', clientIp(req) ?? '')) return next();
    res.type('text/plain; charset=utf-8').setHeader('Cache-Control', 'no-store');
    res.send(REFUSED_SCRIPT.ipxe);
  };

  /**
   * The Secure Boot chain's files over TFTP (grub.ts): network GRUB's bootstrap and per-node config (the
   * same decision as /boot/ipxe, recorded the same way, as a grub/ template), kernel and initrds.
   */
  const tftpFile = (relative: string, peer: string): GeneratedFile | undefined => {
    const r = parseGrubRequest(relative);
    if (!r) return undefined;
    switch (r.kind) {
      case 'bootstrap':
        return { data: Buffer.from(renderGrubBootstrap()) };
      case 'kernel':
      case 'initrd': {
        const image = deps.nodeImage();
        if (!image) return undefined;
        return { path: r.kind === 'kernel' ? image.kernelPath : image.initrdPath };
      }
      case 'installer-tools': {
        const tools = deps.installerTools();
        return tools ? { path: tools } : undefined;
      }
      case 'local-failed':
        if (!diskFailures.report(r.mac, 'grub', peer)) return { data: Buffer.from(REFUSED_SCRIPT.grub) };
        return tftpFile(`grub/node/${r.mac}/0.cfg`, peer);
      case 'node-cfg':
        return { data: Buffer.from(grubAnswer(r.mac, r.attempt, peer, false)) };
    }
  };

  /** The boot decision as network GRUB's config, logged and recorded (TFTP chain and HTTP boot ISO). */
  const grubAnswer = (mac: string, attempt: number, peer: string, silent: boolean): string => {
    if (attempt === 0) diskFailures.returned(mac, peer, firmwarePath(mac));
    // Issue 18: GRUB that asks over IPv6 (the signed chain from DHCPv6) gets the master's IPv6 URLs, and
    // the node environment keeps the address the firmware leased (corral.ip), as after iPXE over IPv6.
    const v6Arg = ipv6NodeArg(peer, deps.config.dhcp6);
    const baseUrl = v6Arg ? ipv6BaseUrl(deps.config.dhcp6, deps.config.http.port) : v4BaseUrl;
    const kernelArgs = nodeKernelArgs(v6Arg);
    const decision = decide(mac, attempt, baseUrl, kernelArgs);
    record(mac, { ...decision, template: grubTemplate(decision.template) }, attempt, peer, silent);
    const { onFailure, retries, retrySeconds } = deps.config.boot;
    const base: ScriptBase = {
      mac,
      baseUrl,
      kernelArgs,
      attempt,
      failure: { onFailure, retries, retrySeconds },
    };
    return renderGrubConfig(decision, base);
  };

  /**
   * UEFI HTTP boot's Secure Boot chain (http-boot-iso.ts): one ISO with shim, GRUB and the node
   * environment, streamed with this MAC's decision as its grub.cfg. EDK2 sends HEAD before GET; only the
   * GET is a boot step (recorded). Without a built node environment there is no ISO: 503, and the
   * firmware goes on to its next boot entry.
   */
  const isos = new HttpBootIsos(join(deps.config.dataDir, 'http-boot'), log);
  const httpBootIso: RequestHandler = (req, res, next) => {
    const mac = normaliseMac(String(req.params['mac'] ?? ''));
    const image = deps.nodeImage();
    const tools = deps.installerTools();
    if (!mac || !image) {
      res
        .status(mac ? 503 : 404)
        .type('text/plain')
        .send(mac ? `${notReady() ?? 'the node environment is not built'}\n` : 'not a MAC address\n');
      return;
    }
    const { shimFile, grubFile } = deps.config.boot;
    const ip = clientIp(req) ?? '';
    isos
      .base({
        shim: shimFile,
        grub: grubFile,
        kernel: image.kernelPath,
        initrd: image.initrdPath,
        installerTools: tools,
      })
      .then((iso) => {
        const get = req.method === 'GET';
        // The ISO's GRUB has no network: its local answer cannot report a disk that did not boot.
        const cfg = get ? grubAnswer(mac, 0, ip, true) : '';
        if (get) {
          deps.activity?.watchFetch(req, res);
          log.info({ mac, ip, bytes: iso.size }, 'HTTP boot ISO');
        }
        return sendIso(req, res, iso, fillCfgSlot(cfg));
      })
      .catch(next);
  };

  // Kernel and initrd from memory: every booting machine fetches both (memory-files.ts says why).
  const memoryFiles = new MemoryFiles(log);
  const nodeFile =
    (pick: (f: NodeImageFiles) => string): RequestHandler =>
    (req, res) => {
      deps.activity?.watchFetch(req, res);
      const image = deps.nodeImage();
      const file = image ? pick(image) : undefined;
      if (!file || !existsSync(file)) {
        res
          .status(404)
          .type('text/plain')
          .send(`${notReady() ?? 'the node environment is not built: run `corral node-image build`'}\n`);
        return;
      }
      log.debug({ file, range: req.headers.range, ip: clientIp(req) }, 'serving node file');
      memoryFiles.serve(req, res, file);
    };

  const enlistGuard = new EnlistGuard({ repos: deps.repos, config: deps.config, logger: deps.logger });
  const deploy = deployNodeHandlers({
    repos: deps.repos,
    dataDir: deps.config.dataDir,
    logger: deps.logger,
    installerTools: deps.installerTools,
    hostKeys: deps.hostKeys,
    ...(deps.activity ? { activity: deps.activity } : {}),
    ...(deps.p2p ? { p2p: deps.p2p } : {}),
    arrival,
  });
  const p2p = deps.p2p
    ? p2pNodeHandlers({ p2p: deps.p2p, repos: deps.repos, logger: deps.logger })
    : undefined;
  const sharedRoot = sharedRootNodeHandlers({
    repos: deps.repos,
    logger: deps.logger,
    roots: deps.sharedRoots,
  });
  /** A request from a deployed node's running OS: its disk booted (boot/local-fallback.ts). */
  const osSign: RequestHandler = (req, _res, next) => {
    const mac = normaliseMac(String(req.params['mac'] ?? ''));
    if (mac) diskFailures.osSeen(mac);
    next();
  };
  const handlers: Record<NodeRouteId, (RequestHandler | ErrorRequestHandler)[]> = {
    ipxe: [ipxe],
    // A believed report marks the node failed; the usual decision then gives it the node environment.
    localFailed: [localFailed, ipxe],
    loader: [
      loaderHandler({
        dir: deps.config.boot.ipxeDir,
        names: loaderFileNames(deps.config.bootFiles, deps.config.boot),
        logger: deps.logger,
        ...(deps.activity ? { activity: deps.activity } : {}),
      }),
    ],
    httpBootIso: [httpBootIso],
    kernel: [nodeFile((f) => f.kernelPath)],
    initrd: [nodeFile((f) => f.initrdPath)],
    installerTools: deploy.installerTools,
    image: deploy.image,
    // Without the p2p feature (p2p.mode off) the torrent answers 404 and `wave` is an unknown plan file.
    torrent: p2p?.torrent ?? [passOn],
    deployWave: p2p?.wave ?? [passOn],
    p2pTools: p2p?.tools ?? [passOn],
    deployPlan: deploy.planFile,
    deployProgress: deploy.progress,
    deployResult: deploy.result,
    deployBooted: [osSign, ...deploy.booted],
    sharedRootIdentity: sharedRoot.identity,
    sharedRootBooted: sharedRoot.booted,
    // Without the cloud-init feature the path answers 404 like any unknown one.
    cloudInit: deps.cloudInit
      ? [
          osSign,
          cloudInitHandler({ cloudInit: deps.cloudInit, repos: deps.repos, logger: deps.logger, arrival }),
        ]
      : [passOn],
    enlist: enlistHandlers({
      guard: enlistGuard,
      logger: deps.logger,
      ...(deps.activity ? { activity: deps.activity } : {}),
      onDiscovered: deps.onDiscovered,
    }),
    // Without monitoring the path is no node route: on to the API, which asks for a login (as before).
    nodeMetrics: deps.monitor ? [osSign, ...nodeMetricsHandlers(deps.repos, deps.monitor)] : [passOn],
  };

  const router = express.Router();
  for (const [id, route] of Object.entries(NODE_ROUTES) as [NodeRouteId, NodeRoute][]) {
    const chain = handlers[id];
    // The gate goes last, after the body parsers and their refusals, as it sat in the API.
    const gated =
      route.haGate && deps.writeGate ? [...chain.slice(0, -1), deps.writeGate, ...chain.slice(-1)] : chain;
    if (route.method === 'GET') router.get(route.path, ...gated);
    else router.post(route.path, ...gated);
  }
  return { router, enlistStats: () => enlistGuard.stats(), tftpFile };
}
