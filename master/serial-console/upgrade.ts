/**
 * The console's WebSocket (RFC 6455) is checked here, before the handshake is answered, with the same
 * credentials as a console page plus what a WebSocket needs on top: browsers send cookies on a
 * cross-site WebSocket handshake and it is not subject to CORS (RFC 6455 §10.2), so the Origin header
 * must be this console's own origin, and the page's CSRF token rides in the URL (a browser's WebSocket
 * cannot set headers). Viewers may not open a serial console: it is an input path to the node.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { roleAllows } from '../api/auth.js';
import { normaliseMac } from '../nodes/inventory.js';
import type { SignedIn } from '../../web-ui/page.js';
import { tokensEqual } from '../../web-ui/csrf.js';

export const WS_PATH = /^\/nodes\/([^/]+)\/console\/ws$/;

export type UpgradeCheck =
  | { ok: true; mac: string; who: SignedIn }
  | { ok: false; status: 400 | 401 | 403 | 404; reason: string; who?: SignedIn; mac?: string };

/** The origin this request was sent to, as a browser writes it in `Origin` (RFC 6454 §6.1). */
export function ownOrigin(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  if (!host) return undefined;
  const secure = Boolean((req.socket as Partial<TLSSocket>).encrypted);
  return `${secure ? 'https' : 'http'}://${host.toLowerCase()}`;
}

/**
 * Checks one upgrade request. `session` resolves the cookie to the signed-in user (the console's own
 * session store); `nodeExists` answers for a normalised MAC.
 */
export function checkUpgrade(
  req: IncomingMessage,
  session: (req: IncomingMessage) => SignedIn | undefined,
  nodeExists: (mac: string) => boolean,
): UpgradeCheck {
  const url = new URL(req.url ?? '/', 'http://x');
  const m = WS_PATH.exec(url.pathname);
  const mac = normaliseMac(decodeURIComponent(m?.[1] ?? ''));
  if (!mac) return { ok: false, status: 400, reason: 'not a node MAC' };
  const origin = req.headers.origin;
  if (!origin || origin.toLowerCase() !== ownOrigin(req)) {
    return { ok: false, status: 403, reason: `foreign or missing Origin '${origin ?? ''}'`, mac };
  }
  const who = session(req);
  if (!who) return { ok: false, status: 401, reason: 'no live console session', mac };
  if (!roleAllows(who.user.role, 'operator')) {
    return { ok: false, status: 403, reason: `role ${who.user.role} may not open a console`, who, mac };
  }
  if (!tokensEqual(who.session.csrfToken, url.searchParams.get('csrf') ?? undefined)) {
    return { ok: false, status: 403, reason: 'missing or wrong CSRF token', who, mac };
  }
  if (!nodeExists(mac)) return { ok: false, status: 404, reason: 'no such node', who, mac };
  return { ok: true, mac, who };
}
