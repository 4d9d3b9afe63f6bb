/**
 * Apps (issue 21): the declarations in the store, turned into swarm services on the engine, watched per
 * instance, and their healthy instances handed to HAProxy. One reconcile pass at a time (a timer, node
 * changes and API writes all ask for one); each pass is bounded by the SSH command timeout per command.
 */
import { zodToCorral } from '../api/errors.js';
import type { LoadBalancer } from '../lb/load-balancer.js';
import type { Repos } from '../store/repos.js';
import type { NodeRecord } from '../store/nodes.js';
import type { AppObservation } from '../store/apps.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { AppSpecSchema, versionedPart, type AppSpec } from './app-spec.js';
import type { AppsConfig } from './config.js';
import {
  HELD_LABEL,
  holdArgs,
  PAUSED_LABEL,
  releaseArgs,
  serviceCreateArgs,
  serviceUpdateArgs,
  VERSION_LABEL,
} from './docker-args.js';
import { mustRun, type Docker, type DockerResult } from './engine.js';
import { Swarm, type SwarmStatus } from './swarm.js';
import { instancesOf, type EngineTask, type InstanceView } from './tasks.js';

export interface UpdateStatus {
  state: string;
  message: string | null;
}

export interface AppView {
  name: string;
  spec: AppSpec;
  version: number;
  /** The version the engine's service spec holds (after a rollback: the older one). */
  engineVersion: number | null;
  update: UpdateStatus | null;
  /** The operator paused the rollout in progress (the engine holds it until resume). */
  paused: boolean;
  instances: InstanceView[];
  lbService: string | null;
  error: string | null;
}

interface ServiceInspect {
  Spec: {
    Labels?: Record<string, string>;
    TaskTemplate?: { ContainerSpec?: { Labels?: Record<string, string> } };
  };
  UpdateStatus?: { State?: string; Message?: string };
}

/** Kept observations per app: enough for the rollout picture of the last rollouts. */
const KEEP_OBSERVATIONS = 5000;
const LOG_LINES_MAX = 1000;

export class Apps {
  readonly swarm: Swarm;
  private readonly log: Logger;
  private running: Promise<void> | undefined;
  private again = false;
  private started = 0;
  private waiters: { pass: number; resolve: () => void }[] = [];
  private manager: NodeRecord | undefined;
  private views = new Map<string, Omit<AppView, 'name' | 'spec' | 'version'>>();
  private lastSeen = new Map<string, string>();

  constructor(
    private readonly opts: {
      config: AppsConfig;
      repos: Pick<Repos, 'store' | 'nodes' | 'events' | 'apps'>;
      docker: Docker;
      logger: Logger;
      /** The base image for command-only apps (the master's registry by default). */
      baseImage: string;
      lb?: LoadBalancer | undefined;
    },
  ) {
    this.log = opts.logger;
    this.swarm = new Swarm(opts.docker, opts.config, this.log);
  }

  list(): AppView[] {
    return this.opts.repos.apps.list().flatMap((row) => {
      const parsed = AppSpecSchema.safeParse(row.spec);
      if (!parsed.success) {
        this.log.warn({ app: row.name }, 'stored app does not match the schema; skipped');
        return [];
      }
      return [this.viewOf(parsed.data, row.version)];
    });
  }

  get(name: string): AppView {
    const app = this.list().find((a) => a.name === name);
    if (!app) throw new CorralError('APP_NOT_FOUND', `no app named '${name}'`);
    return app;
  }

  swarmStatus(): SwarmStatus {
    return this.swarm.status();
  }

  observations(name: string, limit = 2000): AppObservation[] {
    this.get(name);
    return this.opts.repos.apps.observations(name, limit);
  }

