/**
 * The node page's power panel (issue #11): what the console may show of a node's power settings — never
 * the secret, only whether one is stored — and which buttons the signed-in role gets.
 */
import { roleAllows } from '../master/api/auth.js';
import type { PowerConfigRecord } from '../master/store/power-configs.js';
import type { Role } from '../master/store/users.js';

export interface PowerPanel {
  configured: boolean;
  driver: string | null;
  address: string | null;
  port: number | null;
  username: string | null;
  hasPassword: boolean;
  state: string;
  stateError: string | null;
  stateChangedAt: string | null;
  actions: { action: string; label: string; danger: boolean; confirm: boolean }[];
  canConfigure: boolean;
  drivers: { value: string; selected: boolean }[];
  ok?: string;
  err?: string;
}

/** Actions that cut a running node's power need "I confirm" (as transitions do); on and PXE stay one click. */
export const CONFIRMED_POWER_ACTIONS: readonly string[] = ['off', 'cycle'];

const LABELS = { on: 'Power on', off: 'Power off', cycle: 'Power cycle', pxe: 'PXE next boot' } as const;

export function powerPanel(
  c: PowerConfigRecord | undefined,
  role: Role | undefined,
  flashed: { ok?: string; err?: string } = {},
): PowerPanel {
  const operator = role !== undefined && roleAllows(role, 'operator');
  const actions = !c ? [] : c.driver === 'wol' ? (['on'] as const) : (['on', 'off', 'cycle', 'pxe'] as const);
  return {
    configured: c !== undefined,
    driver: c?.driver ?? null,
    address: c?.address ?? null,
    port: c?.port ?? null,
    username: c?.username ?? null,
    hasPassword: Boolean(c?.secret),
    state: c?.powerState ?? 'unknown',
    stateError: c?.stateError ?? null,
    stateChangedAt: c?.stateChangedAt ?? null,
    actions: operator
      ? actions.map((a) => {
          const confirm = CONFIRMED_POWER_ACTIONS.includes(a);
          return { action: a, label: LABELS[a], danger: confirm, confirm };
        })
      : [],
    canConfigure: role !== undefined && roleAllows(role, 'admin'),
    drivers: ['ipmi', 'wol', 'manual'].map((d) => ({ value: d, selected: (c?.driver ?? 'ipmi') === d })),
    ...flashed,
  };
}
