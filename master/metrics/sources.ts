/**
 * Adapters from the subsystems' own status views to the exposition's facts, so master.ts hands over the
 * objects it already has and the registry stays independent of HA and load-balancer types.
 */
import type { HaStatus } from '../ha/controller.js';
import type { LbStatus, ServiceView } from '../lb/load-balancer.js';
import type { HaFacts, LbFacts } from './registry.js';

export function haFacts(s: Pick<HaStatus, 'role' | 'epoch' | 'backup' | 'follower'>): HaFacts {
  if (s.role === 'primary') {
    return {
      role: 'primary',
      epoch: s.epoch,
      lagSeconds: s.backup?.lagSeconds ?? null,
      lagChanges: s.backup?.lagChanges ?? null,
      peerConnected: s.backup?.connected ?? false,
    };
  }
  return {
    role: 'backup',
    epoch: s.epoch,
    lagSeconds: s.follower?.lagSeconds ?? null,
    lagChanges: s.follower?.lagChanges ?? null,
    peerConnected: s.follower?.connected ?? false,
  };
}

/** HAProxy's state; undefined while the load balancer is off (lb.enabled false). */
export function lbFacts(lb: { status(): LbStatus; views(): ServiceView[] }): LbFacts | undefined {
  const st = lb.status();
  if (!st.enabled) return undefined;
  return {
    haproxyRunning: st.haproxy.running,
    reloads: st.haproxy.reloads,
    restarts: st.haproxy.restarts,
    servers: lb
      .views()
      .flatMap((v) =>
        v.servers.map((s) => ({ service: v.spec.name, server: s.name, health: s.health, admin: s.admin })),
      ),
  };
}
