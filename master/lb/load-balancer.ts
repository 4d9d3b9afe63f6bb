/**
 * The load balancer subsystem: declared services + the inventory → haproxy.cfg → a supervised HAProxy,
 * and HAProxy's view (server states, check results) → the API, the console and events.
 *
 * One loop, every `lb.pollMs`: if the change journal moved (a node deployed, retired, renamed, a
 * service edited), re-render and reload when the text differs; then read `show stat` and `show servers
 * state`, record up/down transitions as events, and put back any operator drain/maint HAProxy lost (a
 * restart after a crash). All HAProxy work is serialized, so a reload never races a state change.
 */
import { join } from 'node:path';
import { bindCovers } from '../http-bind.js';
import type { FrozenConfig } from '../config.js';
import type { LbConfig } from './config.js';
import type { NewEvent } from '../store/events.js';
import type { Repos } from '../store/repos.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { zodToCorral } from '../api/errors.js';
import { findNode } from '../nodes/service.js';
import { haproxyVersion, installConfig } from './config-file.js';
import { HaproxyProcess, type HaproxyStatus } from './haproxy-process.js';
import { membersOf, type BackendServer } from './membership.js';
import { proxyName, renderHaproxyConfig } from './render.js';
import { servedBy, ServiceSpecSchema, type AdminState, type ServiceSpec } from './service-spec.js';
import { forcedAdmin, parseServersState, parseShowStat, type ServerHealth, type ServerStat } from './stat.js';

/** The config the load balancer reads: its own section, HA's VIP, and where the master is. */
export type LbFeatureConfig = { lb: LbConfig; ha: Pick<FrozenConfig['ha'], 'enabled' | 'vip'> } & Pick<
  FrozenConfig,
  'address' | 'dataDir' | 'http'
>;

export interface LoadBalancerOptions {
  repos: Pick<Repos, 'store' | 'services' | 'events' | 'nodes' | 'changes'>;
  config: LbFeatureConfig;
  logger: Logger;
}

export interface ServerView extends BackendServer {
  /** What the operator asked for (drain/maint survive reloads and restarts). */
  admin: AdminState;
  health: ServerHealth | 'unknown';
  status: string | null;
  checkStatus: string | null;
  checkCode: number | null;
  checkDesc: string | null;
  lastChangeSeconds: number | null;
  currentSessions: number;
  totalSessions: number;
}

export type ServiceHealth = 'healthy' | 'degraded' | 'down' | 'empty' | 'unknown';

export interface ServiceView {
  spec: ServiceSpec;
  frontend: string;
  health: ServiceHealth;
  up: number;
  servers: ServerView[];
}

export interface LbStatus {
  enabled: boolean;
  bind: string;
  haproxy: HaproxyStatus;
  services: number;
  lastSyncAt: string | null;
  lastError: string | null;
}

/**
 * Where the services' front ends listen: `lb.bind`, else the VIP when HA is on (clients follow the VIP
 * across a failover), else the master's own address.
 */
export function frontendAddress(config: Pick<LbFeatureConfig, 'lb' | 'ha' | 'address'>): string {
  if (config.lb.bind) return config.lb.bind;
  if (config.ha.enabled && config.ha.vip) return config.ha.vip.split('/')[0] ?? config.address;
  return config.address;
}

export class LoadBalancer {
  readonly bind: string;
  private readonly proc: HaproxyProcess;
  private readonly log: Logger;
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private lastSeq = -1;
  private stats = new Map<string, ServerStat>();
  private admins = new Map<string, 'maint' | 'drain' | 'ready'>();
  /** Last up/down seen per "service/server" (two instances on one node each have theirs), for events. */
  private seen = new Map<string, 'up' | 'down'>();
  private lastSyncAt: string | null = null;
  private lastError: string | null = null;
  private version: [number, number] | undefined;

  constructor(private readonly opts: LoadBalancerOptions) {
    this.log = opts.logger.child({ module: 'lb' });
    this.bind = frontendAddress(opts.config);
    this.proc = new HaproxyProcess({
      bin: opts.config.lb.haproxyBin,
      dir: join(opts.config.dataDir, 'haproxy'),
      logger: this.log,
      onRestart: ({ restarts, exit }) => {
        this.recordEvent({
          kind: 'lb.haproxy.restarted',
          severity: 'warning',
          message: `HAProxy died (${exit}) and was started again (restart ${restarts})`,
          actor: 'system',
          data: { restarts, exit },
        });
        // The fresh worker may lack operator drains the state file did not hold: repair now.
        void this.serialized(() => this.observe()).catch(() => undefined);
      },
    });
  }

