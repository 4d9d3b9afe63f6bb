/**
 * OS deployment: the operator's `deploy` (node → deploying, a deployment row with a rendered plan and a
 * per-deployment token), then the installer's reports (progress, result) and the installed system's
 * first-boot report (→ deployed). Node state changes go through lifecycle.ts only.
 *
 * Deployment status: pending → installing → installed → booted, or failed at any point (the node then
 * goes to `failed` with the reason). A node that is `failed` can be deployed again (retry).
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { FrozenConfig } from '../config.js';
import { publicUrl } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { NodeRecord } from '../store/nodes.js';
import type { DeploymentRecord } from '../store/deployments.js';
import { transitionIn } from '../nodes/lifecycle.js';
import { CorralError } from '../util/errors.js';
import { findImage } from '../images/registry.js';
import { DEFAULT_LAYOUT, type Layout } from './config.js';
import { buildPlan, HOST_KEY_FILE, renderEnv } from './plan.js';
import { generateHostKey } from '../sharedroot/identity.js';
import type { HostKeyPins } from '../remote/host-keys.js';

export interface DeployRequest {
  image: string;
  layout?: string | undefined;
  actor: string | null;
}

export function resolveLayout(
  config: FrozenConfig,
  name: string | undefined,
): { name: string; layout: Layout } {
  const wanted = name ?? config.deploy.defaultLayout;
  const configured = config.deploy.layouts[wanted];
  if (configured) return { name: wanted, layout: { ...configured } };
  if (wanted === 'default') return { name: wanted, layout: DEFAULT_LAYOUT };
  throw new CorralError(
    'LAYOUT_UNKNOWN',
    `no disk layout named '${wanted}' (configured: ${['default', ...Object.keys(config.deploy.layouts)].join(', ')})`,
  );
}

/**
 * The SSH host key of the system about to be installed, made on the master (ssh-keygen, as for diskless
 * nodes) so the master knows it before the node ever answers: exec and monitoring pin it from the first
 * connection, with no trust on first use. The private key waits in a file (0600, in a 0700 directory),
 * never in the database: the plan only names it, and boot-routes.ts serves it with the node's credential.
 * Returns the public key line.
 */
export async function createDeployHostKey(pins: HostKeyPins, mac: string): Promise<string> {
  const key = pins.deployKeyPath(mac);
  await generateHostKey(key, 'corral-deploy');
  return readFileSync(`${key}.pub`, 'utf8');
}

/** Moves the node to `deploying` with a fresh deployment; the caller then tries to reboot it. */
export function startDeploy(
  repos: Repos,
  config: FrozenConfig,
  node: NodeRecord,
  req: DeployRequest,
  sshKeys: readonly string[],
  hostKeyPub?: string,
): DeploymentRecord {
  const image = findImage(repos, req.image);
  const { name: layoutName, layout } = resolveLayout(config, req.layout);
  const token = randomBytes(16).toString('hex');
  const plan = buildPlan({
    node,
    image,
    layoutName,
    layout,
    baseUrl: publicUrl(config),
    token,
    rootUuid: randomUUID(),
    sshKeys,
    kernelArgs: config.deploy.kernelArgs,
    hostKeyPub,
  });
  return repos.store.write((journal) => {
    const fresh = repos.nodes.get(node.mac);
    if (!fresh) throw new CorralError('NODE_NOT_FOUND', `no node with MAC ${node.mac}`);
    // A node already deploying is re-planned (new token: the old installer's reports are refused).
    if (fresh.state === 'deploying') {
      const prev = repos.deployments.latestFor(node.mac);
      if (prev && prev.status !== 'failed' && prev.status !== 'booted') {
        repos.deployments.patchIn(journal, prev.id, {
          status: 'failed',
          message: 'superseded by a new deploy',
          finished: true,
        });
      }
    }
    transitionIn(repos, journal, fresh, {
      to: 'deploying',
      reason: `deploy ${image.name} (layout ${layoutName})`,
      actor: req.actor,
      data: { image: image.name, layout: layoutName },
    });
    repos.nodes.patchIn(journal, node.mac, { image: image.sha256 });
    const d = repos.deployments.insertIn(journal, {
      nodeMac: node.mac,
      imageSha256: image.sha256,
      layout: layoutName,
      plan: plan as unknown as Record<string, unknown>,
      token,
    });
    repos.events.appendIn(journal, {
      nodeMac: node.mac,
      kind: 'deploy.started',
      message: `${fresh.name}: deploying ${image.name} to ${plan.env['DISK']} (layout ${layoutName})`,
      actor: req.actor,
      data: { deployment: d.id, image: image.name, disk: plan.env['DISK'], layout: layoutName },
    });
    return d;
  });
}

/** The node's current deployment if `token` is its token (constant-time compare), else DEPLOY_TOKEN_INVALID. */
export function authorise(repos: Repos, mac: string, token: unknown): DeploymentRecord {
  const d = repos.deployments.latestFor(mac);
  const given = Buffer.from(typeof token === 'string' ? token : '');
  const want = Buffer.from(d?.token ?? '');
  if (!d || given.length !== want.length || !timingSafeEqual(given, want)) {
    throw new CorralError('DEPLOY_TOKEN_INVALID', `no current deployment of ${mac} with that token`);
  }
  return d;
}

