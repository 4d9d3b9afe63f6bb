/**
 * The node's serial console in the browser (issue 20): xterm.js in the console page, a WebSocket on the
 * listener that serves the console, and behind it the node's serial line (a Unix socket in
 * serialConsole.socketDir, else the BMC's serial-over-LAN with the node's IPMI credentials). Sessions are
 * audited (who, node, start, end) and recorded for replay (recordings.ts).
 */
import { existsSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import express from 'express';
import { WebSocketServer, type WebSocket } from 'ws';
import type { FrozenConfig } from '../config.js';
import type { Started } from '../feature.js';
import { SecretBox } from '../remote/secrets.js';
import type { Repos } from '../store/repos.js';
import { clientIp } from '../util/client-ip.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { ConsoleContext } from '../../web-ui/page.js';
import { mountSerialConsole } from '../../web-ui/pages/serial-console.js';
import { parseCookies } from '../../web-ui/cookies.js';
import { resolveSession, SESSION_COOKIE } from '../../web-ui/session-guard.js';
import { ConsoleHub, parseControl, type ServerControl } from './hub.js';
import { socketLine, solLine, type LineSource, type SerialLine } from './lines.js';
import { Recordings } from './recordings.js';
import { checkUpgrade, WS_PATH } from './upgrade.js';

export interface SerialConsoleDeps {
  config: Pick<FrozenConfig, 'dataDir' | 'serialConsole' | 'remote'>;
  repos: Pick<Repos, 'nodes' | 'powerConfigs' | 'audit'>;
  logger: Logger;
}

/** A browser frame larger than this is not typing. */
const MAX_FRAME = 64 * 1024;
/** The session behind an open console is re-checked this often: signing out ends the console too. */
const RECHECK_MS = 15_000;

export function startSerialConsole(deps: SerialConsoleDeps): Started<{ hub: ConsoleHub }> | undefined {
  const { config, repos } = deps;
  const cfg = config.serialConsole;
  if (!cfg.enabled) return undefined;
  const log = deps.logger.child({ module: 'serial-console' });
  const recordings = new Recordings(
    join(config.dataDir, 'serial-console'),
    cfg.recordBytes,
    cfg.keepRecordings,
  );
  let secrets: SecretBox | undefined;

  const sourceOf = (mac: string): LineSource | undefined => {
    if (cfg.socketDir) {
      const path = join(cfg.socketDir, `${mac.replace(/:/g, '-')}.sock`);
      if (existsSync(path)) return { kind: 'socket', path };
    }
    const p = repos.powerConfigs.get(mac);
    if (p?.driver === 'ipmi' && p.address) return { kind: 'sol', host: p.address, port: p.port ?? 623 };
    return undefined;
  };

  const open = async (mac: string): Promise<SerialLine> => {
    const source = sourceOf(mac);
    if (!source) {
      throw new CorralError(
        'SERIAL_CONSOLE_UNAVAILABLE',
        `${mac} has no serial line (no IPMI driver, no socket)`,
      );
    }
    if (source.kind === 'socket') return socketLine(source.path);
    const p = repos.powerConfigs.get(mac);
    secrets ??= SecretBox.forDataDir(config.dataDir);
    // The same sealed credential the IPMI power driver uses, bound to this node (remote/power.ts).
    const password = p?.secret ? secrets.open(p.secret, `power:${mac}`) : '';
    return solLine(
      { host: source.host, port: source.port, username: p?.username ?? '', password },
      { bin: config.remote.power.ipmitoolBin, cipherSuite: config.remote.power.cipherSuite },
    );
  };

  const hub = new ConsoleHub({ open, logger: deps.logger });
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME });
  let consoleCtx: ConsoleContext | undefined;
  const sockets = new Set<WebSocket>();

  const refuse = (socket: Duplex, status: number, reason: string): void => {
    const text = {
      400: 'Bad Request',
      401: 'Unauthorized',
      403: 'Forbidden',
      404: 'Not Found',
      503: 'Service Unavailable',
    }[status];
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${reason}\n`,
    );
  };

  const audit = (
    req: IncomingMessage,
    actor: string,
    action: string,
    mac: string | undefined,
    outcome: 'ok' | 'denied' | 'failed',
    detail: string,
  ): void => {
    repos.audit.append({
      actor,
      via: 'console',
      action,
      target: mac ?? null,
      outcome,
      ip: clientIp(req),
      detail,
    });
  };

  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    if (!WS_PATH.test(new URL(req.url ?? '/', 'http://x').pathname)) return false;
    const ctx = consoleCtx;
    if (!ctx) {
      refuse(socket, 503, 'the console is not ready');
      return true;
    }
    const check = checkUpgrade(
      req,
      (r) => resolveSession(ctx, parseCookies(r.headers.cookie).get(SESSION_COOKIE) || undefined),
      (mac) => repos.nodes.get(mac) !== undefined,
    );
    if (!check.ok) {
      log.warn(
        { mac: check.mac, status: check.status, reason: check.reason, ip: clientIp(req) },
        'console refused',
      );
      audit(req, check.who?.user.name ?? '-', 'serial-console.open', check.mac, 'denied', check.reason);
      refuse(socket, check.status, check.reason);
      return true;
    }
    const { mac, who } = check;
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.once('close', () => sockets.delete(ws));
      void connect(req, ws, mac, who, ctx);
    });
    return true;
  };

  const connect = async (
    req: IncomingMessage,
    ws: WebSocket,
    mac: string,
    who: NonNullable<ReturnType<typeof resolveSession>>,
    ctx: ConsoleContext,
  ): Promise<void> => {
    const send = (data: Buffer | ServerControl): void => {
      if (ws.readyState !== ws.OPEN) return;
      if (Buffer.isBuffer(data)) ws.send(data, { binary: true });
      else ws.send(JSON.stringify(data));
    };
    let source: string;
    try {
      source = await hub.attach(mac);
    } catch (err) {
      const reason = err instanceof CorralError ? err.message : String(err);
      audit(req, who.user.name, 'serial-console.open', mac, 'failed', reason);
      send({ type: 'closed', reason });
      ws.close(1011, 'no serial line');
      return;
    }
    if (ws.readyState !== ws.OPEN) return;
    const recorder = recordings.start(mac, who.user.name, source, new Date());
    let session: ReturnType<ConsoleHub['join']>;
    try {
      session = hub.join(
        mac,
        {
          user: who.user.name,
          role: who.user.role,
          send,
          end: () => ws.close(1000, 'serial line ended'),
        },
        recorder,
      );
    } catch (err) {
      recorder.finish(new Date());
      send({ type: 'closed', reason: String(err) });
      ws.close(1011, 'serial line ended');
      return;
    }
    const startedAt = Date.now();
    audit(req, who.user.name, 'serial-console.open', mac, 'ok', `${source}; recording ${recorder.meta.id}`);
    ws.on('message', (data, isBinary) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]);
      if (isBinary) return session.input(buf);
      const msg = parseControl(buf.toString('utf8'));
      if (msg) session.control(msg);
    });
    // A session that ended (signed out, idle timeout, user deleted or demoted) ends its console.
    const recheck = setInterval(() => {
      const now = resolveSession(ctx, who.session.id, 'peek');
      if (!now || now.user.role === 'viewer') ws.close(1008, 'session ended');
    }, RECHECK_MS);
    ws.once('close', () => {
      clearInterval(recheck);
      session.leave();
      audit(
        req,
        who.user.name,
        'serial-console.close',
        mac,
        'ok',
        `${Math.round((Date.now() - startedAt) / 1000)} s; ${recorder.meta.bytes} bytes recorded${recorder.meta.truncated ? ' (truncated)' : ''}; recording ${recorder.meta.id}`,
      );
    });
  };

  return {
    hub,
    upgrade,
    pages: (ctx) => {
      consoleCtx = ctx;
      const router = express.Router();
      mountSerialConsole(router, ctx, { sourceOf, recordings });
      return router;
    },
    health: () => ({ serialConsole: hub.stats() }),
    // Closed before the listeners (master/feature.ts): open WebSockets would otherwise hold them open.
    serve: async () => undefined,
    close: async () => {
      hub.closeAll();
      for (const ws of sockets) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
