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
  paths: HaproxyPaths;
  services: readonly { spec: ServiceSpec; servers: readonly BackendServer[] }[];
}

/** Proxy names carry a prefix so a service called "stats" or "global" cannot collide with anything. */
export function proxyName(service: string): string {
  return `svc_${service}`;
}

export function renderHaproxyConfig(input: RenderInput): string {
  return renderTemplate('haproxy.cfg.hbs', {
    paths: input.paths,
    services: [...input.services]
      .sort((a, b) => a.spec.name.localeCompare(b.spec.name))
      .map(({ spec, servers }) => ({
        name: spec.name,
        proxy: proxyName(spec.name),
        bind: `${input.bind}:${spec.port}`,
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
