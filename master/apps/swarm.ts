/**
 * Keeps the engine's swarm in line with the inventory (issue 21): engine nodes (role or tag, serving state,
 * an address) are in it, the first as the one that initialises it, managers up to `managers` (3: Raft keeps
 * a majority with one of them lost), the rest workers; a node that stops being an engine node (retired,
 * failed, redeploying, untagged) is drained, demoted if a manager, then removed. Each pass reads before it
 * writes and changes at most what differs, so running it again changes nothing (idempotent).
 */
import { SERVING_STATES } from '../lb/membership.js';
import type { NodeRecord } from '../store/nodes.js';
import type { Logger } from '../util/logger.js';
import type { AppsConfig } from './config.js';
import { nodeLabels } from './docker-args.js';
import { mustRun, type Docker } from './engine.js';

export interface SwarmNodeView {
  name: string;
  mac: string;
  nodeId: string | null;
  /** manager (leader), manager, worker, or not joined. */
  role: 'leader' | 'manager' | 'worker' | 'none';
  /** The engine's view: ready, down, unknown; `unreachable` when its docker did not answer over SSH. */
  state: string;
  availability: string;
}

export interface SwarmStatus {
  engineNodes: number;
  managers: number;
  wantedManagers: number;
  /** Said plainly when there are fewer than three managers: losing one then stops the swarm's control. */
  quorumNote: string | null;
  nodes: SwarmNodeView[];
  error: string | null;
  checkedAt: string | null;
}

/** What `docker node inspect` says, the parts used here. */
interface InspectedNode {
  ID: string;
  Spec: { Labels?: Record<string, string>; Role: string; Availability: string };
  Status: { State: string; Addr?: string };
  ManagerStatus?: { Leader?: boolean; Reachability?: string };
}

interface LocalSwarm {
  NodeID: string;
  LocalNodeState: string;
  ControlAvailable: boolean;
}

export function isEngineNode(n: NodeRecord, cfg: AppsConfig['engine']): boolean {
  if (!SERVING_STATES.includes(n.state) || !n.ip) return false;
  return cfg.role ? n.role === cfg.role : n.tags.includes(cfg.tag);
}

export function quorumNote(managers: number): string | null {
  if (managers >= 3) return null;
  if (managers === 0) return 'no swarm manager: apps cannot be scheduled';
  return `${managers} manager(s), fewer than 3: the swarm has no quorum tolerance, losing a manager stops scheduling changes`;
}

const target = (n: NodeRecord): { name: string; mac: string; host: string } => ({
  name: n.name,
  mac: n.mac,
  host: n.ip ?? '',
});

export class Swarm {
  private last: SwarmStatus = {
    engineNodes: 0,
    managers: 0,
    wantedManagers: 3,
    quorumNote: null,
    nodes: [],
    error: null,
    checkedAt: null,
  };
  /** Swarm node id → Corral node name, from the labels Corral put on (for the instance table). */
  names = new Map<string, string>();

  constructor(
    private readonly docker: Docker,
    private readonly cfg: AppsConfig,
    private readonly log: Logger,
  ) {}

  status(): SwarmStatus {
    return this.last;
  }

