/**
 * `corral service ...`: a thin client of the REST API (the same validation and the same errors as the
 * console), reaching the master through the current profile (or --profile; --url with CORRAL_PASSWORD is
 * the older override). cli.ts parses the flags declared here.
 */
import { urlClient } from '../cli/api-client.js';
import { defineCommand, usage, type Parsed } from '../cli/command.js';
import { table } from '../cli/table.js';
import type { ServiceView } from './load-balancer.js';
import { servedBy } from './service-spec.js';

const SERVICE_HELP = `  corral service list | show NAME | rm NAME | reload
  corral service add NAME --port N --backend-port N (--role ROLE | --tag TAG | --nodes N1,N2)
                [--protocol http|tcp] [--check-path PATH [--expect-status N] | --tcp-check]
                [--interval-ms N] [--rise N] [--fall N]
  corral service drain|maint|ready NAME NODE
      Load-balanced services through the master's HAProxy, via the REST API of the master of the
      current profile (or --profile NAME). The older override: --url URL (or $CORRAL_URL) with
      --user NAME (default admin) and the password in $CORRAL_PASSWORD.
`;

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) usage(`--${name} must be a whole number (got '${v}')`);
  return Number(v);
}

const SERVICE_OPTIONS = {
  profile: { type: 'string' },
  url: { type: 'string' },
  user: { type: 'string', default: 'admin' },
  port: { type: 'string' },
  'backend-port': { type: 'string' },
  role: { type: 'string' },
  tag: { type: 'string' },
  nodes: { type: 'string' },
  protocol: { type: 'string' },
  'check-path': { type: 'string' },
  'expect-status': { type: 'string' },
  'tcp-check': { type: 'boolean' },
  'interval-ms': { type: 'string' },
  rise: { type: 'string' },
  fall: { type: 'string' },
} as const;

type Values = Parsed<typeof SERVICE_OPTIONS>['values'];

export const serviceCommand = defineCommand({
  path: ['service'],
  verbs: ['list', 'show', 'add', 'rm', 'reload', 'drain', 'maint', 'ready'],
  help: SERVICE_HELP,
  options: SERVICE_OPTIONS,
  async run({ values: v, positionals }, ctx) {
    const [sub, name, node] = positionals;
    const url = v.profile === undefined ? (v.url ?? ctx.env['CORRAL_URL']) : undefined;
    const api = url ? urlClient(url, v.user, ctx.env['CORRAL_PASSWORD'] ?? '') : await ctx.api(v.profile);
    const call = (method: string, path: string, body?: unknown): Promise<unknown> =>
      api.call(method, path, body, 30_000);
    const out = ctx.out;
    return runService(sub, name, node, v, call, out);
  },
});

async function runService(
  sub: string | undefined,
  name: string | undefined,
  node: string | undefined,
  v: Values,
  call: (method: string, path: string, body?: unknown) => Promise<unknown>,
  out: (text: string) => void,
): Promise<number> {
  const need = (what: string | undefined, label: string): string => what ?? usage(`missing ${label}`);

  switch (sub) {
    case 'list': {
      const { services } = (await call('GET', '/services')) as { services: ServiceView[] };
      out(formatList(services));
      return 0;
    }
    case 'show': {
      const { service } = (await call('GET', `/services/${encodeURIComponent(need(name, 'NAME'))}`)) as {
        service: ServiceView;
      };
      out(formatService(service));
      return 0;
    }
    case 'add': {
      const body = {
        name: need(name, 'NAME'),
        port: int('port', v.port),
        backendPort: int('backend-port', v['backend-port']),
        ...(v.protocol ? { protocol: v.protocol } : {}),
        ...(v.role ? { role: v.role } : {}),
        ...(v.tag ? { tag: v.tag } : {}),
        ...(v.nodes ? { nodes: v.nodes.split(',').filter(Boolean) } : {}),
        ...(v['tcp-check']
          ? { check: { type: 'tcp' } }
          : v['check-path']
            ? {
                check: {
                  type: 'http',
                  path: v['check-path'],
                  ...(v['expect-status'] ? { expectStatus: int('expect-status', v['expect-status']) } : {}),
                },
              }
            : {}),
        ...(v['interval-ms'] ? { intervalMs: int('interval-ms', v['interval-ms']) } : {}),
        ...(v.rise ? { rise: int('rise', v.rise) } : {}),
        ...(v.fall ? { fall: int('fall', v.fall) } : {}),
      };
      const { service } = (await call('POST', '/services', body)) as { service: ServiceView };
      out(formatService(service));
      return 0;
    }
    case 'rm':
      await call('DELETE', `/services/${encodeURIComponent(need(name, 'NAME'))}`);
      out(`service ${name} removed\n`);
      return 0;
    case 'reload': {
      const r = (await call('POST', '/lb/reload')) as { haproxy: { workerPid: number; reloads: number } };
      out(`haproxy reloaded: worker ${r.haproxy.workerPid}, ${r.haproxy.reloads} reloads\n`);
      return 0;
    }
    case 'drain':
    case 'maint':
    case 'ready': {
      const path = `/services/${encodeURIComponent(need(name, 'NAME'))}/servers/${encodeURIComponent(need(node, 'NODE'))}/state`;
      const { server } = (await call('POST', path, { state: sub })) as {
        server: { name: string; admin: string };
      };
      out(`${server.name} in ${name}: ${server.admin}\n`);
      return 0;
    }
    default:
      return usage(
        `unknown service command '${sub ?? ''}' (list, show, add, rm, reload, drain, maint, ready)`,
      );
  }
}

export function formatList(services: ServiceView[]): string {
  if (!services.length) return 'no services\n';
  const rows = services.map((s) => [
    s.spec.name,
    s.frontend,
    s.spec.protocol,
    servedBy(s.spec, ','),
    `${s.up}/${s.servers.length} up`,
    s.health,
  ]);
  return table([['NAME', 'FRONT END', 'PROTO', 'SERVED BY', 'UP', 'HEALTH'], ...rows]);
}

export function formatService(s: ServiceView): string {
  const head = `${s.spec.name}  ${s.frontend} (${s.spec.protocol})  ${s.health}, ${s.up}/${s.servers.length} up\n`;
  if (!s.servers.length) return `${head}no member nodes\n`;
  return (
    head +
    table([
      ['NODE', 'ADDRESS', 'HEALTH', 'STATUS', 'CHECK', 'ADMIN'],
      ...s.servers.map((x) => [
        x.name,
        `${x.address}:${x.port}`,
        x.health,
        x.status ?? '-',
        [x.checkStatus, x.checkCode].filter((p) => p !== null && p !== '').join(' ') || '-',
        x.admin,
      ]),
    ])
  );
}
