/**
 * An app → the docker CLI arguments that make the engine run it (pure: spec in, argv out; golden-tested).
 * Containers use the node's network (`--network host`): each instance listens on its node's address, which
 * is what HAProxy balances over, and Corral needs neither overlay networks nor docker's iptables rules on
 * the node. Two instances of an app with ports cannot share a node then, hence `--replicas-max-per-node 1`.
 * An app with `network: bridge` stays on dockerd's default bridge instead and publishes each port in host
 * mode without a published port: the engine picks a free one per task on its node (the task's
 * `Status.PortStatus`), so instances share nodes and still each listen on a node address. Not the ingress
 * routing mesh: that would answer on every node's port and hide which instances are healthy
 * (docs/decisions.md).
 * The version a container runs is its label `corral.version`, so each task says which version it is.
 */
import type { AppSpec } from './app-spec.js';

export const VERSION_LABEL = 'corral.version';
export const APP_LABEL = 'corral.app';
/** Service label while the operator holds a rollout (pause). */
export const PAUSED_LABEL = 'corral.paused';
/** Service label from a pause until the held rollout settles: the engine's failure action is `pause` then. */
export const HELD_LABEL = 'corral.held';
/**
 * The batch delay that holds a paused rollout. Swarm has no pause for an update in progress (its
 * UpdateStatus `paused` only follows a failed task, with failure action `pause`), and every change to a
 * service restarts its updater from the current tasks: with this delay each update worker replaces at most
 * the one batch it takes at once, then waits. One year: longer than any operator's pause.
 */
export const HOLD_DELAY = '8760h';

/** POSIX shell quoting of one word: the argv goes over SSH to a remote shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** Swarm node labels Corral keeps (docker node update --label-add): placement constraints match them. */
export function nodeLabels(node: {
  mac: string;
  name: string;
  role: string | null;
  tags: readonly string[];
}): Record<string, string> {
  const labels: Record<string, string> = { 'corral.mac': node.mac, 'corral.name': node.name };
  if (node.role) labels['corral.role'] = node.role;
  for (const t of node.tags) labels[`corral.tag.${t}`] = 'true';
  return labels;
}

export function constraintsOf(spec: AppSpec): string[] {
  // Every swarm node is an engine node Corral joined; placement narrows that to a role or a tag.
  const c: string[] = [];
  if (spec.placement.role) c.push(`node.labels.corral.role==${spec.placement.role}`);
  if (spec.placement.tag) c.push(`node.labels.corral.tag.${spec.placement.tag}==true`);
  return c;
}

function healthArgs(spec: AppSpec): string[] {
  const h = spec.healthCheck;
  if (!h) return ['--no-healthcheck'];
  return [
    // The CLI takes the CMD-SHELL form: the image needs /bin/sh (the base image and busybox have it).
    '--health-cmd',
    shellJoin(h.command),
    '--health-interval',
    `${h.intervalSeconds}s`,
    '--health-timeout',
    `${h.timeoutSeconds}s`,
    '--health-retries',
    String(h.retries),
    '--health-start-period',
    `${h.startPeriodSeconds}s`,
  ];
}

/**
 * The engine's failure action. While a rollout is held (paused, or resumed and not yet settled) a
 * `rollback` is Corral's to do, not the engine's: a pause and a resume are service updates, and the engine
 * rolls back to the spec before its last update, which is then the same version with another delay.
 */
function failureAction(spec: AppSpec, held: boolean): string {
  return held && spec.update.failureAction === 'rollback' ? 'pause' : spec.update.failureAction;
}

/** Restart, update and rollback policy: the same flags on create and on update (they replace). */
function policyArgs(spec: AppSpec): string[] {
  const u = spec.update;
  return [
    '--replicas',
    String(spec.instances),
    '--stop-grace-period',
    `${spec.stopGraceSeconds}s`,
    '--restart-condition',
    spec.restart.condition,
    '--restart-delay',
    `${spec.restart.delaySeconds}s`,
    '--restart-max-attempts',
    String(spec.restart.maxAttempts),
    '--update-parallelism',
    String(u.parallelism),
    '--update-delay',
    `${u.delaySeconds}s`,
    '--update-failure-action',
    failureAction(spec, false),
    '--update-monitor',
    `${u.monitorSeconds}s`,
    '--update-order',
    u.order,
    // A rollback is the way back to what worked: as fast as the update, and it must not itself roll back.
    '--rollback-parallelism',
    String(u.parallelism),
    '--rollback-delay',
    '0s',
    '--rollback-monitor',
    `${u.monitorSeconds}s`,
    '--rollback-failure-action',
    'pause',
  ];
}