  get enabled(): boolean {
    return this.opts.config.lb.enabled;
  }

  async start(): Promise<void> {
    if (!this.enabled) return;
    await this.serialized(() => this.tickNow()).catch((err: unknown) => {
      // A bad stored service must not stop the master: the error shows in the API and console.
      this.log.warn({ err: (err as Error).message }, 'load balancer sync failed at start');
    });
    this.timer = setInterval(() => {
      void this.serialized(() => this.tickNow()).catch(() => undefined);
    }, this.opts.config.lb.pollMs);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.chain.catch(() => undefined);
    await this.proc.stop();
  }

  // --- services -------------------------------------------------------------------------------------

  services(): ServiceSpec[] {
    return this.opts.repos.services.list().flatMap((row) => {
      const parsed = ServiceSpecSchema.safeParse(row.spec);
      if (parsed.success) return [parsed.data];
      this.log.warn({ service: row.name }, 'stored service does not match the schema; skipped');
      return [];
    });
  }

  service(name: string): ServiceSpec {
    const spec = this.services().find((s) => s.name === name);
    if (!spec) throw new CorralError('SERVICE_NOT_FOUND', `no service named '${name}'`);
    return spec;
  }

  /** Validates, applies to HAProxy (checked and reloaded), and only then stores the declaration. */
  async putService(input: unknown, actor: string | null, mode: 'create' | 'replace'): Promise<ServiceSpec> {
    this.requireEnabled();
    const parsed = ServiceSpecSchema.safeParse(input);
    if (!parsed.success) throw zodToCorral(parsed.error);
    const spec = parsed.data;
    return this.serialized(async () => {
      const others = this.services().filter((s) => s.name !== spec.name);
      const exists = others.length !== this.services().length;
      if (mode === 'create' && exists)
        throw new CorralError('CONFLICT', `service '${spec.name}' already exists`);
      if (mode === 'replace' && !exists)
        throw new CorralError('SERVICE_NOT_FOUND', `no service named '${spec.name}'`);
      const clash = others.find((s) => s.port === spec.port);
      if (clash)
        throw new CorralError('CONFLICT', `port ${spec.port} is already used by service '${clash.name}'`);
      const http = this.opts.config.http;
      if (spec.port === http.port && bindCovers(http.bind, this.bind)) {
        throw new CorralError('CONFLICT', `port ${spec.port} is the master's own HTTP port`);
      }
      await this.applyThenStore([...others, spec], () =>
        this.opts.repos.store.write((journal) => {
          this.opts.repos.services.putIn(journal, spec.name, spec);
          this.opts.repos.events.appendIn(journal, {
            kind: mode === 'create' ? 'lb.service.created' : 'lb.service.updated',
            message: `service ${spec.name} ${mode === 'create' ? 'declared' : 'changed'}: :${spec.port} → ${servedBy(spec)} :${spec.backendPort}`,
            actor,
            data: spec,
          });
        }),
      );
      return spec;
    });
  }

  async deleteService(name: string, actor: string | null): Promise<void> {
    await this.serialized(async () => {
      this.service(name);
      await this.applyThenStore(
        this.services().filter((s) => s.name !== name),
        () =>
          this.opts.repos.store.write((journal) => {
            this.opts.repos.services.deleteIn(journal, name);
            this.opts.repos.events.appendIn(journal, {
              kind: 'lb.service.deleted',
              message: `service ${name} removed`,
              actor,
            });
          }),
      );
    });
  }

  /**
   * HAProxy first, the store second: a declaration HAProxy refuses is never stored, and one the store
   * refuses (a backup's write guard, a full disk) is taken out of HAProxy again. Either way HAProxy is
   * left running what is stored; a failed rollback is retried by the next tick.
   */
  private async applyThenStore(next: ServiceSpec[], store: () => void): Promise<void> {
    const stored = this.services();
    try {
      await this.apply(next, false);
      store();
    } catch (err) {
      this.lastSeq = -1;
      await this.apply(stored, false).catch((e: unknown) =>
        this.log.warn({ err: (e as Error).message }, 'cannot put HAProxy back to the stored services'),
      );
      throw err;
    }
  }

  // --- per-node admin state (runtime API, no reload) --------------------------------------------------

