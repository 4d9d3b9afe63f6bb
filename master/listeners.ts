/**
 * The master's HTTP listeners: plain HTTP (node-facing /boot and /api/v1, which iPXE and the busybox
 * agent reach without TLS) and, with console.https, HTTPS for everything, whose Secure cookies the
 * console sets. With HTTPS on, plain HTTP sends console pages to the HTTPS listener.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RequestHandler, Router } from 'express';
import type { FrozenConfig } from './config.js';
import { ensureTls } from './auth/tls.js';
import { createHttpApp } from './http.js';
import type { Logger } from './util/logger.js';
import { redirectToHttps } from '../web-ui/https-redirect.js';

export interface ListenerParts {
  config: Pick<FrozenConfig, 'http' | 'console' | 'dataDir' | 'address'>;
  logger: Logger;
  api: Router;
  boot: Router;
  console: Router;
  /** Prometheus (master/metrics feature): the request timer and GET /metrics. */
  metrics?: { middleware: RequestHandler; pages: Router };
  /** WebSocket upgrades on the listener that serves the console (master/feature.ts `upgrade`). */
  upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
}

/** Upgrades go to the features; one nobody takes is refused (no WebSocket path without a credential check). */
function acceptUpgrades(server: Server, parts: ListenerParts): void {
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    if (parts.upgrade?.(req, socket, head)) return;
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
}

export interface Listeners {
  httpPort: number;
  /** The console's HTTPS port when console.https is on. */
  httpsPort?: number;
  /** Closes HTTPS, then HTTP; in-flight downloads (kernels, images) get 5 s, then are cut. */
  close(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function stop(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 5000).unref();
  });
}

export async function openListeners(parts: ListenerParts): Promise<Listeners> {
  const { config, logger, api, boot } = parts;
  const httpsOn = config.console.https;
  let httpsPort: number | undefined;
  // Basic credentials over plain HTTP are refused off loopback; the hint names the HTTPS port once known.
  const basicAuth = {
    allowInsecure: config.console.allowInsecureBasicAuth,
    httpsPort: () => httpsPort,
  };
  const app = createHttpApp({
    api,
    boot,
    console:
      httpsOn && config.console.httpsPort !== 0
        ? redirectToHttps({ httpsPort: config.console.httpsPort ?? 443, fallbackHost: config.address })
        : parts.console,
    logger,
    basicAuth,
    ...(parts.metrics ? { metrics: parts.metrics } : {}),
  });
  const server = createServer(app);
  server.keepAliveTimeout = 5000;
  // Plain HTTP serves the console only when HTTPS does not (else it redirects every console page).
  if (!(httpsOn && config.console.httpsPort !== 0)) acceptUpgrades(server, parts);
  const httpPort = await listen(server, config.http.port, config.http.bind);
  if (!httpsOn) return { httpPort, close: () => stop(server) };
  let secure: Server | undefined;
  try {
    const tls = await ensureTls({
      dataDir: config.dataDir,
      address: config.address,
      certFile: config.console.certFile,
      keyFile: config.console.keyFile,
      logger,
    });
    const secureApp = createHttpApp({
      api,
      boot,
      console: parts.console,
      logger,
      basicAuth,
      ...(parts.metrics ? { metrics: parts.metrics } : {}),
    });
    secure = createHttpsServer({ cert: tls.cert, key: tls.key }, secureApp);
    secure.keepAliveTimeout = 5000;
    acceptUpgrades(secure, parts);
    httpsPort = await listen(secure, config.console.httpsPort ?? 443, config.http.bind);
    logger.info(
      { https: `${config.http.bind}:${httpsPort}`, cert: tls.certPath, sha256: tls.fingerprint256 },
      'console on HTTPS',
    );
  } catch (err) {
    if (secure?.listening) await stop(secure);
    await stop(server);
    throw err;
  }
  const tlsServer = secure;
  return {
    httpPort,
    httpsPort,
    close: async () => {
      await stop(tlsServer);
      await stop(server);
    },
  };
}