/** Host networking: a port is the node's, so one instance per node; bridge ports are per task. */
function onePerNode(spec: AppSpec): boolean {
  return spec.network === 'host' && spec.ports.length > 0;
}

/** `--publish` with no `published=`: the engine picks a free host port for each task on its node. */
function networkArgs(spec: AppSpec): string[] {
  if (spec.network === 'host') return ['--network', 'host'];
  return spec.ports.flatMap((p) => ['--publish', `mode=host,target=${p.port},protocol=${p.protocol}`]);
}

export function serviceCreateArgs(spec: AppSpec, version: number, image: string): string[] {
  return [
    'service',
    'create',
    '--detach',
    '--name',
    spec.name,
    ...networkArgs(spec),
    '--label',
    `${APP_LABEL}=${spec.name}`,
    '--container-label',
    `${APP_LABEL}=${spec.name}`,
    '--container-label',
    `${VERSION_LABEL}=${version}`,
    ...constraintsOf(spec).flatMap((c) => ['--constraint', c]),
    '--placement-pref',
    'spread=node.id',
    ...(onePerNode(spec) ? ['--replicas-max-per-node', '1'] : []),
    ...Object.entries(spec.env)
      .sort(([a], [b]) => a.localeCompare(b))
      .flatMap(([k, v]) => ['--env', `${k}=${v}`]),
    ...healthArgs(spec),
    ...policyArgs(spec),
    image,
    ...(spec.command ?? []),
  ];
}

/**
 * The update from `prev` to `next`: flags that replace (policy, image, args, health) plus the add/remove
 * pairs docker needs for lists (env, constraints). Only a changed version label makes the engine replace
 * tasks when nothing else in the containers changed; an unchanged version (instances, policy) does not roll.
 */
export function serviceUpdateArgs(
  prev: AppSpec,
  next: AppSpec,
  prevVersion: number,
  version: number,
  image: string,
): string[] {
  const args = ['service', 'update', '--detach'];
  if (version !== prevVersion) {
    args.push('--container-label-add', `${VERSION_LABEL}=${version}`);
  }
  args.push('--image', image);
  // `--args` is one shell-words string (docker CLI ShellWordsOpt); empty keeps the image's own command.
  args.push('--args', next.command ? shellJoin(next.command) : '');
  for (const k of Object.keys(prev.env).sort()) if (!(k in next.env)) args.push('--env-rm', k);
  for (const [k, v] of Object.entries(next.env).sort(([a], [b]) => a.localeCompare(b))) {
    if (prev.env[k] !== v) args.push('--env-add', `${k}=${v}`);
  }
  const was = new Set(constraintsOf(prev));
  const now = new Set(constraintsOf(next));
  for (const c of was) if (!now.has(c)) args.push('--constraint-rm', c);
  for (const c of now) if (!was.has(c)) args.push('--constraint-add', c);
  // The network and the published ports are never updated (that would take `--network-rm`/`--publish-rm`
  // and `-add` pairs): Apps.put refuses a change of `network`, and of a bridge app's ports.
  args.push('--replicas-max-per-node', onePerNode(next) ? '1' : '0');
  args.push(...healthArgs(next), ...policyArgs(next), next.name);
  return args;
}

/**
 * Pause or resume the rollout in progress: only the update delay, the failure action and Corral's labels
 * change, so no task is replaced by this update itself (the engine restarts its updater, which replaces at
 * most one batch per worker before the delay: docs/apps.md has what was measured).
 */
export function holdArgs(spec: AppSpec, hold: 'pause' | 'resume'): string[] {
  return [
    'service',
    'update',
    '--detach',
    '--update-delay',
    hold === 'pause' ? HOLD_DELAY : `${spec.update.delaySeconds}s`,
    '--update-failure-action',
    failureAction(spec, true),
    '--label-add',
    `${HELD_LABEL}=true`,
    ...(hold === 'pause' ? ['--label-add', `${PAUSED_LABEL}=true`] : ['--label-rm', PAUSED_LABEL]),
    spec.name,
  ];
}

/** After a held rollout settles: the declared failure action again, and Corral's hold labels gone. */
export function releaseArgs(spec: AppSpec): string[] {
  return [
    'service',
    'update',
    '--detach',
    '--update-delay',
    `${spec.update.delaySeconds}s`,
    '--update-failure-action',
    failureAction(spec, false),
    '--label-rm',
    HELD_LABEL,
    '--label-rm',
    PAUSED_LABEL,
    spec.name,
  ];
}