/**
 * The deployment whose plan the node may read: its current one, only while pending or installing (the
 * plan carries the deployment's token, which must not outlive the install), and the one its installer
 * was booted for when it names it (`corral.deploy=`), so a superseded installer gets no newer plan.
 */
export function planReadable(repos: Repos, mac: string, deployment: unknown): DeploymentRecord {
  const d = repos.deployments.latestFor(mac);
  if (!d) throw new CorralError('DEPLOY_NOT_ACTIVE', `${mac} has no deployment`);
  if (deployment !== undefined && deployment !== '' && String(deployment) !== String(d.id)) {
    throw new CorralError(
      'DEPLOY_NOT_ACTIVE',
      `deployment ${String(deployment).slice(0, 20)} of ${mac} is not current (${d.id} is)`,
    );
  }
  if (d.status !== 'pending' && d.status !== 'installing') {
    throw new CorralError(
      'DEPLOY_NOT_ACTIVE',
      `deployment ${d.id} is ${d.status}: its plan is no longer served`,
    );
  }
  return d;
}

/**
 * A file of the plan. The host key's private half (HOST_KEY_FILE) is read from `hostKeyPath` (the
 * waiting key, HostKeyPins.deployKeyPath), and only if its public half is the one this plan carries: an
 * installer never gets a key other than the one the master will pin.
 */
export function planFile(d: DeploymentRecord, name: string, hostKeyPath?: string): string | undefined {
  const plan = d.plan as unknown as { env: Record<string, string>; files: Record<string, string> };
  if (name === 'plan.env') return renderEnv(plan.env);
  if (name === HOST_KEY_FILE) {
    const pub = plan.files[`${HOST_KEY_FILE}.pub`];
    if (!pub || !hostKeyPath || !existsSync(`${hostKeyPath}.pub`)) return undefined;
    return readFileSync(`${hostKeyPath}.pub`, 'utf8') === pub ? readFileSync(hostKeyPath, 'utf8') : undefined;
  }
  return Object.hasOwn(plan.files, name) ? plan.files[name] : undefined;
}

/**
 * The installer reported success: the deployment's host key is on the node's disk and becomes the key
 * the master pins for it (HostKeyPins.adoptDeployKey). Returns whether it did; a plan without a key (made
 * before Corral made keys for disk installs) leaves the node to trust on first use.
 */
export function adoptHostKey(pins: HostKeyPins, d: DeploymentRecord): boolean {
  const pub = (d.plan as { files?: Record<string, string> }).files?.[`${HOST_KEY_FILE}.pub`];
  return pub ? pins.adoptDeployKey(d.nodeMac, pub) : false;
}

export interface ProgressReport {
  phase: string;
  percent?: number | undefined;
  bytes?: number | undefined;
  bytesPerSec?: number | undefined;
}

export function recordProgress(repos: Repos, d: DeploymentRecord, p: ProgressReport): DeploymentRecord {
  if (d.status === 'failed' || d.status === 'booted') {
    throw new CorralError(
      'DEPLOY_NOT_ACTIVE',
      `deployment ${d.id} is ${d.status}; the installer should stop`,
    );
  }
  return repos.store.write((journal) => {
    const percent = Math.max(0, Math.min(100, Math.round(p.percent ?? d.percent)));
    const updated = repos.deployments.patchIn(journal, d.id, {
      status: 'installing',
      phase: p.phase,
      percent,
      ...(p.bytes !== undefined ? { bytes: p.bytes } : {}),
      ...(p.bytesPerSec !== undefined ? { bytesPerSec: Math.round(p.bytesPerSec) } : {}),
    });
    // An event per phase and per quarter of the image, not per report: the log stays readable.
    if (p.phase !== d.phase || Math.floor(percent / 25) !== Math.floor(d.percent / 25)) {
      repos.events.appendIn(journal, {
        nodeMac: d.nodeMac,
        kind: 'deploy.progress',
        message: `${p.phase} ${percent}%${p.bytesPerSec ? ` at ${(p.bytesPerSec / 2 ** 20).toFixed(1)} MiB/s` : ''}`,
        actor: 'installer',
        data: {
          deployment: d.id,
          phase: p.phase,
          percent,
          bytes: p.bytes ?? null,
          bytesPerSec: p.bytesPerSec ?? null,
        },
      });
    }
    return updated;
  });
}

export interface ResultReport {
  ok: boolean;
  reason?: string | undefined;
  logTail?: string | undefined;
}

/**
 * Installer finished: success → `installed` (next boot is from disk); failure → node `failed`.
 * A deployment that already ended (the watchdog failed it, or it booted) keeps its outcome: a late
 * report would flip it to `installed` under a `failed` node, and the first boot could then not move the
 * node on. Such a report is recorded as an event and refused (DEPLOY_NOT_ACTIVE). A repeated success
 * (the installer retries when the master's answer was lost) changes nothing.
 */
