import type { IncomingMessage } from 'node:http';

/** An address as Node reports it, without the IPv4-mapped prefix a dual-stack socket adds (`::ffff:`). */
export function plainAddress(address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:/, '');
}

/**
 * The address of a request's TCP peer, or null once the socket is gone. The socket's, never a header's:
 * `trust proxy` is off (http.ts), and the node-facing checks (a node's recorded address, the rate limits,
 * the audit log) must not be movable by what a client writes.
 */
export function clientIp(req: IncomingMessage): string | null {
  return plainAddress(req.socket.remoteAddress) || null;
}
