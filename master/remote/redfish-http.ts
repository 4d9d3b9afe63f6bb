/**
 * HTTPS to a BMC's Redfish service (DMTF DSP0266), with the BMC's certificate pinned on first use.
 * BMCs ship self-signed certificates no CA vouches for, so trust works like SSH known-hosts (and like the
 * CLI's pin of the master, master/cli/pinned-tls.ts, whose handshake-then-compare code this reuses): the
 * first contact records the SHA-256 fingerprint, later contacts refuse any other certificate before a
 * request (and the password in it) is written.
 *
 * Authentication (DSP0266 §13.3): a session from the SessionService where the service offers one (POST
 * of UserName/Password to the Sessions collection; the X-Auth-Token answer authenticates the next
 * requests; DELETE of the session's Location ends it), HTTP Basic only where it does not.
 */
import { fetchFingerprint, pinnedRequest, type Endpoint } from '../cli/pinned-tls.js';
import { CorralError, isCorralError } from '../util/errors.js';

export interface RedfishTarget {
  host: string;
  port: number;
  username: string;
  password: string;
  /** The pinned SHA-256 fingerprint (colon-separated hex, as Node prints it); none before first use. */
  pin: string | null;
}

export interface RedfishHttpOptions {
  timeoutMs: number;
  /** Told the fingerprint seen on first use, to be stored (power.ts keeps it with the node's settings). */
  onPin?: (fingerprint256: string) => void;
}

export interface RedfishReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body, or undefined for an empty or non-JSON body. */
  json: Record<string, unknown> | undefined;
}

/** One authenticated conversation: `close()` deletes the session (DSP0266 §13.3.4 "Session termination"). */
export interface RedfishClient {
  readonly endpoint: Endpoint;
  readonly fingerprint256: string;
  /** 'session' when the SessionService gave a token, 'basic' when the service offers no sessions. */
  readonly auth: 'session' | 'basic';
  get(path: string): Promise<Record<string, unknown>>;
  post(path: string, body: unknown): Promise<RedfishReply>;
  patch(path: string, body: unknown, etag?: string): Promise<RedfishReply>;
  /** GET with the reply's headers (the ETag a PATCH needs in If-Match). */
  getWithHeaders(path: string): Promise<RedfishReply>;
  close(): Promise<void>;
}

const SERVICE_ROOT = '/redfish/v1/';

function where(ep: Endpoint): string {
  return `https://${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${ep.port}`;
}

