/**
 * HTTPS to the master with its certificate pinned by SHA-256 fingerprint (the `ssh` known-hosts habit):
 * the master's certificate is usually self-signed, so no CA can vouch for it, and its SAN may not name
 * the address the operator typed. The TLS handshake is finished and the fingerprint compared before the
 * request (and its Authorization header) is written, so a wrong server never sees the password.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { CorralError } from '../util/errors.js';

/** A master that accepts TCP but never completes the TLS handshake is given up after this. */
const HANDSHAKE_MS = 10_000;

export interface Endpoint {
  host: string;
  port: number;
}

/** The host and port of a URL (IPv6 brackets removed; 443 for https, 80 for http by default). */
export function endpointOf(url: URL): Endpoint {
  const fallback = url.protocol === 'http:' ? 80 : 443;
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : fallback };
}

/** One TLS handshake, then the fingerprint the server presented (nothing else is sent). */
export function fetchFingerprint(ep: Endpoint, timeoutMs = HANDSHAKE_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = openTls(ep);
    const t = setTimeout(
      () => socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once('secureConnect', () => {
      clearTimeout(t);
      const fp = socket.getPeerCertificate().fingerprint256;
      socket.end();
      if (!fp)
        reject(new CorralError('MASTER_UNREACHABLE', `${ep.host}:${ep.port} presented no certificate`));
      else resolve(fp);
    });
    socket.once('error', (err) => {
      clearTimeout(t);
      reject(unreachable(ep, err));
    });
  });
}

function openTls(ep: Endpoint) {
  // rejectUnauthorized: false because trust comes from the pinned fingerprint, checked by the caller.
  // SNI only for names (RFC 6066 section 3 forbids IP literals in server_name).
  return tlsConnect({
    host: ep.host,
    port: ep.port,
    rejectUnauthorized: false,
    ...(isIP(ep.host) ? {} : { servername: ep.host }),
  });
}

function unreachable(ep: Endpoint, err: Error): CorralError {
  if (err instanceof CorralError) return err;
  return new CorralError(
    'MASTER_UNREACHABLE',
    `cannot reach the master at https://${ep.host}:${ep.port}: ${(err as NodeJS.ErrnoException).code ?? err.message}`,
  );
}

/** RFC 9110 section 7.2: the Host header carries the port unless it is the scheme's default. */
function hostHeader(ep: Endpoint, tls: boolean): string {
  const host = isIP(ep.host) === 6 ? `[${ep.host}]` : ep.host;
  return ep.port === (tls ? 443 : 80) ? host : `${host}:${ep.port}`;
}

export function mismatchError(ep: Endpoint, pinned: string, presented: string): CorralError {
  return new CorralError(
    'TLS_FINGERPRINT_MISMATCH',
    `the master at ${ep.host}:${ep.port} presented certificate sha256 ${presented}, ` +
      `but this profile pinned sha256 ${pinned}: refusing to talk to it (if the master's certificate was replaced on purpose, run \`corral login\` again with --fingerprint)`,
  );
}

export interface PinnedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface PinnedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** A successful answer's body goes here as it arrives instead of into `body` (NDJSON streams). */
  onData?: (chunk: Buffer) => void;
}

/**
 * One HTTP/1.1 request over a TLS connection whose certificate has the pinned fingerprint; with no
 * fingerprint, plain HTTP (only loopback profiles have none: master/cli/login.ts).
 */
export function pinnedRequest(
  ep: Endpoint,
  fingerprint256: string | undefined,
  req: PinnedRequest,
): Promise<PinnedResponse> {
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      {
        host: ep.host,
        port: ep.port,
        method: req.method,
        path: req.path,
        headers: { host: hostHeader(ep, fingerprint256 !== undefined), ...req.headers },
        ...(fingerprint256 !== undefined ? { createConnection: pinnedConnection(ep, fingerprint256) } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        const ok = (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300;
        res.on('data', (c: Buffer) => (ok && req.onData ? req.onData(c) : chunks.push(c)));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    r.setTimeout(req.timeoutMs, () => r.destroy(new Error(`no answer within ${req.timeoutMs} ms`)));
    r.on('error', (err) => reject(unreachable(ep, err)));
    r.end(req.body);
  });
}

/**
 * http.request's createConnection, callback form: the request waits until the TLS handshake is done and
 * the presented certificate's fingerprint is the pinned one, and gets an error otherwise.
 */
function pinnedConnection(ep: Endpoint, fingerprint256: string) {
  return (_opts: unknown, oncreate: (err: Error | null, socket: Socket) => void): Socket => {
    const socket = openTls(ep);
    // The request's own timeout starts only once it has a socket: bound the handshake here.
    const t = setTimeout(
      () => socket.destroy(new Error(`no TLS handshake within ${HANDSHAKE_MS} ms`)),
      HANDSHAKE_MS,
    );
    socket.once('close', () => clearTimeout(t));
    socket.once('secureConnect', () => {
      clearTimeout(t);
      const presented = socket.getPeerCertificate().fingerprint256;
      if (presented !== fingerprint256) {
        socket.destroy();
        oncreate(mismatchError(ep, fingerprint256, presented ?? 'none'), socket);
      } else oncreate(null, socket);
    });
    socket.once('error', (err) => oncreate(unreachable(ep, err), socket));
    return undefined as unknown as Socket;
  };
}
