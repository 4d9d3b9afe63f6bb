/**
 * Samples deployed nodes from the master over SSH (the master's key, as `corral node exec` uses it): every
 * `monitor.nodeSshSeconds`, each `deployed` node with a known IP runs NODE_PROBE_COMMAND, and the parsed
 * reading is recorded through the monitor as if the node had POSTed it, so charts, the live stream and the
 * node-down alert see one kind of sample. An unreachable node yields no sample (which is what node-down
 * watches for) and a debug line; nothing here throws into the master.
 *
 * Sessions are kept open between rounds (docs/monitoring.md says why) and re-opened when they break.
 */
import { NodeSSH } from 'node-ssh';
import type { FrozenConfig } from '../config.js';
import type { MonitorConfig } from './config.js';
import type { Repos } from '../store/repos.js';
import type { NodeRecord } from '../store/nodes.js';
import type { Logger } from '../util/logger.js';
import type { Monitor } from './monitor.js';
import { HostKeyPins, pinnedConnect, recordHostKeyRefusal } from '../remote/host-keys.js';
import { NODE_PROBE_COMMAND, nodeSample, parseNodeProbe, type TimedProbe } from './node-probe.js';

export interface NodeCollectorOptions {
  repos: Pick<Repos, 'nodes' | 'events'>;
  /** The monitor's section, remote.exec's SSH settings, and where host keys are pinned. */
  config: { monitor: MonitorConfig } & Pick<FrozenConfig, 'remote' | 'dataDir' | 'sharedRoot'>;
  logger: Logger;
  monitor: Pick<Monitor, 'recordNode'>;
  privateKeyPath: string;
  now?: () => number;
}

interface Session {
  ip: string;
  ssh: NodeSSH;
}

/** A probe prints a few KB; the command gets at most this long (and never longer than a round). */
const PROBE_TIMEOUT_MS = 10_000;

export class NodeCollector {
  private timer: NodeJS.Timeout | undefined;
  private round_: Promise<number> | undefined;
  private stopped = false;
  private readonly sessions = new Map<string, Session>();
  /** Handshakes in progress, cut short by stop() (a dead node would otherwise hold it for readyTimeout). */
  private readonly connecting = new Set<NodeSSH>();
  private readonly previous = new Map<string, TimedProbe>();
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly hostKeys: HostKeyPins;
  /** Refusals already reported (mac + reason), so a round every few seconds does not flood the events. */
  private readonly refusalsReported = new Set<string>();

  constructor(private readonly o: NodeCollectorOptions) {
    this.hostKeys = HostKeyPins.forConfig(o.config);
    this.now = o.now ?? Date.now;
    this.log = o.logger.child({ module: 'node-collector' });
  }

  private get intervalMs(): number {
    return this.o.config.monitor.nodeSshSeconds * 1000;
  }