export function recordResult(repos: Repos, d: DeploymentRecord, r: ResultReport): DeploymentRecord {
  const current = repos.deployments.get(d.id) ?? d;
  if (current.status === 'failed' || current.status === 'booted') {
    const outcome = r.ok ? 'success' : `failure (${r.reason ?? 'installer failed'})`;
    repos.events.append({
      nodeMac: d.nodeMac,
      kind: 'deploy.late-result',
      severity: 'warning',
      message: `installer reported ${outcome} for deployment ${d.id}, which is already ${current.status}: ignored`,
      actor: 'installer',
      data: { deployment: d.id, status: current.status, ok: r.ok, reason: r.reason ?? null },
    });
    throw new CorralError(
      'DEPLOY_NOT_ACTIVE',
      `deployment ${d.id} is already ${current.status}${current.message ? ` (${current.message})` : ''}; deploy the node again`,
    );
  }
  if (r.ok && current.status === 'installed') return current;
  if (r.ok) {
    return repos.store.write((journal) => {
      const u = repos.deployments.patchIn(journal, d.id, {
        status: 'installed',
        phase: 'installed',
        percent: 100,
        logTail: r.logTail ?? null,
      });
      repos.events.appendIn(journal, {
        nodeMac: d.nodeMac,
        kind: 'deploy.installed',
        message: 'image installed; rebooting from disk',
        actor: 'installer',
        data: { deployment: d.id },
      });
      return u;
    });
  }
  return failDeployment(repos, d, r.reason ?? 'installer failed', r.logTail ?? null, 'installer');
}

export function failDeployment(
  repos: Repos,
  d: DeploymentRecord,
  reason: string,
  logTail: string | null,
  actor: string,
): DeploymentRecord {
  return repos.store.write((journal) => {
    const u = repos.deployments.patchIn(journal, d.id, {
      status: 'failed',
      message: reason,
      logTail,
      finished: true,
    });
    const node = repos.nodes.get(d.nodeMac);
    if (node && node.state === 'deploying') {
      transitionIn(repos, journal, node, {
        to: 'failed',
        reason: `deploy failed: ${reason}`,
        actor,
        data: { deployment: d.id },
      });
    }
    repos.events.appendIn(journal, {
      nodeMac: d.nodeMac,
      kind: 'deploy.failed',
      severity: 'error',
      message: `deploy failed: ${reason}`,
      actor,
      data: { deployment: d.id, logTail },
    });
    return u;
  });
}

/**
 * The installed system booted from its disk and reported: deployment `booted`, node `deployed`. Once
 * only: the token is spent, so a replayed report is refused (DEPLOY_NOT_ACTIVE) and changes nothing.
 * The report's source address is never recorded as the node's (issue 14): in DHCP server mode the lease
 * already put it there; otherwise a different address is only noted in a warning event for an operator.
 */
export function recordBooted(
  repos: Repos,
  d: DeploymentRecord,
  info: { hostname?: string | undefined; ip: string | null },
): DeploymentRecord {
  const current = repos.deployments.get(d.id) ?? d;
  if (current.status === 'failed') {
    throw new CorralError(
      'DEPLOY_NOT_ACTIVE',
      `deployment ${d.id} is failed (${current.message ?? 'no reason'})`,
    );
  }
  if (current.status === 'booted') {
    throw new CorralError('DEPLOY_NOT_ACTIVE', `deployment ${d.id} already reported its first boot`);
  }
  if (current.status !== 'installed') {
    throw new CorralError('CONFLICT', `deployment ${d.id} is ${current.status}, not installed`);
  }
  return repos.store.write((journal) => {
    const u = repos.deployments.patchIn(journal, d.id, { status: 'booted', finished: true });
    const node = repos.nodes.get(d.nodeMac);
    if (node) {
      repos.nodes.patchIn(journal, node.mac, { lastSeenAt: repos.store.now().toISOString() });
      if (info.ip && node.ip !== info.ip) {
        repos.events.appendIn(journal, {
          nodeMac: node.mac,
          kind: 'node.address-mismatch',
          severity: 'warning',
          message: `${node.name} reported its first boot from ${info.ip}, not its recorded ${node.ip ?? '(none)'}; the record is kept (an operator changes it with PATCH /api/v1/nodes/${node.name} {ip})`,
          actor: 'agent',
          data: { recorded: node.ip, reportedFrom: info.ip, deployment: d.id },
        });
      }
      transitionIn(repos, journal, node, {
        to: 'deployed',
        reason: `booted from disk${info.hostname ? ` as ${info.hostname}` : ''}`,
        actor: 'agent',
        data: { deployment: d.id },
      });
    }
    return u;
  });
}

/** Fails deployments with no word from the node for `stallSeconds` (network cut, hung installer). */
export function failStalled(repos: Repos, config: FrozenConfig, now: Date): number {
  let n = 0;
  for (const d of repos.deployments.active()) {
    const idle = (now.getTime() - Date.parse(d.updatedAt)) / 1000;
    if (idle < config.deploy.stallSeconds) continue;
    failDeployment(
      repos,
      d,
      `no report from the node for ${Math.round(idle)} s while ${d.status} (network cut or node down?)`,
      d.logTail,
      'watchdog',
    );
    n++;
  }
  return n;
}
