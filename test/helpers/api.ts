/** One JSON client for a master's REST API (/api/v1) in tests, benches and the screenshot script. */

/** A master to talk to: its base URL (no /api/v1) and a user's password (admin unless named). */
export interface ApiTarget {
  url: string;
  password: string;
  user?: string;
}

export interface ApiReply<T> {
  status: number;
  /** The parsed body; `{}` when the body is empty (204) or not JSON. */
  json: T;
  text: string;
}

/**
 * One API call with HTTP Basic auth; any status is returned, not thrown (tests assert refusals). The
 * body is sent as JSON when given.
 */
// The replies are read field by field and compared with assert: a schema per reply would add nothing.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function api<T = any>(
  to: ApiTarget,
  method: string,
  path: string,
  body?: unknown,
  opts: { timeoutMs?: number } = {},
): Promise<ApiReply<T>> {
  const auth = Buffer.from(`${to.user ?? 'admin'}:${to.password}`).toString('base64');
  const res = await fetch(`${to.url}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Basic ${auth}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    ...(opts.timeoutMs ? { signal: AbortSignal.timeout(opts.timeoutMs) } : {}),
  });
  const text = await res.text();
  let json: unknown = {};
  try {
    if (text) json = JSON.parse(text);
  } catch {
    // not JSON (an error page from a proxy, a boot script): `text` has it
  }
  return { status: res.status, json: json as T, text };
}

/** As `api`, for set-up steps that must succeed: a non-2xx reply throws with its status and body. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function apiOk<T = any>(
  to: ApiTarget,
  method: string,
  path: string,
  body?: unknown,
  opts: { timeoutMs?: number } = {},
): Promise<T> {
  const r = await api<T>(to, method, path, body, opts);
  if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path}: HTTP ${r.status} ${r.text}`);
  return r.json;
}
