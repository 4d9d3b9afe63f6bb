/**
 * The node page's power panel (issue #11): what the console may show of a node's power settings — never
 * the secret, only whether one is stored — and which buttons the signed-in role gets.
 */
import { roleAllows } from '../master/api/auth.js';
import { DRIVER_CHOICES } from '../master/remote/power-driver.js';
import { actionsOf } from '../master/remote/power.js';
import type { RedfishDetails } from '../master/remote/redfish.js';
import type { PowerConfigRecord } from '../master/store/power-configs.js';
import type { Role } from '../master/store/users.js';

export interface PowerPanel {
  configured: boolean;
  driver: string | null;
  address: string | null;
  port: number | null;
  username: string | null;
  hasPassword: boolean;
  /** The BMC certificate pinned on first use (Redfish). */
  tlsPin: string | null;
  /** Redfish: the BMC can be asked for its inventory and log (button), and what it said last. */
  canReadBmc: boolean;
  bmc: { readAt: string; details: RedfishDetails } | null;
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

const LABELS = {
  on: 'Power on',
  off: 'Power off',
  cycle: 'Power cycle',
  pxe: 'PXE next boot',
  'uefi-http': 'UEFI HTTP next boot',
  disk: 'Disk next boot',
} as const;

export function powerPanel(
  c: PowerConfigRecord | undefined,
  role: Role | undefined,
  flashed: { ok?: string; err?: string } = {},
  bmc?: { readAt: string; details: RedfishDetails },
): PowerPanel {
  const operator = role !== undefined && roleAllows(role, 'operator');
  const actions = c ? actionsOf(c.driver) : [];
  return {
    configured: c !== undefined,
    driver: c?.driver ?? null,
    address: c?.address ?? null,
    port: c?.port ?? null,
    username: c?.username ?? null,
    hasPassword: Boolean(c?.secret),
    tlsPin: c?.tlsPin ?? null,
    canReadBmc: role !== undefined && (c?.driver === 'redfish' || c?.driver === 'auto'),
    bmc: bmc ?? null,
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
    drivers: DRIVER_CHOICES.map((d) => ({ value: d, selected: (c?.driver ?? 'ipmi') === d })),
    ...flashed,
  };
}