  /**
   * One pass; returns a reachable manager to drive services through (undefined: no swarm yet). Failures of
   * single nodes are logged and left to the next pass.
   */
  async reconcile(all: readonly NodeRecord[]): Promise<NodeRecord | undefined> {
    const wanted = this.cfg.engine.managers;
    const engine = all.filter((n) => isEngineNode(n, this.cfg.engine)).sort((a, b) => a.seqNo - b.seqNo);
    const local = new Map<string, LocalSwarm | undefined>();
    await Promise.all(
      engine.map(async (n) => {
        const r = await this.docker.run(target(n), ['info', '--format', '{{json .Swarm}}']);
        if (!r.ok) this.log.warn({ node: n.name, err: r.error }, 'engine node did not answer');
        local.set(n.mac, r.ok ? (JSON.parse(r.stdout) as LocalSwarm) : undefined);
      }),
    );
    // Drive the swarm through the first manager that answers with a leader behind it. A manager whose own
    // docker answers may still be cut off from the Raft leader (an election after the leader's node was
    // lost: "The swarm does not have a leader"), so each candidate is asked in turn, not only the first.
    const candidates = engine.filter(
      (n) => local.get(n.mac)?.LocalNodeState === 'active' && local.get(n.mac)?.ControlAvailable,
    );
    let manager: NodeRecord | undefined;
    let swarmNodes: InspectedNode[] = [];
    const refusals: string[] = [];
    for (const c of candidates) {
      try {
        swarmNodes = await this.inspectAll(target(c));
        manager = c;
        break;
      } catch (err) {
        refusals.push((err as Error).message);
      }
    }
    if (!manager) {
      const first = engine.find((n) => local.get(n.mac)?.LocalNodeState === 'inactive');
      const anyActive = engine.some((n) => local.get(n.mac)?.LocalNodeState === 'active');
      if (!first || anyActive) {
        const error = anyActive
          ? `no reachable swarm manager${refusals.length ? `: ${refusals.join('; ')}` : ''}`
          : null;
        if (error)
          this.log.warn({ candidates: candidates.map((c) => c.name), error }, 'no swarm manager answered');
        this.last = { ...this.empty(engine.length), error };
        return undefined;
      }
      await mustRun(this.docker, target(first), [
        'swarm',
        'init',
        '--advertise-addr',
        first.ip!,
        '--listen-addr',
        `${first.ip!}:2377`,
      ]);
      // Faster failure detection than the 5 s default where asked; a bounded task history per slot
      // (restarts are counted from it).
      await mustRun(this.docker, target(first), [
        'swarm',
        'update',
        '--dispatcher-heartbeat',
        `${this.cfg.engine.heartbeatSeconds}s`,
        '--task-history-limit',
        String(this.cfg.taskHistory),
      ]);
      this.log.info({ node: first.name }, 'swarm initialised');
      manager = first;
      local.set(first.mac, { NodeID: '', LocalNodeState: 'active', ControlAvailable: true });
      swarmNodes = await this.inspectAll(target(first));
    }
    const m = target(manager);
    // Managers are counted by Raft membership, not by readiness: a manager whose node is down is still a
    // member until it is demoted or removed. Counting only ready ones made Corral promote the free worker
    // while the swarm was still failing over from a lost leader; the promoted node then tried to join Raft
    // through the lost leader's address, stopped its manager ("can't initialize raft node ... connection
    // refused") and stayed Down, so the lost instance had no node to move to (seen in apps-swarm, and with
    // plain docker commands: docs/apps.md). A lost manager is replaced once Corral removes its node.
    let managers = swarmNodes.filter((s) => s.Spec.Role === 'manager').length;

    // Join the engine nodes that are not in yet.
    const joining = engine.filter((n) => local.get(n.mac)?.LocalNodeState === 'inactive' && n !== manager);
    if (joining.length > 0) {
      const tokens = {
        manager: (await mustRun(this.docker, m, ['swarm', 'join-token', '-q', 'manager'])).trim(),
        worker: (await mustRun(this.docker, m, ['swarm', 'join-token', '-q', 'worker'])).trim(),
      };
      for (const n of joining) {
        const as = managers < wanted ? 'manager' : 'worker';
        const r = await this.docker.run(target(n), [
          'swarm',
          'join',
          '--token',
          tokens[as],
          '--advertise-addr',
          n.ip!,
          '--listen-addr',
          `${n.ip!}:2377`,
          `${manager.ip!}:2377`,
        ]);
        if (r.ok) {
          if (as === 'manager') managers++;
          this.log.info({ node: n.name, as }, 'engine node joined the swarm');
        } else this.log.warn({ node: n.name, err: r.error }, 'engine node could not join the swarm');
      }
      swarmNodes = await this.inspectAll(m);
    }

    // Label the engine nodes with Corral's identity, role and tags (placement constraints match them).
    // mac → swarm node id (of the node as it runs now); asked again only of nodes that joined in this pass.
    const ids = new Map<string, string>();
    for (const n of engine) {
      const seen = local.get(n.mac);
      if (!seen) continue; // its docker did not answer this pass
      const id =
        seen.NodeID ||
        (await this.docker.run(target(n), ['info', '--format', '{{.Swarm.NodeID}}'])).stdout.trim();
      if (id) ids.set(n.mac, id);
    }
    for (const n of engine) {
      const id = ids.get(n.mac);
      const s = swarmNodes.find((x) => x.ID === id);
      if (!id || !s) continue;
      const want = nodeLabels(n);
      const have = s.Spec.Labels ?? {};
      const add = Object.entries(want).filter(([k, v]) => have[k] !== v);
      const rm = Object.keys(have).filter((k) => k.startsWith('corral.') && !(k in want));
      if (add.length || rm.length) {
        await mustRun(this.docker, m, [
          'node',
          'update',
          ...add.flatMap(([k, v]) => ['--label-add', `${k}=${v}`]),
          ...rm.flatMap((k) => ['--label-rm', k]),
          id,
        ]);
      }
    }
    // Promote ready workers while manager members are short (a manager whose node left is replaced this way).
    for (const s of swarmNodes) {
      if (managers >= wanted) break;
      const mac = s.Spec.Labels?.['corral.mac'];
      if (s.Spec.Role === 'worker' && s.Status.State === 'ready' && engine.some((n) => n.mac === mac)) {
        await mustRun(this.docker, m, ['node', 'promote', s.ID]);
        managers++;
      }
    }
    // Nodes the engine should no longer use: drain (tasks move), then demote and remove on a later pass.
    for (const s of swarmNodes) {
      const mac = s.Spec.Labels?.['corral.mac'];
      if (!mac) continue;
      const stillEngine = engine.some((n) => n.mac === mac);
      // A redeployed node rejoins with a new id: its old entry (down, same MAC) goes. A node whose docker
      // did not answer this pass has no known id and is only down: the engine reschedules, Corral keeps it.
      const answeredId = ids.get(mac);
      const stale =
        stillEngine && answeredId !== undefined && answeredId !== s.ID && s.Status.State === 'down';
      if (stillEngine && !stale) continue;
      if (s.ID === ids.get(manager.mac)) continue; // never remove the node we are talking through
      // One node's removal failing must not stop the apps' pass: logged, tried again next pass.
      try {
        if (s.Spec.Availability !== 'drain') {
          await mustRun(this.docker, m, ['node', 'update', '--availability', 'drain', s.ID]);
          this.log.info({ mac, nodeId: s.ID }, 'engine node drained');
          continue;
        }
        if (s.Spec.Role === 'manager') await mustRun(this.docker, m, ['node', 'demote', s.ID]);
        await mustRun(this.docker, m, ['node', 'rm', '--force', s.ID]);
        this.log.info({ mac, nodeId: s.ID }, 'engine node removed from the swarm');
      } catch (err) {
        this.log.warn({ mac, nodeId: s.ID, err: (err as Error).message }, 'engine node not removed yet');
      }
    }

    swarmNodes = await this.inspectAll(m);
    this.names = new Map(swarmNodes.map((s) => [s.ID, s.Spec.Labels?.['corral.name'] ?? s.ID.slice(0, 12)]));
    const readyManagers = swarmNodes.filter(
      (s) => s.Spec.Role === 'manager' && s.Status.State === 'ready',
    ).length;
    this.last = {
      engineNodes: engine.length,
      managers: readyManagers,
      wantedManagers: wanted,
      quorumNote: quorumNote(readyManagers),
      nodes: engine.map((n) => {
        const s = swarmNodes.find((x) => x.ID === ids.get(n.mac));
        return {
          name: n.name,
          mac: n.mac,
          nodeId: s?.ID ?? null,
          role: !s
            ? 'none'
            : s.ManagerStatus?.Leader
              ? 'leader'
              : s.Spec.Role === 'manager'
                ? 'manager'
                : 'worker',
          state: local.get(n.mac) ? (s?.Status.State ?? 'unknown') : 'unreachable',
          availability: s?.Spec.Availability ?? '',
        };
      }),
      error: null,
      checkedAt: new Date().toISOString(),
    };
    return manager;
  }

  private empty(engineNodes: number): SwarmStatus {
    return {
      engineNodes,
      managers: 0,
      wantedManagers: this.cfg.engine.managers,
      quorumNote: quorumNote(0),
      nodes: [],
      error: null,
      checkedAt: new Date().toISOString(),
    };
  }

  private async inspectAll(m: { name: string; mac: string; host: string }): Promise<InspectedNode[]> {
    const ids = (await mustRun(this.docker, m, ['node', 'ls', '-q'])).split('\n').filter(Boolean);
    if (ids.length === 0) return [];
    return JSON.parse(await mustRun(this.docker, m, ['node', 'inspect', ...ids])) as InspectedNode[];
  }
}
