import type { Response } from 'express';
import type { Authenticator } from '../master/auth/users.js';
import type { FrozenConfig } from '../master/config.js';
import type { Repos } from '../master/store/repos.js';
import type { Role } from '../master/store/users.js';
import { roleAllows } from '../master/api/auth.js';
import type { Monitor } from '../master/monitor/monitor.js';
import { CorralError } from '../master/util/errors.js';
import type { SubsystemHealth } from '../master/util/faults.js';
import type { Logger } from '../master/util/logger.js';
import { VERSION } from '../master/util/version.js';
import type { Renderer } from './render.js';
import type { ConsoleSession, ConsoleSessions } from './sessions.js';

/** What every console page handler needs: the router's dependencies plus the pieces built from them once. */
export interface ConsoleContext {
  repos: Repos;
  config: FrozenConfig;
  logger: Logger;
  authenticator: Authenticator;
  now: () => number;
  secureCookies: boolean;
  renderer: Renderer;
  sessions: ConsoleSessions;
  /** Performance monitoring (charts, alerts); absent when monitor.enabled is false. */
  monitor?: Monitor;
  /** Subsystem faults (issue 14), for the dashboard. */
  faults?: () => Record<string, SubsystemHealth>;
}

/** The left navigation. Only pages that exist are listed; a later page adds itself here. */
const NAV = [
  { id: 'dashboard', label: 'Dashboard', href: '/', icon: 'icon-dashboard' },
  { id: 'nodes', label: 'Nodes', href: '/nodes', icon: 'icon-nodes' },
  { id: 'events', label: 'Events', href: '/events', icon: 'icon-events' },
  { id: 'boot-activity', label: 'Boot activity', href: '/boot-activity', icon: 'icon-events' },
  { id: 'users', label: 'Users', href: '/users', icon: 'icon-user', minRole: 'admin' },
  { id: 'audit', label: 'Audit log', href: '/audit', icon: 'icon-events', minRole: 'admin' },
  { id: 'account', label: 'My account', href: '/account', icon: 'icon-user' },
  { id: 'services', label: 'Services', href: '/services', icon: 'icon-nodes' },
  { id: 'dns', label: 'DNS', href: '/dns', icon: 'icon-nodes' },
  { id: 'apps', label: 'Apps', href: '/apps', icon: 'icon-nodes' },
  { id: 'snapshots', label: 'Snapshots', href: '/snapshots', icon: 'icon-events' },
  { id: 'exec', label: 'Run command', href: '/exec', icon: 'icon-nodes', minRole: 'admin' },
  { id: 'ha', label: 'High availability', href: '/ha', icon: 'icon-dashboard' },
  { id: 'sharedroots', label: 'Shared roots', href: '/sharedroots', icon: 'icon-nodes' },
  { id: 'images', label: 'Images', href: '/images', icon: 'icon-nodes' },
  { id: 'rules', label: 'Enrolment rules', href: '/rules', icon: 'icon-nodes' },
  { id: 'cloud-init', label: 'cloud-init', href: '/cloud-init', icon: 'icon-nodes', minRole: 'operator' },
  { id: 'settings', label: 'Settings', href: '/settings', icon: 'icon-dashboard', minRole: 'admin' },
  { id: 'registry', label: 'Image registry', href: '/registry', icon: 'icon-nodes' },
] as const;

export type NavId = (typeof NAV)[number]['id'];

export interface SignedIn {
  session: ConsoleSession;
  user: { name: string; role: Role };
}

const LOCALS_KEY = 'corralConsole';

export function setSignedIn(res: Response, who: SignedIn): void {
  res.locals[LOCALS_KEY] = who;
}

/** The signed-in user of this request; undefined before the session guard or on the login page. */
export function signedIn(res: Response): SignedIn | undefined {
  return res.locals[LOCALS_KEY] as SignedIn | undefined;
}

export interface PageData {
  title: string;
  nav?: NavId;
  [key: string]: unknown;
}

/**
 * Renders a console page. Signed-in pages get the main layout (navigation, user, sign-out form with the
 * session's CSRF token); others (login, errors before login) the bare one. Pages carry a session's data,
 * so no cache may keep them.
 */
export function sendPage(
  ctx: ConsoleContext,
  res: Response,
  view: string,
  data: PageData,
  status = 200,
): void {
  const who = signedIn(res);
  const html = ctx.renderer.render(
    view,
    {
      version: VERSION,
      masterAddress: ctx.config.address,
      user: who?.user,
      csrfToken: who?.session.csrfToken,
      navItems: who
        ? NAV.filter((n) => !('minRole' in n) || roleAllows(who.user.role, n.minRole)).map((n) => ({
            ...n,
            current: n.id === data.nav,
          }))
        : [],
      alerts: who ? (ctx.monitor?.alerts() ?? []) : [],
      ...data,
    },
    who ? 'main' : 'bare',
  );
  res.status(status).set('Cache-Control', 'no-store').type('html').send(html);
}

/** Console twin of the API's requireRole: the same rule, enforced on the server for every console action. */
export function requireConsoleRole(res: Response, minRole: Role): SignedIn {
  const who = signedIn(res);
  if (!who) throw new CorralError('AUTH_REQUIRED', 'Sign in first.');
  if (!roleAllows(who.user.role, minRole)) {
    throw new CorralError('FORBIDDEN', `Your role (${who.user.role}) may not do this; it needs ${minRole}.`);
  }
  return who;
}