  /** Declares or changes an app; a change of command, image, env or health check is a new version. */
  async put(input: unknown, actor: string | null, mode: 'create' | 'replace'): Promise<AppView> {
    const parsed = AppSpecSchema.safeParse(input);
    if (!parsed.success) throw zodToCorral(parsed.error, 'APP_INVALID');
    const spec = parsed.data;
    const row = this.opts.repos.apps.get(spec.name);
    if (mode === 'create' && row) throw new CorralError('CONFLICT', `app '${spec.name}' already exists`);
    if (mode === 'replace' && !row) throw new CorralError('APP_NOT_FOUND', `no app named '${spec.name}'`);
    const prev = row ? AppSpecSchema.safeParse(row.spec) : undefined;
    if (prev?.success) refuseNetworkChange(prev.data, spec);
    const lbPort = spec.ports.find((p) => p.lbPort !== undefined);
    if (lbPort && this.opts.lb) {
      const clash = this.opts.lb.services().find((s) => s.name !== spec.name && s.port === lbPort.lbPort);
      if (clash)
        throw new CorralError('CONFLICT', `port ${lbPort.lbPort} is already used by service '${clash.name}'`);
    }
    const changed =
      !prev?.success || JSON.stringify(versionedPart(prev.data)) !== JSON.stringify(versionedPart(spec));
    const version = row ? (changed ? row.version + 1 : row.version) : 1;
    this.opts.repos.store.write((journal) => {
      this.opts.repos.apps.putIn(journal, {
        name: spec.name,
        spec,
        version,
        previousSpec: row ? (changed ? row.spec : row.previousSpec) : null,
        previousVersion: row ? (changed ? row.version : row.previousVersion) : null,
      });
      this.opts.repos.events.appendIn(journal, {
        kind: mode === 'create' ? 'app.created' : 'app.updated',
        message: `app ${spec.name} ${mode === 'create' ? 'declared' : changed ? `changed: version ${version} rolls out` : 'changed'}`,
        actor,
        data: { name: spec.name, version },
      });
    });
    await this.reconcileNow();
    return this.get(spec.name);
  }

  async remove(name: string, actor: string | null): Promise<void> {
    this.get(name);
    if (this.manager) {
      const r = await this.onManager(['service', 'rm', name]);
      if (!r.ok && !/not found/i.test(r.stderr))
        throw new CorralError('APP_ENGINE_FAILED', r.error ?? 'service rm failed');
    }
    if (this.opts.lb?.services().some((s) => s.name === name)) await this.opts.lb.deleteService(name, actor);
    this.opts.repos.store.write((journal) => {
      this.opts.repos.apps.deleteIn(journal, name);
      this.opts.repos.events.appendIn(journal, {
        kind: 'app.deleted',
        message: `app ${name} removed`,
        actor,
      });
    });
    this.views.delete(name);
  }

  /**
   * Reverts to the version before: the declaration goes back and the engine rolls it out like any update.
   * Not `docker service rollback`: the engine's rollback target is the spec before its last update, which a
   * pause, a resume or a change of instances replaces with one of the same version.
   */
  async revert(name: string, actor: string | null): Promise<AppView> {
    this.get(name);
    const row = this.opts.repos.apps.get(name)!;
    if (row.previousVersion === null)
      throw new CorralError('CONFLICT', `app '${name}' has no earlier version`);
    this.requireManager();
    this.adoptPrevious(name, actor, 'reverted by the operator');
    await this.reconcileNow();
    return this.get(name);
  }

  /** Holds the rollout in progress (docs/apps.md: what the engine finishes before it holds). */
  async pause(name: string, actor: string | null): Promise<AppView> {
    const app = this.get(name);
    const svc = await this.inspectService(name);
    const state = svc.UpdateStatus?.State;
    if (svc.Spec.Labels?.[PAUSED_LABEL] === 'true')
      throw new CorralError('CONFLICT', `the rollout of app '${name}' is already paused`);
    if (state !== 'updating')
      throw new CorralError(
        'CONFLICT',
        `app '${name}' has no rollout in progress to pause (the engine's update state is ${state ?? 'none'})`,
      );
    await this.mustOnManager(holdArgs(app.spec, 'pause'));
    this.event(name, actor, 'app.paused', `app ${name}: rollout of version ${app.version} paused`);
    await this.reconcileNow();
    return this.get(name);
  }

