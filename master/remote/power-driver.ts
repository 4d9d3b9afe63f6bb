/**
 * What every power driver offers. A driver is built per call from a node's stored settings (with the
 * password already opened) and holds no state of its own; `status()` answers `unknown` when the driver has
 * no way to ask (Wake-on-LAN, manual).
 */
/** pxe, uefi-http and disk set the device of the next boot only (IPMI boot flags, Redfish override "Once"). */
export const POWER_ACTIONS = ['on', 'off', 'cycle', 'pxe', 'uefi-http', 'disk'] as const;
export type PowerAction = (typeof POWER_ACTIONS)[number];
export type PowerState = 'on' | 'off' | 'unknown';
export const DRIVER_KINDS = ['ipmi', 'redfish', 'wol', 'manual'] as const;
/**
 * What may be configured: a driver, or `auto` for a BMC that may speak both: its Redfish service is
 * probed first (preferred: sessions, TLS, inventory), else IPMI; power.ts stores what the probe found.
 */
export const DRIVER_CHOICES = [...DRIVER_KINDS, 'auto'] as const;
export type DriverChoice = (typeof DRIVER_CHOICES)[number];
export type DriverKind = (typeof DRIVER_KINDS)[number];

export interface ActionResult {
  /** One sentence for the event log and the operator. */
  message: string;
  /** True when nothing was done by the master: the operator was asked to do it (manual driver). */
  manual: boolean;
}

export interface PowerDriver {
  readonly kind: DriverKind;
  readonly actions: readonly PowerAction[];
  status(): Promise<PowerState>;
  act(action: PowerAction): Promise<ActionResult>;
}
