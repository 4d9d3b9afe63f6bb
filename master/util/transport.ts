import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/** A loopback peer: its traffic never crosses a wire. */
export const isLoopback = (address: string | undefined): boolean =>
  !!address && (address === '::1' || /^(::ffff:)?127\./.test(address));

/**
 * Whether a password sent on this request's connection stays private: TLS, or loopback. Plain HTTP from
 * another host is read by anyone on the provisioning segment (issue 14, finding 7).
 */
export const privateTransport = (req: IncomingMessage): boolean =>
  (req.socket as TLSSocket).encrypted === true || isLoopback(req.socket.remoteAddress);