  /** Lets a paused rollout go on at its declared pace. */
  async resume(name: string, actor: string | null): Promise<AppView> {
    const app = this.get(name);
    const svc = await this.inspectService(name);
    if (svc.Spec.Labels?.[PAUSED_LABEL] !== 'true')
      throw new CorralError('CONFLICT', `the rollout of app '${name}' is not paused`);
    await this.mustOnManager(holdArgs(app.spec, 'resume'));
    this.event(name, actor, 'app.resumed', `app ${name}: rollout of version ${app.version} resumed`);
    await this.reconcileNow();
    return this.get(name);
  }

  private async inspectService(name: string): Promise<ServiceInspect> {
    const r = await this.onManager(['service', 'inspect', name]);
    if (!r.ok) throw new CorralError('APP_ENGINE_FAILED', r.error ?? 'service inspect failed');
    return (JSON.parse(r.stdout) as ServiceInspect[])[0]!;
  }

  private event(name: string, actor: string | null, kind: string, message: string): void {
    this.opts.repos.store.write((journal) =>
      this.opts.repos.events.appendIn(journal, { kind, message, actor, data: { name } }),
    );
  }

  async logs(name: string, tail: number): Promise<string[]> {
    this.get(name);
    const n = Math.max(1, Math.min(LOG_LINES_MAX, Math.floor(tail)));
    const r = await this.onManager(['service', 'logs', '--tail', String(n), '--timestamps', name]);
    // A node that is down cannot give its tasks' logs: docker says so and exits 1 after the others' lines,
    // which are still worth showing (the note stays in the lines).
    const partial = /incomplete log stream/.test(r.stderr);
    if (!r.ok && !partial) throw new CorralError('APP_ENGINE_FAILED', r.error ?? 'service logs failed');
    // Both streams: the containers' stderr comes back on ours. Bounded: `tail` per task, at most LOG_LINES_MAX kept.
    return [...r.stdout.split('\n'), ...r.stderr.split('\n')].filter(Boolean).sort().slice(-LOG_LINES_MAX);
  }

  /** Asks for a pass; resolves when a pass that started after the call has finished (never chains forever). */
  reconcileNow(): Promise<void> {
    const wanted = this.started + 1;
    const done = new Promise<void>((resolve) => this.waiters.push({ pass: wanted, resolve }));
    if (this.running) this.again = true;
    else {
      this.running = this.loop().finally(() => (this.running = undefined));
    }
    return done;
  }

