/**
 * haproxy.cfg from the declared services and their members (templates/haproxy.cfg.hbs). Pure: the same
 * inputs give the same text byte for byte, so "did anything change?" is a string comparison and the
 * golden test in test/unit/lb-render.test.ts pins the output.
 */
import { renderTemplate } from '../util/templates.js';
import type { BackendServer } from './membership.js';
import type { ServiceSpec } from './service-spec.js';

export interface HaproxyPaths {
  /** Runtime API (stats) socket, admin level; also carries listeners across reloads. */
  adminSocket: string;
  serverStateFile: string;
}

export interface RenderInput {
  bind: string;
  /**
   * The bind address may not be on this host (a VIP keepalived holds on the other master): HAProxy's
   * `transparent` (IP_TRANSPARENT) lets it listen anyway, so the backup is ready the moment the VIP moves.
   */
  nonLocalBind?: boolean;
  paths: HaproxyPaths;
  services: readonly { spec: ServiceSpec; servers: readonly BackendServer[] }[];
  /** HAProxy's version as [major, minor]: directives newer than the running HAProxy are left out. */
  version?: readonly [number, number];
}

/** `HAProxy version 2.6.12-1+deb12u4 ...` → [2, 6]. */
export function parseHaproxyVersion(text: string): [number, number] | undefined {
  const m = /HA-?Proxy version (\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function atLeast(v: readonly [number, number] | undefined, major: number, minor: number): boolean {
  return !!v && (v[0] > major || (v[0] === major && v[1] >= minor));
}

/** Proxy names carry a prefix so a service called "stats" or "global" cannot collide with anything. */
export function proxyName(service: string): string {
  return `svc_${service}`;
}

export function renderHaproxyConfig(input: RenderInput): string {
  return renderTemplate('haproxy.cfg.hbs', {
    paths: input.paths,
    idleCloseOnResponse: atLeast(input.version, 2, 7),
    services: [...input.services]
      .sort((a, b) => a.spec.name.localeCompare(b.spec.name))
      .map(({ spec, servers }) => ({
        name: spec.name,
        proxy: proxyName(spec.name),
        bind: `${input.bind}:${spec.port}${input.nonLocalBind ? ' transparent' : ''}`,
        mode: spec.protocol,
        balance: spec.balance,
        http: spec.protocol === 'http',
        httpCheck:
          spec.check.type === 'http' ? { path: spec.check.path, status: spec.check.expectStatus } : false,
        inter: spec.intervalMs,
        rise: spec.rise,
        fall: spec.fall,
        servers,
      })),
  });
}
