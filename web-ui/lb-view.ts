/**
 * What the Services pages and the node page's Load balancer panel share: the health badge colours, one
 * server's row with its Ready / Drain / Maintenance buttons, and the form post that sets a server's admin
 * state through LoadBalancer.setServerState, the function the API's
 * `POST /api/v1/services/:name/servers/:node/state` calls, so a drain reads the same from every door.
 */
import type { Request } from 'express';
import type { ServerView, ServiceHealth } from '../master/lb/load-balancer.js';
import { ADMIN_STATES, type AdminState } from '../master/lb/service-spec.js';
import { CorralError } from '../master/util/errors.js';
import { formField } from './form.js';

/** Badge colours reuse the node-state palette; the text always names the health. */
const BADGE: Record<string, string> = {
  up: 'deployed',
  healthy: 'deployed',
  down: 'failed',
  degraded: 'retiring',
  drain: 'retiring',
  maint: 'deploying',
  unknown: 'discovered',
  unchecked: 'discovered',
  empty: 'discovered',
};

export function healthBadge(h: ServiceHealth | string): string {
  return BADGE[h] ?? 'discovered';
}

/** Drain and maintenance take a node out of rotation: the node page asks for "I confirm" first. */
export const CONFIRMED_ADMIN_STATES: readonly AdminState[] = ['drain', 'maint'];

const LABELS: Record<AdminState, string> = { ready: 'Ready', drain: 'Drain', maint: 'Maintenance' };

export interface ServerRow extends ServerView {
  badge: string;
  /** Where the state buttons post. */
  action: string;
  buttons: { state: AdminState; label: string; current: boolean; confirm: boolean }[];
}

export function serverRow(s: ServerView, action: string): ServerRow {
  return {
    ...s,
    badge: healthBadge(s.health),
    action,
    buttons: ADMIN_STATES.map((state) => ({
      state,
      label: LABELS[state],
      current: state === s.admin,
      confirm: CONFIRMED_ADMIN_STATES.includes(state),
    })),
  };
}

/** The `state` field of a state button's form; BODY_INVALID for anything but an admin state. */
export function adminStateField(req: Request): AdminState {
  const state = formField(req, 'state', 16).trim();
  if (!(ADMIN_STATES as readonly string[]).includes(state))
    throw new CorralError('BODY_INVALID', `state: must be one of ${ADMIN_STATES.join(', ')}`);
  return state as AdminState;
}