  /** Timer ticks: a pass unless one is running (the running one already looks at everything). */
  tick(): void {
    if (!this.running) void this.reconcileNow();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      const pass = ++this.started;
      await this.pass().catch((err: unknown) => this.log.error({ err }, 'apps reconcile failed'));
      this.waiters = this.waiters.filter((w) => (w.pass <= pass ? (w.resolve(), false) : true));
    } while (this.again);
  }

  async idle(): Promise<void> {
    await this.running;
  }

  private async pass(): Promise<void> {
    const nodes = this.opts.repos.nodes.list();
    this.manager = await this.swarm.reconcile(nodes);
    if (!this.manager) return;
    const m = this.target(this.manager);
    for (const app of this.list()) {
      try {
        await this.reconcileApp(app.name, m);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        this.log.warn({ app: app.name, err: message }, 'app reconcile failed');
        this.views.set(app.name, { ...this.blank(app.name), error: message });
      }
    }
  }

  private async reconcileApp(name: string, m: { name: string; mac: string; host: string }): Promise<void> {
    const row = this.opts.repos.apps.get(name)!;
    const spec = AppSpecSchema.parse(row.spec);
    const image = spec.image ?? this.opts.baseImage;
    const inspected = await this.opts.docker.run(m, ['service', 'inspect', name]);
    if (!inspected.ok) {
      if (!/no such service|not found/i.test(inspected.stderr))
        throw new Error(inspected.error ?? 'inspect failed');
      await mustRun(this.opts.docker, m, serviceCreateArgs(spec, row.version, image));
      this.log.info({ app: name, version: row.version }, 'app service created');
      return this.reconcileApp(name, m);
    }
    const svc = (JSON.parse(inspected.stdout) as ServiceInspect[])[0]!;
    const engineVersion = Number(svc.Spec.TaskTemplate?.ContainerSpec?.Labels?.[VERSION_LABEL] ?? NaN);
    const applied = svc.Spec.Labels?.['corral.applied'];
    const update: UpdateStatus | null = svc.UpdateStatus?.State
      ? { state: svc.UpdateStatus.State, message: svc.UpdateStatus.Message ?? null }
      : null;
    const want = JSON.stringify(spec);
    const labels = svc.Spec.Labels ?? {};
    const held = labels[HELD_LABEL] === 'true';
    const paused = labels[PAUSED_LABEL] === 'true';
    // A held rollout that the engine stopped for a failed task (failure action `pause` while held): Corral
    // does the rollback the engine would have done, by declaring the version before again.
    if (
      held &&
      update?.state === 'paused' &&
      engineVersion === row.version &&
      row.previousVersion !== null &&
      spec.update.failureAction === 'rollback'
    ) {
      this.adoptPrevious(
        name,
        null,
        `rollout of version ${row.version} failed while held by a pause: ${update.message ?? ''}`,
      );
      return this.reconcileApp(name, m);
    }
    // The engine rolled a version back (a failed health gate): the declaration follows it, or the next pass
    // would roll the failing version out again.
    if (
      update?.state === 'rollback_completed' &&
      // A `rollback_completed` is the failure of the current declaration only when that declaration was
      // sent (row.issued, stored: it survives a restart or failover): the engine keeps saying it until the
      // next update, and a new declaration stored meanwhile (the failed one's version number: the number
      // went back with the declaration) is not yet sent.
      row.issued === hash(want) &&
      engineVersion < row.version &&
      row.previousVersion === engineVersion
    ) {
      this.adoptPrevious(
        name,
        null,
        `rollout of version ${row.version} failed and was rolled back: ${update.message ?? ''}`,
      );
      return this.reconcileApp(name, m);
    }
    if (applied !== hash(want) && !update?.state?.startsWith('rollback_started')) {
      // A new declaration (or a revert) ends a pause: it rolls out at its declared pace.
      const prevSpec = row.previousSpec ? AppSpecSchema.safeParse(row.previousSpec) : undefined;
      const prev = engineVersion === row.previousVersion && prevSpec?.success ? prevSpec.data : spec;
      await mustRun(this.opts.docker, m, [
        ...serviceUpdateArgs(
          prev,
          spec,
          Number.isNaN(engineVersion) ? -1 : engineVersion,
          row.version,
          image,
        ).slice(0, -1),
        '--label-add',
        `corral.applied=${hash(want)}`,
        ...(held || paused ? ['--label-rm', HELD_LABEL, '--label-rm', PAUSED_LABEL] : []),
        name,
      ]);
      this.opts.repos.store.write((j) => this.opts.repos.apps.setIssuedIn(j, name, hash(want)));
      this.log.info({ app: name, version: row.version }, 'app service updated');
    } else if (held && (update?.state === 'completed' || update?.state === 'rollback_completed')) {
      // The held rollout settled: the engine gets its declared failure action back.
      await mustRun(this.opts.docker, m, releaseArgs(spec));
      this.log.info({ app: name, version: row.version }, 'held rollout settled; hold released');
    }
    const ids = (await mustRun(this.opts.docker, m, ['service', 'ps', '-q', '--no-trunc', name]))
      .split('\n')
      .filter(Boolean);
    const tasks = ids.length
      ? (JSON.parse(await mustRun(this.opts.docker, m, ['inspect', ...ids])) as EngineTask[])
      : [];
    const instances = instancesOf(tasks, (id) => this.swarm.names.get(id) ?? id.slice(0, 12));
    this.record(name, instances);
    const lbService = await this.syncLb(spec, instances);
    this.views.set(name, {
      engineVersion: Number.isNaN(engineVersion) ? null : engineVersion,
      update,
      paused,
      instances,
      lbService,
      error: null,
    });
  }

  /**
   * HAProxy members: the nodes running a task that is `running` (with a health check: passed it); on the
   * bridge network each such task on the port the engine published for it (several per node maybe).
   */
  private async syncLb(spec: AppSpec, instances: InstanceView[]): Promise<string | null> {
    const port = spec.ports.find((p) => p.lbPort !== undefined);
    const lb = this.opts.lb;
    if (!port || !lb?.enabled) return null;
    const running = instances.filter((i) => i.state === 'running' && i.node);
    const served =
      spec.network === 'bridge'
        ? { members: publishedMembers(running, port.port) }
        : { nodes: [...new Set(running.map((i) => i.node!))].sort() };
    const members = served.members ?? served.nodes ?? [];
    const existing = lb.services().find((s) => s.name === spec.name);
    // HAProxy needs one server at least; with none running the old members stay and its checks mark them down.
    if (members.length === 0) return existing ? spec.name : null;
    const want = {
      name: spec.name,
      port: port.lbPort!,
      protocol: 'tcp' as const,
      ...served,
      // The container's port; a `members` service's servers each carry their own published port.
      backendPort: port.port,
      check: { type: 'tcp' as const },
      intervalMs: 1000,
      rise: 1,
      fall: 2,
    };
    if (
      !existing ||
      JSON.stringify(existing.nodes) !== JSON.stringify(served.nodes) ||
      JSON.stringify(existing.members) !== JSON.stringify(served.members) ||
      existing.port !== want.port ||
      existing.backendPort !== want.backendPort
    ) {
      await lb.putService(want, 'apps', existing ? 'replace' : 'create');
      this.log.info({ app: spec.name, members }, 'app LB members synced');
    }
    return spec.name;
  }

  private record(name: string, instances: InstanceView[]): void {
    const key = JSON.stringify(instances.map((i) => [i.slot, i.version, i.state, i.node]));
    if (this.lastSeen.get(name) === key) return;
    this.lastSeen.set(name, key);
    const at = new Date().toISOString();
    this.opts.repos.apps.observe(
      instances.map((i) => ({
        app: name,
        at,
        slot: i.slot,
        version: i.version,
        state: i.state,
        node: i.node,
      })),
      KEEP_OBSERVATIONS,
    );
  }

  private adoptPrevious(name: string, actor: string | null, why: string): void {
    const row = this.opts.repos.apps.get(name)!;
    this.opts.repos.store.write((journal) => {
      this.opts.repos.apps.putIn(journal, {
        name,
        spec: row.previousSpec,
        version: row.previousVersion!,
        previousSpec: row.spec,
        previousVersion: row.version,
      });
      // The failed declaration's rollback is spent: the same declaration made again is sent again.
      this.opts.repos.apps.setIssuedIn(journal, name, null);
      this.opts.repos.events.appendIn(journal, {
        kind: 'app.rolled-back',
        severity: 'warning',
        message: `app ${name}: back to version ${row.previousVersion}: ${why}`,
        actor,
        data: { name, from: row.version, to: row.previousVersion },
      });
    });
    this.log.warn({ app: name, from: row.version, to: row.previousVersion }, why);
  }

  private viewOf(spec: AppSpec, version: number): AppView {
    return { name: spec.name, spec, version, ...(this.views.get(spec.name) ?? this.blank(spec.name)) };
  }

  private blank(_name: string): Omit<AppView, 'name' | 'spec' | 'version'> {
    return { engineVersion: null, update: null, paused: false, instances: [], lbService: null, error: null };
  }

  private requireManager(): NodeRecord {
    if (!this.manager)
      throw new CorralError(
        'APP_ENGINE_FAILED',
        'no reachable swarm manager yet; see GET /api/v1/apps/engine',
      );
    return this.manager;
  }

  /**
   * One docker command through a swarm manager: the one the last pass used, then the other managers it
   * saw, so a lost manager (or the leader's node) does not stop the API's commands until the next pass.
   * A manager that cannot answer (SSH, its docker, or no Raft leader behind it) passes to the next; any
   * other failure (no such service, ...) is the answer.
   */
  private async onManager(args: readonly string[]): Promise<DockerResult> {
    const first = this.requireManager();
    const others = this.swarm
      .status()
      .nodes.filter((n) => (n.role === 'leader' || n.role === 'manager') && n.mac !== first.mac)
      .flatMap((n) => this.opts.repos.nodes.list().filter((r) => r.mac === n.mac && r.ip));
    let last: DockerResult | undefined;
    for (const m of [first, ...others]) {
      last = await this.opts.docker.run(this.target(m), args);
      if (last.ok || !managerUnusable(last)) return last;
      this.log.warn({ node: m.name, err: last.error }, 'swarm manager did not answer; trying the next');
    }
    return last!;
  }

  private async mustOnManager(args: readonly string[]): Promise<string> {
    const r = await this.onManager(args);
    if (!r.ok) throw new CorralError('APP_ENGINE_FAILED', r.error ?? `${args.join(' ')} failed`);
    return r.stdout;
  }

  private target(n: NodeRecord): { name: string; mac: string; host: string } {
    return { name: n.name, mac: n.mac, host: n.ip ?? '' };
  }
}

