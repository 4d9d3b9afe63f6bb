/**
 * Reaching the lab's console from the host without touching the host's network: the host side listens on
 * loopback and relays each connection to a Unix socket; a relay inside the master's namespace accepts on
 * that socket and connects to the master's address there. The file system is shared across network
 * namespaces, so the Unix socket is the bridge, and no interface or route of the host is changed.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';

function pipeBoth(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const close = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', close);
  b.on('error', close);
  a.on('close', close);
  b.on('close', close);
}

function listening(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Host side: 127.0.0.1:port → unix socket. Resolves with the bound port (port 0 picks a free one). */
export async function forwardLoopbackToUnix(
  port: number,
  unixPath: string,
): Promise<{ port: number; server: Server }> {
  const server = createServer((client) => pipeBoth(client, createConnection(unixPath)));
  server.listen(port, '127.0.0.1');
  await listening(server);
  const addr = server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : port, server };
}

/** Namespace side: unix socket → host:port (run inside the master namespace). */
export async function forwardUnixToTcp(unixPath: string, host: string, port: number): Promise<Server> {
  rmSync(unixPath, { force: true });
  const server = createServer((client) => pipeBoth(client, createConnection({ host, port })));
  server.listen(unixPath);
  await listening(server);
  return server;
}
