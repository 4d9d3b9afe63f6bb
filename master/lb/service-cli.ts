/**
 * `corral service ...`: a thin client of the REST API (the same validation and the same errors as the
 * console). cli.ts parses nothing here but hands over argv and the environment values it read.
 */
import { parseArgs } from 'node:util';
import { isErrorCode } from '../api/errors.js';
import { CorralError } from '../util/errors.js';
import type { ServiceView } from './load-balancer.js';

export const SERVICE_HELP = `  corral service list | show NAME | rm NAME | reload
  corral service add NAME --port N --backend-port N (--role ROLE | --nodes N1,N2)
                [--protocol http|tcp] [--check-path PATH [--expect-status N] | --tcp-check]
                [--interval-ms N] [--rise N] [--fall N]
  corral service drain|maint|ready NAME NODE
      Load-balanced services through the master's HAProxy, via the REST API of a running master:
      --url URL (default $CORRAL_URL or http://127.0.0.1), --user NAME (default admin),
      password from $CORRAL_PASSWORD.
`;

export interface ServiceCliEnv {
  url?: string | undefined;
  password?: string | undefined;
  out: (text: string) => void;
}

function usage(message: string): never {
  throw new CorralError('USAGE', message);
}

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) usage(`--${name} must be a whole number (got '${v}')`);
  return Number(v);
}

export async function runServiceCli(argv: string[], env: ServiceCliEnv): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' },
        user: { type: 'string', default: 'admin' },
        port: { type: 'string' },
        'backend-port': { type: 'string' },
        role: { type: 'string' },
        nodes: { type: 'string' },
        protocol: { type: 'string' },
        'check-path': { type: 'string' },
        'expect-status': { type: 'string' },
        'tcp-check': { type: 'boolean' },
        'interval-ms': { type: 'string' },
        rise: { type: 'string' },
        fall: { type: 'string' },
      },
    });
  } catch (err) {
    return usage((err as Error).message.split('\n')[0] ?? 'bad arguments');
  }
  const { values: v, positionals } = parsed;
  const [sub, name, node] = positionals;
  const base = (v.url ?? env.url ?? 'http://127.0.0.1').replace(/\/$/, '');
  const auth = `Basic ${Buffer.from(`${v.user}:${env.password ?? ''}`).toString('base64')}`;
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    let res: Response;
    try {
      res = await fetch(`${base}/api/v1${path}`, {
        method,
        headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new CorralError('INTERNAL', `cannot reach the master at ${base}: ${(err as Error).message}`);
    }
    if (res.status === 204) return undefined;
    const json = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } };
    if (!res.ok) {
      const code = json.error?.code ?? 'INTERNAL';
      throw new CorralError(
        isErrorCode(code) ? code : 'INTERNAL',
        json.error?.message ?? `HTTP ${res.status}`,
      );
    }
    return json;
  };
  const need = (what: string | undefined, label: string): string => what ?? usage(`missing ${label}`);

  switch (sub) {
    case 'list': {
      const { services } = (await call('GET', '/services')) as { services: ServiceView[] };
      env.out(formatList(services));
      return 0;
    }
    case 'show': {
      const { service } = (await call('GET', `/services/${encodeURIComponent(need(name, 'NAME'))}`)) as {
        service: ServiceView;
      };
      env.out(formatService(service));
      return 0;
    }
    case 'add': {
      const body = {
        name: need(name, 'NAME'),
        port: int('port', v.port),
        backendPort: int('backend-port', v['backend-port']),
        ...(v.protocol ? { protocol: v.protocol } : {}),
        ...(v.role ? { role: v.role } : {}),
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
      env.out(formatService(service));
      return 0;
    }
    case 'rm':
      await call('DELETE', `/services/${encodeURIComponent(need(name, 'NAME'))}`);
      env.out(`service ${name} removed\n`);
      return 0;
    case 'reload': {
      const r = (await call('POST', '/lb/reload')) as { haproxy: { workerPid: number; reloads: number } };
      env.out(`haproxy reloaded: worker ${r.haproxy.workerPid}, ${r.haproxy.reloads} reloads\n`);
      return 0;
    }
    case 'drain':
    case 'maint':
    case 'ready': {
      const path = `/services/${encodeURIComponent(need(name, 'NAME'))}/servers/${encodeURIComponent(need(node, 'NODE'))}/state`;
      const { server } = (await call('POST', path, { state: sub })) as {
        server: { name: string; admin: string };
      };
      env.out(`${server.name} in ${name}: ${server.admin}\n`);
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
    s.spec.role ? `role ${s.spec.role}` : (s.spec.nodes ?? []).join(','),
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

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}
