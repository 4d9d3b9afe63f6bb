/**
 * The master's HTTP listeners: plain HTTP (node-facing /boot and /api/v1, which iPXE and the busybox
 * agent reach without TLS) and, with console.https, HTTPS for everything, whose Secure cookies the
 * console sets. With HTTPS on, plain HTTP sends console pages to the HTTPS listener.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIPv6, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RequestHandler, Router } from 'express';
import type { FrozenConfig } from './config.js';
import { ensureTls } from './auth/tls.js';
import { createHttpApp } from './http.js';
import { urlHost } from './http-bind.js';
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
    // IPv6 only on `::`, so a dual-stack http.bind (0.0.0.0 and ::) can hold the same port twice.
    server.listen({ port, host, ...(isIPv6(host) ? { ipv6Only: true } : {}) }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * One server per http.bind address (issue 18: IPv4 and IPv6), all on one port: the first address
 * takes the configured one (0 = any free port, in tests) and the others the port it got.
 */
async function listenAll(make: () => Server, port: number, hosts: readonly string[]): Promise<Server[]> {
  const servers: Server[] = [];
  let bound = port;
  try {
    for (const host of hosts) {
      const server = make();
      servers.push(server);
      bound = await listen(server, bound, host);
    }
  } catch (err) {
    await Promise.all(servers.filter((s) => s.listening).map(stop));
    throw err;
  }
  return servers;
}

function portOf(servers: readonly Server[]): number {
  return (servers[0]?.address() as AddressInfo).port;
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
      httpsOn && config.console.httpsPort !== 0 && config.console.redirectHttp
        ? redirectToHttps({ httpsPort: config.console.httpsPort ?? 443, fallbackHost: config.address })
        : parts.console,
    logger,
    basicAuth,
    ...(parts.metrics ? { metrics: parts.metrics } : {}),
  });
  // Plain HTTP serves the console only when HTTPS does not (else it redirects every console page).
  const plainUpgrades = !(httpsOn && config.console.httpsPort !== 0 && config.console.redirectHttp);
  const plain = await listenAll(
    () => {
      const server = createServer(app);
      server.keepAliveTimeout = 5000;
      if (plainUpgrades) acceptUpgrades(server, parts);
      return server;
    },
    config.http.port,
    config.http.bind,
  );
  const httpPort = portOf(plain);
  const stopPlain = async (): Promise<void> => {
    await Promise.all(plain.map(stop));
  };
  if (!httpsOn) return { httpPort, close: stopPlain };
  let secure: Server[] = [];
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
    secure = await listenAll(
      () => {
        const server = createHttpsServer({ cert: tls.cert, key: tls.key }, secureApp);
        server.keepAliveTimeout = 5000;
        acceptUpgrades(server, parts);
        return server;
      },
      config.console.httpsPort ?? 443,
      config.http.bind,
    );
    httpsPort = portOf(secure);
    logger.info(
      {
        https: config.http.bind.map((b) => `${urlHost(b)}:${String(httpsPort)}`).join(' '),
        cert: tls.certPath,
        sha256: tls.fingerprint256,
      },
      'console on HTTPS',
    );
  } catch (err) {
    await stopPlain();
    throw err;
  }
  const tlsServers = secure;
  return {
    httpPort,
    httpsPort,
    close: async () => {
      await Promise.all(tlsServers.map(stop));
      await stopPlain();
    },
  };
}
