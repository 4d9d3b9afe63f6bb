/**
 * The Redfish power driver (DMTF DSP0266 protocol, DSP8010 schemas): ComputerSystem.Reset for power,
 * Boot.BootSourceOverrideTarget with BootSourceOverrideEnabled "Once" for the next boot's device, and the
 * system's inventory and the BMC's log entries for the node page. One conversation per call (session
 * opened, used, deleted), like the IPMI driver's one ipmitool run per call.
 */
import { CorralError } from '../util/errors.js';
import type { ActionResult, PowerAction, PowerDriver, PowerState } from './power-driver.js';
import {
  odataId,
  openRedfish,
  type RedfishClient,
  type RedfishHttpOptions,
  type RedfishTarget,
} from './redfish-http.js';

/** Power actions in ResetType preference order (ComputerSystem schema, ResetType enum). */
const RESET_PREFERENCE = {
  on: ['On', 'ForceOn', 'PushPowerButton'],
  // "off" is a hard power-off, as IPMI's chassis power off is; a graceful one needs the OS to cooperate.
  off: ['ForceOff', 'GracefulShutdown', 'PushPowerButton'],
  cycle: ['PowerCycle', 'ForceRestart', 'GracefulRestart'],
} as const;

/** One-time boot devices (BootSource enum of ComputerSystem.Boot). */
export const BOOT_TARGETS = { pxe: 'Pxe', 'uefi-http': 'UefiHttp', disk: 'Hdd' } as const;
type BootAction = keyof typeof BOOT_TARGETS;

export const REDFISH_ACTIONS: readonly PowerAction[] = ['on', 'off', 'cycle', 'pxe', 'uefi-http', 'disk'];

export interface RedfishLogEntry {
  created: string | null;
  severity: string | null;
  message: string;
  /** Which log service it came from (e.g. "Systems/1/LogServices/Log"). */
  source: string;
}

export interface RedfishDetails {
  manufacturer: string | null;
  model: string | null;
  serialNumber: string | null;
  biosVersion: string | null;
  powerState: string | null;
  bootOverride: { target: string | null; enabled: string | null };
  resetTypes: string[];
  logEntries: RedfishLogEntry[];
}

/** Newest entries shown per node; a BMC's SEL can hold thousands. */
const MAX_LOG_ENTRIES = 50;
/** Log services read per resource, and single entries fetched when a collection lists only links. */
const MAX_LOG_SERVICES = 3;
const MAX_ENTRY_FETCHES = 20;

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** "On", "PoweringOff" → on; "Off", "PoweringOn" → off (PowerState enum, Resource schema). */
export function powerStateOf(value: unknown): PowerState | undefined {
  if (value === 'On' || value === 'PoweringOff') return 'on';
  if (value === 'Off' || value === 'PoweringOn') return 'off';
  return undefined;
}

/** The ResetType a service advertises for an action, first by our preference; undefined when none fits. */
export function chooseResetType(
  action: keyof typeof RESET_PREFERENCE,
  allowed: readonly string[],
): string | undefined {
  // DSP0266 §9.6 (Allowable values): without an annotation, every value of the schema's enum is allowed.
  if (!allowed.length) return RESET_PREFERENCE[action][0];
  return RESET_PREFERENCE[action].find((t) => allowed.includes(t));
}

async function firstSystem(
  c: RedfishClient,
): Promise<{ path: string; system: Record<string, unknown>; etag?: string }> {
  const root = await c.get('/redfish/v1/');
  const systemsPath = odataId(root['Systems']);
  if (!systemsPath) throw new CorralError('REDFISH_FAILED', 'the Redfish service root lists no Systems');
  const members = (await c.get(systemsPath))['Members'];
  const path = Array.isArray(members) ? odataId(members[0]) : undefined;
  if (!path) throw new CorralError('REDFISH_FAILED', `${systemsPath} has no members`);
  const r = await c.getWithHeaders(path);
  const etag = r.headers['etag'];
  return { path, system: r.json!, ...(typeof etag === 'string' ? { etag } : {}) };
}

/** The reset action's target and its allowed ResetTypes, from the annotation or its @Redfish.ActionInfo. */
async function resetAction(
  c: RedfishClient,
  system: Record<string, unknown>,
): Promise<{ target: string; allowed: string[] }> {
  const actions = system['Actions'] as Record<string, unknown> | undefined;
  const reset = actions?.['#ComputerSystem.Reset'] as Record<string, unknown> | undefined;
  const target = str(reset?.['target']);
  if (!reset || !target)
    throw new CorralError('REDFISH_FAILED', 'the system offers no ComputerSystem.Reset action');
  let allowed = reset['ResetType@Redfish.AllowableValues'];
  const infoPath = str(reset['@Redfish.ActionInfo']);
  if (!Array.isArray(allowed) && infoPath) {
    const params = (await c.get(infoPath))['Parameters'];
    const p = Array.isArray(params)
      ? (params as Record<string, unknown>[]).find((x) => x['Name'] === 'ResetType')
      : undefined;
    allowed = p?.['AllowableValues'];
  }
  return {
    target,
    allowed: Array.isArray(allowed) ? allowed.filter((v): v is string => typeof v === 'string') : [],
  };
}