function parseJson(body: Buffer): Record<string, unknown> | undefined {
  if (!body.length) return undefined;
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The first message of a Redfish error body (DSP0266 §9.6 "Error responses": error.@Message.ExtendedInfo). */
export function redfishErrorText(json: Record<string, unknown> | undefined): string | undefined {
  const error = json?.['error'] as Record<string, unknown> | undefined;
  if (!error) return undefined;
  const info = error['@Message.ExtendedInfo'];
  const first = Array.isArray(info) ? (info[0] as Record<string, unknown> | undefined) : undefined;
  const text = (first?.['Message'] ?? error['message']) as unknown;
  return typeof text === 'string' ? text.slice(0, 300) : undefined;
}

/** The `@odata.id` of a navigation property, e.g. `{ "Systems": { "@odata.id": "/redfish/v1/Systems" } }`. */
export function odataId(value: unknown): string | undefined {
  const id = (value as Record<string, unknown> | undefined)?.['@odata.id'];
  return typeof id === 'string' && id.startsWith('/') ? id : undefined;
}

/**
 * Translates transport errors of the shared pinned-TLS code into the BMC's vocabulary: its
 * MASTER_UNREACHABLE and TLS_FINGERPRINT_MISMATCH speak of the Corral master and `corral login`.
 */
async function transportError(ep: Endpoint, pin: string, err: unknown): Promise<CorralError> {
  if (isCorralError(err) && err.code === 'TLS_FINGERPRINT_MISMATCH') {
    const presented = await fetchFingerprint(ep, 5000).catch(() => 'unknown');
    return certChanged(ep, pin, presented);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new CorralError(
    'REDFISH_UNREACHABLE',
    `cannot reach the Redfish service at ${where(ep)}: ${message.replace(/^cannot reach the master at \S+: /, '')}`,
  );
}

function certChanged(ep: Endpoint, pinned: string, presented: string): CorralError {
  return new CorralError(
    'REDFISH_CERT_CHANGED',
    `the BMC at ${where(ep)} presented certificate sha256 ${presented}, but sha256 ${pinned} was pinned ` +
      `on first use: refusing to send it the credentials`,
    { pinned, presented },
  );
}

/**
 * Opens a conversation: pins (or checks) the certificate, reads the service root, logs in. Every request
 * afterwards goes over a connection whose certificate is checked again (no window for a swap between).
 */
export async function openRedfish(target: RedfishTarget, o: RedfishHttpOptions): Promise<RedfishClient> {
  const ep: Endpoint = { host: target.host, port: target.port };
  let pin = target.pin;
  if (!pin) {
    pin = await fetchFingerprint(ep, o.timeoutMs).catch((err: unknown) => {
      throw new CorralError(
        'REDFISH_UNREACHABLE',
        `cannot reach the Redfish service at ${where(ep)}: ${err instanceof Error ? err.message : String(err)}`,
      );
    });
    o.onPin?.(pin);
  }
  const fingerprint256 = pin;
  let authHeader: Record<string, string> = {};

  const send = async (method: string, path: string, body?: unknown, extra: Record<string, string> = {}) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const r = await pinnedRequest(ep, fingerprint256, {
      method,
      path,
      timeoutMs: o.timeoutMs,
      headers: {
        accept: 'application/json',
        'odata-version': '4.0',
        ...(text !== undefined
          ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }
          : {}),
        ...authHeader,
        ...extra,
      },
      ...(text !== undefined ? { body: text } : {}),
    }).catch(async (err: unknown) => {
      throw await transportError(ep, fingerprint256, err);
    });
    return { status: r.status, headers: r.headers, json: parseJson(r.body) } as RedfishReply;
  };

  const failed = (method: string, path: string, r: RedfishReply): CorralError => {
    const detail = redfishErrorText(r.json) ?? `HTTP ${r.status}`;
    if (r.status === 401 || r.status === 403) {
      return new CorralError(
        'REDFISH_AUTH_FAILED',
        `the BMC at ${where(ep)} refused user '${target.username}' (${detail})`,
      );
    }
    return new CorralError('REDFISH_FAILED', `BMC ${where(ep)}: ${method} ${path}: ${detail}`, {
      status: r.status,
    });
  };

  const ok = (r: RedfishReply): boolean => r.status >= 200 && r.status < 300;

  // The service root needs no authentication (DSP0266 §13.3.1), so it tells whether sessions exist.
  const root = await send('GET', SERVICE_ROOT);
  if (!ok(root) || !root.json) throw failed('GET', SERVICE_ROOT, root);
  const links = root.json['Links'] as Record<string, unknown> | undefined;
  const sessions = odataId(links?.['Sessions']);
  let sessionUri: string | undefined;
  let auth: 'session' | 'basic' = 'basic';
  if (sessions) {
    const login = await send('POST', sessions, { UserName: target.username, Password: target.password });
    const token = login.headers['x-auth-token'];
    if (!ok(login) || typeof token !== 'string') throw failed('POST', sessions, login);
    authHeader = { 'x-auth-token': token };
    const location = login.headers['location'];
    // Location may be absolute (DSP0266 §7.5): only its path is ours to call.
    sessionUri = typeof location === 'string' ? new URL(location, where(ep)).pathname : odataId(login.json);
    auth = 'session';
  } else {
    authHeader = {
      authorization: `Basic ${Buffer.from(`${target.username}:${target.password}`).toString('base64')}`,
    };
  }

  const getWithHeaders = async (path: string): Promise<RedfishReply> => {
    const r = await send('GET', path);
    if (!ok(r) || !r.json) throw failed('GET', path, r);
    return r;
  };
  return {
    endpoint: ep,
    fingerprint256,
    auth,
    getWithHeaders,
    get: async (path) => (await getWithHeaders(path)).json!,
    post: async (path, body) => {
      const r = await send('POST', path, body);
      if (!ok(r)) throw failed('POST', path, r);
      return r;
    },
    patch: async (path, body, etag) => {
      const r = await send('PATCH', path, body, etag ? { 'if-match': etag } : {});
      if (!ok(r)) throw failed('PATCH', path, r);
      return r;
    },
    close: async () => {
      if (!sessionUri) return;
      const uri = sessionUri;
      sessionUri = undefined;
      // A session left behind expires on the BMC's SessionTimeout; a failed DELETE is not worth an error.
      await send('DELETE', uri).catch(() => undefined);
    },
  };
}

/**
 * Whether a Redfish service answers at host:port (driver "auto"): the unauthenticated service root,
 * pinning the certificate it was reached with. Resolves to the fingerprint, or undefined when nothing
 * Redfish-like answers (no TLS listener, or a body without a RedfishVersion).
 */
export async function probeRedfish(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<string | undefined> {
  const ep: Endpoint = { host, port };
  const fp = await fetchFingerprint(ep, timeoutMs).catch(() => undefined);
  if (!fp) return undefined;
  const r = await pinnedRequest(ep, fp, {
    method: 'GET',
    path: SERVICE_ROOT,
    headers: { accept: 'application/json' },
    timeoutMs,
  }).catch(() => undefined);
  const json = r && r.status === 200 ? parseJson(r.body) : undefined;
  return typeof json?.['RedfishVersion'] === 'string' ? fp : undefined;
}
