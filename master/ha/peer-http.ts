/**
 * HTTP between the masters (replication feed, clone, file sync) over TLS with the peer's certificate
 * pinned by its SHA-256 fingerprint. The requests carry the HA token and the answers carry the database
 * and the keys, so neither may cross the provisioning network in clear or reach an impostor.
 *
 * The masters' certificates are self-signed (master/auth/tls.ts), so there is no CA to trust: the
 * fingerprint recorded by `corral clone` is the trust. The check runs in the agent's createConnection,
 * after the TLS handshake and before the request is written, so a wrong certificate never sees the token.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { tlsDir } from '../auth/tls.js';
import { CorralError } from '../util/errors.js';

/** Whether `url` may be used without TLS: only loopback, which never crosses a wire. */
export function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** The SHA-256 fingerprint of a PEM certificate file, in Node's `AA:BB:…` form. */
export function certFingerprint(pemPath: string): string {
  return new X509Certificate(readFileSync(pemPath)).fingerprint256;
}

/** Normalises `sha256//AB:cd…`, `AB:CD…` or plain hex to Node's upper-case colon form. */
export function normaliseFingerprint(fp: string): string {
  const hex = fp
    .replace(/^sha256\/*/i, '')
    .replace(/[^0-9a-f]/gi, '')
    .toUpperCase();
  return (hex.match(/../g) ?? []).join(':');
}

/** Opens a TLS connection, reads the certificate and closes it; sends nothing (for `corral clone`). */
export function presentedFingerprint(url: string, timeoutMs = 10_000): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: u.hostname,
      port: Number(u.port || 443),
      rejectUnauthorized: false,
      ...(isIP(u.hostname) ? {} : { servername: u.hostname }),
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)));
    socket.once('secureConnect', () => {
      const fp = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fp);
    });
    socket.once('error', reject);
  });
}

class PinnedAgent extends HttpsAgent {
  constructor(private readonly fingerprint256: string) {
    super({ keepAlive: true, maxSockets: 8 });
  }

  override createConnection(
    options: RequestOptions,
    oncreate?: (err: Error | null, socket: Duplex) => void,
  ): Duplex | undefined {
    const socket: TLSSocket = tlsConnect({ ...(options as ConnectionOptions), rejectUnauthorized: false });
    const onError = (err: Error): void => oncreate?.(err, socket);
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      socket.off('error', onError);
      const got = socket.getPeerCertificate().fingerprint256;
      if (got === this.fingerprint256) return oncreate?.(null, socket);
      socket.destroy();
      oncreate?.(
        new CorralError(
          'HA_PEER_CERT_MISMATCH',
          `the peer at ${options.host ?? '?'}:${options.port ?? '?'} presented certificate ${got}, not the pinned ${this.fingerprint256}: refusing to send it the HA token`,
        ),
        socket,
      );
    });
    return undefined; // the socket is handed over by oncreate once its certificate is checked
  }
}

export interface PeerRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

/** A fetch-like client for one peer: HTTPS pinned to `fingerprint256`, or plain HTTP on loopback only. */
export class PeerHttp {
  private readonly agent: HttpsAgent | HttpAgent;

  constructor(
    private readonly base: string,
    fingerprint256: string | undefined,
  ) {
    const u = new URL(base);
    if (u.protocol === 'https:') {
      if (!fingerprint256)
        throw new CorralError('HA_PEER_CERT_MISMATCH', `no certificate pinned for ${base}`);
      this.agent = new PinnedAgent(normaliseFingerprint(fingerprint256));
    } else if (u.protocol === 'http:' && isLoopbackUrl(base)) {
      this.agent = new HttpAgent({ keepAlive: true, maxSockets: 8 });
    } else {
      throw new CorralError(
        'CONFIG_INVALID',
        `${base}: the HA peer must be reached over https:// (it is sent the HA token and sends keys)`,
      );
    }
  }

  /** GET/POST `path` on the peer; the answer as a web Response (stream body, like fetch). */
  fetch(path: string, init: PeerRequest = {}): Promise<Response> {
    const url = new URL(path, this.base);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
        url,
        { method: init.method ?? 'GET', headers: init.headers ?? {}, agent: this.agent },
        (res) => resolve(toResponse(res)),
      );
      const abort = (): void => {
        req.destroy(new Error(`request to ${url.origin} aborted: ${String(init.signal?.reason ?? '')}`));
      };
      if (init.signal?.aborted) abort();
      init.signal?.addEventListener('abort', abort, { once: true });
      req.once('close', () => init.signal?.removeEventListener('abort', abort));
      req.once('error', reject);
      req.end(init.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function toResponse(res: IncomingMessage): Response {
  const headers = new Headers();
  for (const [k, v] of Object.entries(res.headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
  }
  const status = res.statusCode ?? 502;
  const empty = status === 204 || status === 205 || status === 304;
  if (empty) res.resume();
  return new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
    status,
    headers,
  });
}

/**
 * The certificate fingerprint the peer must present: `ha.peerCertSha256` (recorded by clone), else this
 * master's own certificate (shared by both masters, see clone.ts). Read when first needed: the master
 * creates its certificate after the HA part is built.
 */
export function peerPin(config: {
  dataDir: string;
  ha: { peerCertSha256?: string | undefined };
  console: { certFile?: string | undefined };
}): string | undefined {
  if (config.ha.peerCertSha256) return normaliseFingerprint(config.ha.peerCertSha256);
  const own = config.console.certFile ?? join(tlsDir(config.dataDir), 'cert.pem');
  return existsSync(own) ? certFingerprint(own) : undefined;
}

/** A PeerHttp made on first use (and again if the first attempt failed, e.g. no certificate yet). */
export function lazyPeer(base: string, pin: () => string | undefined): () => PeerHttp {
  let peer: PeerHttp | undefined;
  return () => (peer ??= new PeerHttp(base, pin()));
}