async function logEntriesOf(
  c: RedfishClient,
  resource: Record<string, unknown>,
  label: string,
): Promise<RedfishLogEntry[]> {
  const servicesPath = odataId(resource['LogServices']);
  if (!servicesPath) return [];
  const services = (await c.get(servicesPath))['Members'];
  const out: RedfishLogEntry[] = [];
  let fetches = 0;
  for (const m of (Array.isArray(services) ? services : []).slice(0, MAX_LOG_SERVICES)) {
    const servicePath = odataId(m);
    if (!servicePath) continue;
    const entriesPath = odataId((await c.get(servicePath))['Entries']);
    if (!entriesPath) continue;
    const members = (await c.get(entriesPath))['Members'];
    for (const e of (Array.isArray(members) ? members : []).slice(-MAX_LOG_ENTRIES)) {
      let entry = e as Record<string, unknown>;
      // A collection may list only links (DSP0266 §9.5, without $expand): fetch a bounded number of them.
      if (entry['Message'] === undefined && odataId(entry) && fetches < MAX_ENTRY_FETCHES) {
        fetches++;
        entry = await c.get(odataId(entry)!);
      }
      const message = str(entry['Message']);
      if (message === null) continue;
      out.push({
        created: str(entry['Created']),
        severity: str(entry['Severity']) ?? str(entry['EntryType']),
        message,
        source: `${label}${servicePath.replace(/^\/redfish\/v1\//, '/')}`,
      });
    }
  }
  return out;
}

export function redfishDriver(
  target: RedfishTarget,
  options: RedfishHttpOptions,
): PowerDriver & {
  details(): Promise<RedfishDetails>;
} {
  const where = `Redfish ${target.host}:${target.port}`;
  const withClient = async <T>(work: (c: RedfishClient) => Promise<T>): Promise<T> => {
    const c = await openRedfish(target, options);
    try {
      return await work(c);
    } finally {
      await c.close();
    }
  };

  const reset = async (
    c: RedfishClient,
    system: Record<string, unknown>,
    kind: keyof typeof RESET_PREFERENCE,
  ) => {
    const { target: uri, allowed } = await resetAction(c, system);
    const type = chooseResetType(kind, allowed);
    if (!type) return undefined;
    await c.post(uri, { ResetType: type });
    return type;
  };

  const status = (): Promise<PowerState> =>
    withClient(async (c) => {
      const { system } = await firstSystem(c);
      const state = powerStateOf(system['PowerState']);
      if (!state) {
        throw new CorralError(
          'REDFISH_FAILED',
          `${where}: unexpected PowerState '${String(system['PowerState'])}'`,
        );
      }
      return state;
    });

  const bootOnce = async (c: RedfishClient, action: BootAction): Promise<string> => {
    const { path, system, etag } = await firstSystem(c);
    const wanted = BOOT_TARGETS[action];
    const boot = system['Boot'] as Record<string, unknown> | undefined;
    const allowed = boot?.['BootSourceOverrideTarget@Redfish.AllowableValues'];
    if (Array.isArray(allowed) && !allowed.includes(wanted)) {
      throw new CorralError(
        'POWER_UNSUPPORTED',
        `${where} cannot boot once from ${wanted} (it offers: ${allowed.join(', ')})`,
      );
    }
    // If-Match with the ETag read just before: services may require it for PATCH (DSP0266 §9.3.4.2).
    await c.patch(
      path,
      { Boot: { BootSourceOverrideTarget: wanted, BootSourceOverrideEnabled: 'Once' } },
      etag,
    );
    return wanted;
  };

  return {
    kind: 'redfish',
    actions: REDFISH_ACTIONS,
    status,
    act: (action: PowerAction): Promise<ActionResult> =>
      withClient(async (c) => {
        if (action === 'pxe' || action === 'uefi-http' || action === 'disk') {
          const device = await bootOnce(c, action);
          return { message: `set to boot once from ${device} through ${where}`, manual: false };
        }
        const { system } = await firstSystem(c);
        const state = powerStateOf(system['PowerState']);
        // Like IPMI's cycle of a chassis that is off (§28.3): a PowerCycle of an off system may do nothing.
        if (action === 'cycle' && state === 'off') {
          const type = await reset(c, system, 'on');
          if (!type) throw unsupported(where, 'on');
          return { message: `powered on through ${where} (it was off; ResetType ${type})`, manual: false };
        }
        let type = await reset(c, system, action);
        if (!type && action === 'cycle') {
          // Neither PowerCycle nor a restart offered: off, then on.
          const off = await reset(c, system, 'off');
          const on = off ? await reset(c, system, 'on') : undefined;
          if (off && on) type = `${off} + ${on}`;
        }
        if (!type) throw unsupported(where, action);
        const done = { on: 'powered on', off: 'powered off', cycle: 'power-cycled' }[action];
        return { message: `${done} through ${where} (ResetType ${type})`, manual: false };
      }),
    details: () =>
      withClient(async (c) => {
        const { system } = await firstSystem(c);
        const boot = system['Boot'] as Record<string, unknown> | undefined;
        const { allowed } = await resetAction(c, system).catch(() => ({ allowed: [] as string[] }));
        const logEntries = await logEntriesOf(c, system, 'System');
        const links = system['Links'] as Record<string, unknown> | undefined;
        const managedBy = links?.['ManagedBy'];
        const managerPath = Array.isArray(managedBy) ? odataId(managedBy[0]) : undefined;
        if (managerPath) logEntries.push(...(await logEntriesOf(c, await c.get(managerPath), 'Manager')));
        logEntries.sort((a, b) => (b.created ?? '').localeCompare(a.created ?? ''));
        return {
          manufacturer: str(system['Manufacturer']),
          model: str(system['Model']),
          serialNumber: str(system['SerialNumber']),
          biosVersion: str(system['BiosVersion']),
          powerState: str(system['PowerState']),
          bootOverride: {
            target: str(boot?.['BootSourceOverrideTarget']),
            enabled: str(boot?.['BootSourceOverrideEnabled']),
          },
          resetTypes: allowed,
          logEntries: logEntries.slice(0, MAX_LOG_ENTRIES),
        };
      }),
  };
}

function unsupported(where: string, action: string): CorralError {
  return new CorralError('POWER_UNSUPPORTED', `${where} advertises no ResetType for '${action}'`);
}
