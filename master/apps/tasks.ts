/**
 * The engine's tasks of a service (`docker inspect` of `docker service ps -q`) → one row per instance
 * slot: the current task's state, node and version, and its restarts. Pure, unit-tested.
 * Restarts count the slot's tasks of the current version beyond the first: a task the engine replaced
 * because its container ended (a rollout replaces tasks too, but with another version). The engine keeps
 * a bounded task history per slot (`--task-history-limit`), so the count saturates there.
 */
import { VERSION_LABEL } from './docker-args.js';

export interface EngineTask {
  ID: string;
  Slot?: number;
  NodeID?: string;
  CreatedAt: string;
  DesiredState: string;
  Status: {
    State: string;
    Err?: string;
    Message?: string;
    Timestamp?: string;
    /** Host-mode published ports of the task (bridge apps: the port the engine picked on the node). */
    PortStatus?: {
      Ports?: { TargetPort?: number; PublishedPort?: number; Protocol?: string; PublishMode?: string }[];
    };
  };
  Spec: { ContainerSpec?: { Labels?: Record<string, string> } };
}

export interface InstanceView {
  slot: number;
  state: string;
  desired: string;
  node: string | null;
  version: number | null;
  restarts: number;
  error: string | null;
  since: string | null;
  /** Where the node publishes the instance's ports (bridge apps); empty on the host network. */
  ports: InstancePort[];
}

export interface InstancePort {
  target: number;
  published: number;
  protocol: string;
}

/** `30001->8000/tcp 30002->5353/udp`: where to reach an instance on its node (the CLI's column). */
export function publishedText(i: Pick<InstanceView, 'ports'>): string {
  return i.ports.map((p) => `${p.published}->${p.target}/${p.protocol}`).join(' ');
}

export function portsOf(t: EngineTask): InstancePort[] {
  return (t.Status.PortStatus?.Ports ?? []).flatMap((p) =>
    p.TargetPort !== undefined && p.PublishedPort !== undefined && p.PublishedPort > 0
      ? [{ target: p.TargetPort, published: p.PublishedPort, protocol: p.Protocol ?? 'tcp' }]
      : [],
  );
}

export function taskVersion(t: EngineTask): number | null {
  const v = t.Spec.ContainerSpec?.Labels?.[VERSION_LABEL];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
}

export function instancesOf(tasks: readonly EngineTask[], nodeName: (id: string) => string): InstanceView[] {
  const slots = new Map<number, EngineTask[]>();
  for (const t of tasks) {
    if (t.Slot === undefined) continue;
    const list = slots.get(t.Slot) ?? [];
    list.push(t);
    slots.set(t.Slot, list);
  }
  const out: InstanceView[] = [];
  for (const [slot, list] of slots) {
    list.sort((a, b) => a.CreatedAt.localeCompare(b.CreatedAt));
    // The slot's current task is the newest the engine wants running (else the newest at all).
    const current = [...list].reverse().find((t) => t.DesiredState === 'running') ?? list[list.length - 1]!;
    const version = taskVersion(current);
    out.push({
      slot,
      state: current.Status.State,
      desired: current.DesiredState,
      node: current.NodeID ? nodeName(current.NodeID) : null,
      version,
      restarts: Math.max(0, list.filter((t) => taskVersion(t) === version).length - 1),
      error: current.Status.Err ?? null,
      since: current.Status.Timestamp ?? null,
      ports: portsOf(current),
    });
  }
  // A slot whose tasks all shut down (scaled away) is not an instance any more.
  return out.filter((i) => i.desired !== 'shutdown' || i.state === 'running').sort((a, b) => a.slot - b.slot);
}
