/**
 * The CLI's way to the master's REST API v1: one `call` for every remote command, which maps the API's
 * `{"error": {code, message}}` answers back to the same CorralError codes (docs/errors.md).
 */
import { CorralError, ERROR_CATALOGUE, type ErrorCode } from '../util/errors.js';
import { endpointOf, pinnedRequest, type Endpoint } from './pinned-tls.js';
import type { Profile } from './profiles.js';

export interface ApiClient {
  /** Where it talks to, for messages. */
  base: string;
  /** `path` is below /api/v1 (e.g. '/nodes'); resolves with the parsed JSON (undefined for 204). */
  call<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T>;
  /** An NDJSON answer, one parsed line at a time as it arrives (`POST /exec`). */
  stream(
    method: string,
    path: string,
    body: unknown,
    onLine: (value: unknown) => void,
    timeoutMs: number,
  ): Promise<void>;
}

/** What the `--url` override offers: plain calls (the commands that stream need a profile). */
export type CallClient = Pick<ApiClient, 'base' | 'call'>;

/** Splits a byte stream into lines and parses each as JSON (the last line may end without a newline). */
function ndjson(onLine: (value: unknown) => void): { push: (chunk: Buffer) => void; end: () => void } {
  let pending = '';
  const emit = (line: string): void => {
    if (line.trim()) onLine(JSON.parse(line));
  };
  return {
    push: (chunk) => {
      pending += chunk.toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        emit(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    },
    end: () => emit(pending),
  };
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

function isCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOGUE, code);
}

/** The API's error answer as a CorralError with the same code, or INTERNAL with the HTTP status. */
export function answerError(status: number, text: string): CorralError {
  let e: { code?: unknown; message?: unknown } | undefined;
  try {
    e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
  } catch {
    e = undefined;
  }
  return new CorralError(
    isCode(e?.code) ? e.code : 'INTERNAL',
    typeof e?.message === 'string' ? e.message : `HTTP ${status} from the master`,
  );
}

function parseAnswer<T>(status: number, text: string): T {
  if (status < 200 || status >= 300) throw answerError(status, text);
  if (status === 204 || text === '') return undefined as T;
  return JSON.parse(text) as T;
}

/** The profile's master over HTTPS, its certificate pinned (master/cli/pinned-tls.ts). */
export function profileClient(profile: Profile): ApiClient {
  const url = new URL(profile.url);
  const ep: Endpoint = endpointOf(url);
  const prefix = url.pathname.replace(/\/$/, '');
  const auth = basicAuth(profile.user, profile.password);
  const send = (
    method: string,
    path: string,
    body: unknown,
    timeoutMs: number,
    onData?: (c: Buffer) => void,
  ) =>
    pinnedRequest(ep, profile.fingerprint256, {
      method,
      path: `${prefix}/api/v1${path}`,
      headers: {
        authorization: auth,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      timeoutMs,
      ...(onData ? { onData } : {}),
    });
  return {
    base: profile.url,
    async call<T>(method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<T> {
      const res = await send(method, path, body, timeoutMs);
      return parseAnswer<T>(res.status, res.body.toString('utf8'));
    },
    async stream(method, path, body, onLine, timeoutMs) {
      const lines = ndjson(onLine);
      const res = await send(method, path, body, timeoutMs, lines.push);
      if (res.status < 200 || res.status >= 300) throw answerError(res.status, res.body.toString('utf8'));
      lines.end();
    },
  };
}

/**
 * The older override, `--url URL` or CORRAL_URL with CORRAL_USER/CORRAL_PASSWORD (kept because scripts
 * and tests use it): plain fetch, so an https:// URL needs a certificate the system trusts.
 */
export function urlClient(base: string, user: string, password: string): CallClient {
  const root = base.replace(/\/$/, '');
  const auth = basicAuth(user, password);
  return {
    base: root,
    async call<T>(method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<T> {
      let res: Response;
      try {
        res = await fetch(`${root}/api/v1${path}`, {
          method,
          headers: {
            authorization: auth,
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        throw new CorralError(
          'MASTER_UNREACHABLE',
          `cannot reach the master at ${root}: ${(err as Error).message}`,
        );
      }
      return parseAnswer<T>(res.status, await res.text());
    },
  };
}