/**
 * The network, and a bridge app's published ports, are the engine service's from its creation: changing
 * them would take docker's `--network-rm`/`--publish-rm` and `-add` pairs, which Corral does not send.
 */
export function refuseNetworkChange(prev: AppSpec, next: AppSpec): void {
  if (prev.network !== next.network)
    throw new CorralError(
      'CONFLICT',
      `app '${next.name}' runs on the ${prev.network} network, which cannot change: remove the app and declare it again`,
    );
  const published = (s: AppSpec): string => s.ports.map((p) => `${p.port}/${p.protocol}`).join(',');
  if (next.network === 'bridge' && published(prev) !== published(next))
    throw new CorralError(
      'CONFLICT',
      `the ports of app '${next.name}' (bridge network) cannot change: remove the app and declare it again`,
    );
}

/** Running bridge tasks → HAProxy members: each on the host port the engine published for `target`. */
export function publishedMembers(
  running: readonly InstanceView[],
  target: number,
): { node: string; port: number }[] {
  const seen = new Map<string, { node: string; port: number }>();
  for (const i of running) {
    for (const p of i.ports) {
      if (i.node && p.target === target && p.protocol === 'tcp')
        seen.set(`${i.node}:${p.published}`, { node: i.node, port: p.published });
    }
  }
  return [...seen.values()].sort(
    (a, b) => a.node.localeCompare(b.node, 'en', { numeric: true }) || a.port - b.port,
  );
}

/** The manager could not serve the command at all (as opposed to docker refusing the command itself). */
export function managerUnusable(r: Pick<DockerResult, 'error' | 'stderr'>): boolean {
  if (r.error && !/ exited \d+/.test(r.error)) return true; // SSH unreachable, refused, timed out
  return /Cannot connect to the Docker daemon|does not have a leader|not a swarm manager|code = (Unavailable|DeadlineExceeded)/.test(
    r.stderr,
  );
}

/** A short, stable digest of the declaration, kept as a service label: "is what the engine runs ours?". */
export function hash(s: string): string {
  let h = 0x811c9dc5; // FNV-1a 32-bit: a change detector, not a security boundary
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}