  /**
   * Drain or maintenance is the node's, stored by MAC: it applies to each of the node's servers in the
   * service (a `members` service may have several there). Answers the node's first server.
   */
  async setServerState(
    service: string,
    nodeId: string,
    state: AdminState,
    actor: string | null,
  ): Promise<ServerView> {
    this.requireEnabled();
    return this.serialized(async () => {
      const spec = this.service(service);
      const servers = this.serversOfNodeOrThrow(spec, nodeId);
      const member = servers[0]!;
      this.opts.repos.store.write((journal) => {
        this.opts.repos.services.setAdminIn(journal, service, member.mac, state);
        this.opts.repos.events.appendIn(journal, {
          nodeMac: member.mac,
          kind: 'lb.server.admin',
          message: `${member.node} set to ${state} in service ${service}`,
          actor,
          data: { service, state },
        });
      });
      if (this.proc.running) {
        for (const s of servers)
          await this.runtime(`set server ${proxyName(service)}/${s.name} state ${state}`);
        await this.observe();
      }
      const view = this.view(spec).servers.find((s) => s.mac === member.mac);
      if (!view) throw new CorralError('LB_NOT_MEMBER', `${member.node} left service ${service}`);
      return view;
    });
  }

  /** Forces a reload even if the config did not change (operators, and the reload-under-load test). */
  async reload(): Promise<HaproxyStatus> {
    this.requireEnabled();
    await this.serialized(() => this.apply(this.services(), true));
    return this.proc.status();
  }

  // --- views ----------------------------------------------------------------------------------------

  status(): LbStatus {
    return {
      enabled: this.enabled,
      bind: this.bind,
      haproxy: this.proc.status(),
      services: this.opts.repos.services.list().length,
      lastSyncAt: this.lastSyncAt,
      lastError: this.lastError,
    };
  }

  views(): ServiceView[] {
    return this.services().map((s) => this.view(s));
  }

  view(spec: ServiceSpec): ServiceView {
    const desired = this.desiredAdmin(spec.name);
    const servers = membersOf(spec, this.opts.repos.nodes.list()).map((m): ServerView => {
      const st = this.stats.get(`${proxyName(spec.name)}/${m.name}`);
      return {
        ...m,
        admin: desired.get(m.mac) ?? 'ready',
        health: st ? st.health : 'unknown',
        status: st?.status ?? null,
        checkStatus: st?.checkStatus ?? null,
        checkCode: st?.checkCode ?? null,
        checkDesc: st?.checkDesc ?? null,
        lastChangeSeconds: st?.lastChangeSeconds ?? null,
        currentSessions: st?.currentSessions ?? 0,
        totalSessions: st?.totalSessions ?? 0,
      };
    });
    const up = servers.filter((s) => s.health === 'up').length;
    const known = servers.some((s) => s.health !== 'unknown');
    const health: ServiceHealth = !servers.length
      ? 'empty'
      : !known
        ? 'unknown'
        : up === servers.length
          ? 'healthy'
          : up === 0
            ? 'down'
            : 'degraded';
    return { spec, frontend: `${this.bind}:${spec.port}`, health, up, servers };
  }

  /** Every service a node serves, with its health there. */
  nodeHealth(mac: string): { service: string; server: ServerView }[] {
    return this.views().flatMap((v) =>
      v.servers.filter((s) => s.mac === mac).map((server) => ({ service: v.spec.name, server })),
    );
  }

  // --- internals ------------------------------------------------------------------------------------