  /** Starts the timer (no-op when `monitor.nodeSshSeconds` is 0). */
  start(): void {
    if (this.timer || !this.intervalMs) return;
    this.stopped = false;
    void this.round();
    this.timer = setInterval(() => void this.round(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and closes every session; an in-flight round ends at once (its sessions are gone). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const s of this.sessions.values()) s.ssh.dispose();
    this.sessions.clear();
    for (const ssh of this.connecting) ssh.connection?.destroy();
    await this.round_;
  }

  /**
   * One round over the deployed nodes, at most `remote.exec.parallel` at once. Overlapping rounds are
   * skipped (the running one's promise is returned). Resolves to the number of samples recorded.
   */
  round(): Promise<number> {
    this.round_ ??= this.runRound().finally(() => (this.round_ = undefined));
    return this.round_;
  }

  private async runRound(): Promise<number> {
    let targets: NodeRecord[];
    try {
      targets = this.o.repos.nodes.list().filter((n) => n.state === 'deployed' && n.ip);
    } catch (err) {
      this.log.warn({ err }, 'could not list nodes to sample');
      return 0;
    }
    this.forget(new Map(targets.map((n) => [n.mac, n.ip ?? ''])));
    let next = 0;
    let recorded = 0;
    const worker = async (): Promise<void> => {
      while (next < targets.length && !this.stopped) {
        const node = targets[next++]!;
        if (await this.sampleNode(node)) recorded++;
      }
    };
    const parallel = Math.min(this.o.config.remote.exec.parallel, targets.length);
    await Promise.all(Array.from({ length: parallel }, worker));
    return recorded;
  }

  /** Sessions and counters of nodes that left `deployed` or changed address are dropped. */
  private forget(current: ReadonlyMap<string, string>): void {
    for (const [mac, s] of this.sessions) {
      if (current.get(mac) === s.ip) continue;
      s.ssh.dispose();
      this.sessions.delete(mac);
      this.previous.delete(mac);
    }
    for (const mac of this.previous.keys()) if (!current.has(mac)) this.previous.delete(mac);
  }

  private async sampleNode(node: NodeRecord): Promise<boolean> {
    const ip = node.ip ?? '';
    let text: string;
    try {
      text = await this.probe(node.mac, ip);
    } catch (err) {
      this.log.debug({ node: node.name, ip, err: (err as Error).message }, 'node not sampled');
      return false;
    }
    if (this.stopped) return false;
    const cur: TimedProbe = { at: this.now(), probe: parseNodeProbe(text) };
    const sample = nodeSample(cur, this.previous.get(node.mac));
    this.previous.set(node.mac, cur);
    try {
      this.o.monitor.recordNode(node.mac, sample);
      return true;
    } catch (err) {
      this.log.warn({ err, node: node.name }, 'could not store a node sample');
      return false;
    }
  }

  /**
   * Runs the probe on a kept session; a kept session that fails (the node rebooted, sshd restarted) is
   * replaced by a fresh one once, so a reboot costs no sample once the node is back.
   */
  private async probe(mac: string, ip: string): Promise<string> {
    const kept = this.sessions.get(mac);
    if (kept?.ssh.isConnected()) {
      try {
        return await this.exec(kept.ssh);
      } catch {
        this.drop(mac, kept);
      }
    } else if (kept) this.drop(mac, kept);
    const session = { ip, ssh: await this.connect(mac, ip) };
    if (this.stopped) {
      session.ssh.dispose();
      throw new Error('collector stopped');
    }
    this.sessions.set(mac, session);
    try {
      return await this.exec(session.ssh);
    } catch (err) {
      this.drop(mac, session);
      throw err;
    }
  }

  private drop(mac: string, s: Session): void {
    s.ssh.dispose();
    if (this.sessions.get(mac) === s) this.sessions.delete(mac);
  }

  private async connect(mac: string, ip: string): Promise<NodeSSH> {
    const { exec } = this.o.config.remote;
    const ssh = new NodeSSH();
    const node = { mac, name: this.o.repos.nodes.get(mac)?.name ?? mac };
    const pin = pinnedConnect(this.hostKeys, node);
    this.connecting.add(ssh);
    try {
      await ssh.connect({
        host: ip,
        port: exec.port,
        username: exec.user,
        privateKeyPath: this.o.privateKeyPath,
        // Bounded by the round, so one dead node cannot hold a worker past the next round.
        readyTimeout: Math.min(exec.connectTimeoutSeconds * 1000, this.intervalMs || Infinity),
        // Detects a peer that vanished without a FIN, so a kept session is not trusted forever.
        keepaliveInterval: 15_000,
        keepaliveCountMax: 3,
        // Pinned as for `corral node exec` (master/remote/host-keys.ts): no probe runs on an impostor.
        hostVerifier: pin.hostVerifier,
      });
    } catch (err) {
      ssh.dispose();
      const refused = pin.verdict();
      if (refused && !refused.ok) {
        const reason = refused.reason ?? 'SSH host key refused';
        if (!this.refusalsReported.has(`${mac} ${reason}`)) {
          this.refusalsReported.add(`${mac} ${reason}`);
          this.log.warn({ mac, ip }, reason);
          recordHostKeyRefusal(this.o.repos, node, reason);
        }
        throw new Error(reason);
      }
      throw new Error(((err as Error).message || 'connect failed').split('\n')[0]);
    } finally {
      this.connecting.delete(ssh);
    }
    // node-ssh stops listening for errors once connected; an unheard 'error' (reset, keepalive timeout)
    // would be thrown by the EventEmitter and end the master. The session then just counts as closed.
    ssh.connection?.on('error', (err: Error) =>
      this.log.debug({ ip, err: err.message }, 'SSH session to a node broke'),
    );
    return ssh;
  }

  private async exec(ssh: NodeSSH): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = Math.min(PROBE_TIMEOUT_MS, this.intervalMs || PROBE_TIMEOUT_MS);
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`probe still running after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const r = await Promise.race([ssh.execCommand(NODE_PROBE_COMMAND), timedOut]);
      // Exit status is that of the last part; a failing part only leaves its own field empty.
      if (!r.stdout.includes('@stat')) throw new Error(`probe printed nothing: ${r.stderr.slice(0, 200)}`);
      return r.stdout;
    } finally {
      clearTimeout(timer);
    }
  }
}