  private requireEnabled(): void {
    if (!this.enabled)
      throw new CorralError('LB_DISABLED', 'load balancing is disabled (lb.enabled = false)');
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private serversOfNodeOrThrow(spec: ServiceSpec, nodeId: string): BackendServer[] {
    const node = findNode(this.opts.repos.nodes, nodeId);
    const servers = membersOf(spec, [node]);
    if (!servers.length) {
      throw new CorralError(
        'LB_NOT_MEMBER',
        `${node.name} does not serve ${spec.name} (state ${node.state}, role ${node.role ?? 'none'}, tags ${node.tags.join(' ') || 'none'}, ip ${node.ip ?? 'none'})`,
      );
    }
    return servers;
  }

  private desiredAdmin(service: string): Map<string, AdminState> {
    return new Map(this.opts.repos.services.adminStates(service).map((a) => [a.nodeMac, a.state]));
  }

  private async runtime(cmd: string): Promise<void> {
    const answer = (await this.proc.command(cmd)).trim();
    // Successful `set server` commands answer nothing; anything else is HAProxy's complaint.
    if (answer) throw new CorralError('LB_RUNTIME_FAILED', `HAProxy refused '${cmd}': ${answer}`);
  }

  private async tickNow(): Promise<void> {
    try {
      const seq = this.opts.repos.changes.lastSeq();
      if (seq !== this.lastSeq) {
        await this.apply(this.services(), false);
        // Only now: a failed apply (HAProxy refused, a reload timed out) is tried again next tick.
        this.lastSeq = seq;
      } else if (this.proc.running) {
        await this.observe();
      }
      this.lastError = null;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.log.warn({ err: this.lastError }, 'load balancer sync failed');
      throw err;
    }
  }

  /** Render → check → install → start or reload; then read HAProxy's state. No services: HAProxy stops. */
  private async apply(services: ServiceSpec[], force: boolean): Promise<void> {
    if (!services.length) {
      if (this.proc.running) {
        this.log.info('no services declared: stopping haproxy');
        await this.proc.stop();
      }
      this.stats.clear();
      return;
    }
    const nodes = this.opts.repos.nodes.list();
    this.version ??= await haproxyVersion(this.opts.config.lb.haproxyBin);
    const text = renderHaproxyConfig({
      ...(this.version ? { version: this.version } : {}),
      bind: this.bind,
      nonLocalBind: this.bind !== this.opts.config.address,
      paths: this.proc.paths,
      services: services.map((spec) => ({ spec, servers: membersOf(spec, nodes) })),
    });
    const changed = await installConfig(this.opts.config.lb.haproxyBin, this.proc.paths.config, text);
    if (!this.proc.running) await this.proc.start();
    else if (changed || force) await this.proc.reload();
    this.lastSyncAt = new Date().toISOString();
    await this.observe();
  }

  /** Reads server states, records up/down events, and re-applies operator admin states HAProxy lacks. */
  private async observe(): Promise<void> {
    if (!this.proc.running) return;
    const [statText, stateText] = [
      await this.proc.command('show stat'),
      await this.proc.command('show servers state'),
    ];
    this.stats = new Map(parseShowStat(statText).map((s) => [`${s.proxy}/${s.server}`, s]));
    this.admins = new Map(
      parseServersState(stateText).map((s) => [`${s.proxy}/${s.server}`, forcedAdmin(s.adminState)]),
    );
    const nodes = this.opts.repos.nodes.list();
    for (const spec of this.services()) {
      const desired = this.desiredAdmin(spec.name);
      for (const m of membersOf(spec, nodes)) {
        const key = `${proxyName(spec.name)}/${m.name}`;
        const want = desired.get(m.mac) ?? 'ready';
        const have = this.admins.get(key);
        if (have !== undefined && have !== want) {
          this.log.info({ server: key, want, have }, 'restoring admin state');
          await this.runtime(`set server ${key} state ${want}`).catch((err: unknown) =>
            this.log.warn({ err: (err as Error).message }, 'cannot restore admin state'),
          );
        }
        this.recordTransition(spec.name, m, this.stats.get(key));
      }
    }
  }

  private recordTransition(service: string, m: BackendServer, st: ServerStat | undefined): void {
    if (!st || st.health === 'maint' || st.health === 'unchecked') return;
    const now = st.health === 'down' ? 'down' : 'up';
    const key = `${service}/${m.name}`;
    const before = this.seen.get(key);
    this.seen.set(key, now);
    if (before === undefined || before === now) return;
    const check = [st.checkStatus, st.checkCode ?? '', st.checkDesc].filter(Boolean).join(' ');
    this.recordEvent({
      nodeMac: m.mac,
      kind: now === 'down' ? 'lb.server.down' : 'lb.server.up',
      severity: now === 'down' ? 'warning' : 'info',
      message: `${m.name} is ${now.toUpperCase()} in service ${service}${check ? ` (${check})` : ''}`,
      actor: 'haproxy',
      data: {
        service,
        server: m.name,
        status: st.status,
        checkStatus: st.checkStatus,
        checkCode: st.checkCode,
      },
    });
    this.log.info({ service, server: m.name, health: now, check }, 'server health changed');
  }

  /**
   * Events are best effort here: they come from HAProxy's side (checks, a restart), not from a request.
   * The load balancer runs on both HA masters, and a backup's store refuses every write (NOT_PRIMARY);
   * throwing would abort a poll half-way or reject inside HAProxy's restart timer, so the event goes to
   * the log instead (the primary, which runs its own HAProxy, records its own).
   */
  private recordEvent(e: NewEvent): void {
    try {
      this.opts.repos.events.append(e);
    } catch (err) {
      const code = err instanceof CorralError ? err.code : undefined;
      this.log[e.severity && e.severity !== 'info' ? 'warn' : 'info'](
        { event: e.kind, eventMessage: e.message, err: (err as Error).message },
        code === 'NOT_PRIMARY' ? 'event not recorded: this master is an HA backup' : 'event not recorded',
      );
    }
  }
}
