/**
 * Power control of nodes: stores each node's driver settings (password sealed), runs actions through the
 * driver, records every action and every observed state change as an event, and polls the state of nodes
 * whose driver can be asked. The API, the console and the CLI all go through `PowerControl`.
 */
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { NodeRecord } from '../store/nodes.js';
import type { PowerConfigRecord } from '../store/power-configs.js';
import { CorralError, isCorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { IPMI_ACTIONS, ipmiDriver, type RunIpmitool } from './ipmi.js';
import { manualDriver } from './manual.js';
import type {
  ActionResult,
  DriverChoice,
  DriverKind,
  PowerAction,
  PowerDriver,
  PowerState,
} from './power-driver.js';
import { REDFISH_ACTIONS, redfishDriver, type RedfishDetails } from './redfish.js';
import { probeRedfish } from './redfish-http.js';
import type { SecretBox } from './secrets.js';
import { broadcastOf, wolDriver } from './wol.js';

export interface PowerSettingsInput {
  driver: DriverChoice;
  address?: string | undefined;
  port?: number | undefined;
  username?: string | undefined;
  /** Write-only. Omitted on an update of the same driver: the stored password is kept. */
  password?: string | undefined;
  wolMac?: string | undefined;
  /**
   * Forget the pinned BMC certificate so the next contact pins the one it sees (after a certificate was
   * replaced on purpose). Without it a same-address update keeps the pin.
   */
  repin?: boolean | undefined;
}

/** What the API and the console may show: never the secret, only whether one is stored. */
export interface PublicPowerConfig {
  driver: DriverChoice;
  address: string | null;
  port: number | null;
  username: string | null;
  hasPassword: boolean;
  wolMac: string | null;
  /** The BMC certificate's SHA-256 fingerprint pinned on first use (Redfish), public like any certificate. */
  tlsPin: string | null;
  actions: readonly PowerAction[];
  state: PowerState;
  stateChangedAt: string | null;
  stateError: string | null;
  lastCheckedAt: string | null;
}

export interface PowerControl {
  configure(node: NodeRecord, input: PowerSettingsInput, actor: string | null): PublicPowerConfig;
  remove(node: NodeRecord, actor: string | null): void;
  view(mac: string): PublicPowerConfig | undefined;
  act(
    node: NodeRecord,
    action: PowerAction,
    actor: string | null,
  ): Promise<ActionResult & { state: PowerState }>;
  /** The BMC's view of the machine (Redfish only: inventory and log entries); undefined for other drivers. */
  bmcDetails(node: NodeRecord): Promise<RedfishDetails | undefined>;
  /**
   * Enrolment rules' BMC passwords (master/enrolment/power-outcome.ts): sealed with the same key as the
   * nodes', bound to their purpose, opened only to configure a caught node (which seals it for itself).
   */
  sealRuleSecret(password: string): string;
  openRuleSecret(sealed: string): string;
  /** The last details read from the node's BMC in this process, for the node page (no BMC call). */
  cachedBmc(mac: string): { readAt: string; details: RedfishDetails } | undefined;
  /** Reads the node's state through its driver, recording a change; `unknown` when it cannot be asked. */
  refresh(node: NodeRecord): Promise<PowerState>;
  pollAll(): Promise<void>;
  startPoller(): () => void;
  /**
   * The deploy flow's hook (master/deploy/deployer.ts): with IPMI, set PXE for the next boot, then
   * power-cycle the node (a chassis that is off is powered on), so it boots the installer; with
   * Wake-on-LAN, power it on (`rebooted` false: a running node ignores the packet). Resolves to null when
   * the node has no driver, the manual one (the master can do nothing itself) or
   * `remote.power.rebootForDeploy` is off: the deploy then uses the agent, SSH or the operator.
   */
  powerCycleForDeploy(
    node: NodeRecord,
    actor: string | null,
  ): Promise<{ driver: DriverKind; message: string; rebooted: boolean } | null>;
}

export interface PowerOptions {
  repos: Pick<Repos, 'store' | 'nodes' | 'events' | 'powerConfigs'>;
  config: Pick<FrozenConfig, 'remote' | 'dhcp' | 'address'>;
  logger: Logger;
  secrets: SecretBox;
  /** Injected ipmitool runner (tests of the error paths); the real one by default. */
  runIpmitool?: RunIpmitool;
}

const aadOf = (mac: string): string => `power:${mac}`;
const RULE_AAD = 'enrolment-rule:power';
const IPMI_PORT = 623;
const REDFISH_PORT = 443;

/** Drivers that talk to a BMC with an address and credentials. */
const isBmc = (d: DriverChoice): boolean => d === 'ipmi' || d === 'redfish' || d === 'auto';

/** What each driver can be asked; `auto` offers the common set until it is resolved. */
export function actionsOf(driver: DriverChoice): readonly PowerAction[] {
  if (driver === 'wol') return ['on'];
  if (driver === 'ipmi' || driver === 'auto') return IPMI_ACTIONS;
  if (driver === 'redfish') return REDFISH_ACTIONS;
  return ['on', 'off', 'cycle', 'pxe', 'uefi-http', 'disk'];
}

export function createPowerControl(o: PowerOptions): PowerControl {
  const { repos, config } = o;
  const log = o.logger.child(
    { module: 'power' },
    { redact: ['password', '*.password', 'secret', '*.secret'] },
  );
  const lastChecked = new Map<string, string>();
  const lastBmc = new Map<string, { readAt: string; details: RedfishDetails }>();
  const defaultBroadcast =
    config.remote.power.wolBroadcast ?? broadcastOf(config.dhcp.subnet ?? `${config.address}/24`);

  const toPublic = (c: PowerConfigRecord): PublicPowerConfig => ({
    driver: c.driver,
    address: c.address,
    port: c.port,
    username: c.username,
    hasPassword: c.secret !== null,
    wolMac: c.wolMac,
    tlsPin: c.tlsPin,
    actions: actionsOf(c.driver),
    state: c.powerState,
    stateChangedAt: c.stateChangedAt,
    stateError: c.stateError,
    lastCheckedAt: lastChecked.get(c.nodeMac) ?? null,
  });

  const bmcPassword = (c: PowerConfigRecord): string =>
    c.secret ? o.secrets.open(c.secret, aadOf(c.nodeMac)) : '';

  const redfishFor = (c: PowerConfigRecord) =>
    redfishDriver(
      {
        host: c.address ?? '',
        port: c.port ?? REDFISH_PORT,
        username: c.username ?? '',
        password: bmcPassword(c),
        pin: c.tlsPin,
      },
      {
        timeoutMs: config.remote.power.timeoutSeconds * 1000,
        // Trust on first use: the fingerprint seen at the first contact is kept with the node's settings.
        onPin: (fp) => pinCertificate(c, fp),
      },
    );

  const pinCertificate = (c: PowerConfigRecord, fp: string): void => {
    repos.store.write((journal) => {
      repos.powerConfigs.setResolvedIn(journal, c.nodeMac, c.driver, fp);
      repos.events.appendIn(journal, {
        nodeMac: c.nodeMac,
        kind: 'power.pinned',
        message: `BMC ${c.address}:${c.port ?? REDFISH_PORT} certificate pinned on first use: sha256 ${fp}`,
        actor: 'master',
        data: { driver: c.driver, fingerprint256: fp },
      });
    });
    c.tlsPin = fp;
  };

  /**
   * Driver `auto` (a BMC that may speak both): Redfish if its service root answers over HTTPS at the
   * address (the configured port, else 443), else IPMI on 623. The answer is stored, so it is asked once.
   */
  const resolveAuto = async (node: NodeRecord, c: PowerConfigRecord): Promise<PowerConfigRecord> => {
    if (c.driver !== 'auto') return c;
    const port = c.port ?? REDFISH_PORT;
    const fp = await probeRedfish(c.address ?? '', port, config.remote.power.timeoutSeconds * 1000);
    const driver = fp ? 'redfish' : 'ipmi';
    const resolved = repos.store.write((journal) => {
      if (!fp) {
        repos.powerConfigs.upsertIn(journal, { ...c, driver, port: IPMI_PORT, tlsPin: null });
      }
      const row = repos.powerConfigs.setResolvedIn(journal, c.nodeMac, driver, fp ?? null);
      repos.events.appendIn(journal, {
        nodeMac: c.nodeMac,
        kind: 'power.resolved',
        message: fp
          ? `${node.name}: BMC ${c.address} answers Redfish on port ${port}: using Redfish (certificate pinned: sha256 ${fp})`
          : `${node.name}: BMC ${c.address} has no Redfish service on port ${port}: using IPMI`,
        actor: 'master',
        data: { driver, address: c.address, port: fp ? port : IPMI_PORT },
      });
      return row;
    });
    log.info({ mac: node.mac, driver, address: c.address }, 'power driver auto resolved');
    return resolved;
  };

  const driverFor = (node: NodeRecord, c: PowerConfigRecord): PowerDriver => {
    switch (c.driver) {
      case 'redfish':
        return redfishFor(c);
      case 'auto':
        // resolveAuto runs before every use; reaching here is a programming error.
        throw new Error('power driver auto used before it was resolved');
      case 'ipmi':
        return ipmiDriver(
          {
            host: c.address ?? '',
            port: c.port ?? 623,
            username: c.username ?? '',
            password: bmcPassword(c),
          },
          {
            bin: config.remote.power.ipmitoolBin,
            timeoutMs: config.remote.power.timeoutSeconds * 1000,
            cipherSuite: config.remote.power.cipherSuite,
            ...(o.runIpmitool ? { run: o.runIpmitool } : {}),
          },
        );
      case 'wol':
        return wolDriver({
          mac: c.wolMac ?? node.mac,
          broadcast: c.address ?? defaultBroadcast,
          port: c.port ?? config.remote.power.wolPort,
        });
      case 'manual':
        return manualDriver(node.name);
    }
  };

  const settingsOf = (node: NodeRecord): PowerConfigRecord => {
    const c = repos.powerConfigs.get(node.mac);
    if (!c) throw new CorralError('POWER_NOT_CONFIGURED', `${node.name} has no power driver configured`);
    return c;
  };

  /** Records a newly observed state (and its event) only when it differs: polling writes nothing otherwise. */
  const observe = (node: NodeRecord, state: PowerState, error: string | null): void => {
    lastChecked.set(node.mac, new Date().toISOString());
    const c = repos.powerConfigs.get(node.mac);
    if (!c || (c.powerState === state && c.stateError === error)) return;
    repos.store.write((journal) => {
      repos.powerConfigs.setStateIn(journal, node.mac, state, error);
      if (c.powerState !== state) {
        repos.events.appendIn(journal, {
          nodeMac: node.mac,
          kind: 'power.state',
          message: `${node.name} power is ${state}${c.powerState !== 'unknown' ? ` (was ${c.powerState})` : ''}`,
          actor: 'master',
          data: { state, previous: c.powerState, driver: c.driver },
        });
      }
      if (error && error !== c.stateError) {
        repos.events.appendIn(journal, {
          nodeMac: node.mac,
          kind: 'power.unreachable',
          severity: 'warning',
          message: `${node.name}: cannot read power state: ${error}`,
          actor: 'master',
          data: { driver: c.driver },
        });
      }
    });
  };

  const refresh = async (node: NodeRecord): Promise<PowerState> => {
    try {
      const c = await resolveAuto(node, settingsOf(node));
      const state = await driverFor(node, c).status();
      observe(node, state, null);
      return state;
    } catch (err) {
      observe(node, 'unknown', isCorralError(err) ? err.message : String(err));
      throw err;
    }
  };

  const act = async (node: NodeRecord, action: PowerAction, actor: string | null) => {
    let c = settingsOf(node);
    try {
      c = await resolveAuto(node, c);
    } catch (err) {
      observe(node, 'unknown', isCorralError(err) ? err.message : String(err));
      throw err;
    }
    const driver = driverFor(node, c);
    if (!driver.actions.includes(action)) {
      throw new CorralError(
        'POWER_UNSUPPORTED',
        `the ${c.driver} driver of ${node.name} cannot '${action}' (it can: ${driver.actions.join(', ')})`,
      );
    }
    let result: ActionResult;
    try {
      result = await driver.act(action);
    } catch (err) {
      const message = isCorralError(err) ? err.message : String(err);
      repos.events.append({
        nodeMac: node.mac,
        kind: 'power.failed',
        severity: 'error',
        message: `${node.name}: power ${action} failed: ${message}`,
        actor,
        data: { action, driver: c.driver },
      });
      log.warn({ mac: node.mac, action, driver: c.driver, error: message }, 'power action failed');
      throw err;
    }
    repos.events.append({
      nodeMac: node.mac,
      kind: result.manual ? 'power.manual' : 'power.action',
      severity: result.manual ? 'warning' : 'info',
      message: `${node.name}: ${result.message}`,
      actor,
      data: { action, driver: c.driver },
    });
    log.info({ mac: node.mac, action, driver: c.driver, manual: result.manual }, 'power action');
    // The state after on/off is read back where the driver can tell (a BMC answers at once); after a
    // cycle the BMC powers back on after its cycle interval, so the poller records that instead.
    let state: PowerState = 'unknown';
    if (isBmc(c.driver) && (action === 'on' || action === 'off'))
      state = await refresh(node).catch(() => 'unknown' as const);
    return { ...result, state };
  };

  let polling = false;
  const pollAll = async (): Promise<void> => {
    if (polling) return;
    polling = true;
    try {
      for (const c of repos.powerConfigs.list()) {
        if (!isBmc(c.driver)) continue;
        const node = repos.nodes.get(c.nodeMac);
        if (!node) continue;
        await refresh(node).catch(() => undefined);
      }
    } finally {
      polling = false;
    }
  };

  return {
    configure(node, input, actor) {
      const existing = repos.powerConfigs.get(node.mac);
      let secret: string | null = null;
      const bmc = isBmc(input.driver);
      if (bmc) {
        if (!input.address || !input.username) {
          throw new CorralError(
            'BODY_INVALID',
            `the ${input.driver} driver needs address and username (and a password)`,
          );
        }
        if (input.password !== undefined) secret = o.secrets.seal(input.password, aadOf(node.mac));
        else if (existing && isBmc(existing.driver)) secret = existing.secret;
        else throw new CorralError('BODY_INVALID', `the ${input.driver} driver needs a password`);
      }
      const port =
        input.port ??
        (input.driver === 'ipmi' ? IPMI_PORT : input.driver === 'redfish' ? REDFISH_PORT : null);
      // The pin belongs to the BMC at that address and port: kept across edits of the credentials, dropped
      // when the BMC moves or the operator says its certificate was replaced on purpose.
      const keepPin =
        !input.repin &&
        existing?.tlsPin &&
        existing.address === (input.address ?? null) &&
        (existing.port ?? REDFISH_PORT) === (port ?? REDFISH_PORT);
      const saved = repos.store.write((journal) => {
        const row = repos.powerConfigs.upsertIn(journal, {
          nodeMac: node.mac,
          driver: input.driver,
          address: input.address ?? null,
          port,
          username: bmc ? (input.username ?? null) : null,
          secret,
          wolMac: input.driver === 'wol' ? (input.wolMac ?? null) : null,
          tlsPin: keepPin ? existing.tlsPin : null,
        });
        repos.events.appendIn(journal, {
          nodeMac: node.mac,
          kind: 'power.configured',
          message: `${node.name}: power driver ${input.driver}${input.address ? ` (${input.address})` : ''}`,
          actor,
          // Never the password: only that one is stored.
          data: {
            driver: input.driver,
            address: input.address ?? null,
            port: row.port,
            username: row.username,
            hasPassword: secret !== null,
            ...(input.repin ? { repin: true } : {}),
          },
        });
        return row;
      });
      return toPublic(saved);
    },
    remove(node, actor) {
      settingsOf(node);
      repos.store.write((journal) => {
        repos.powerConfigs.deleteIn(journal, node.mac);
        repos.events.appendIn(journal, {
          nodeMac: node.mac,
          kind: 'power.removed',
          message: `${node.name}: power driver removed`,
          actor,
        });
      });
      lastChecked.delete(node.mac);
      lastBmc.delete(node.mac);
    },
    view(mac) {
      const c = repos.powerConfigs.get(mac);
      return c ? toPublic(c) : undefined;
    },
    act,
    refresh,
    async bmcDetails(node) {
      const c = await resolveAuto(node, settingsOf(node));
      if (c.driver !== 'redfish') return undefined;
      const details = await redfishFor(c).details();
      lastBmc.set(node.mac, { readAt: new Date().toISOString(), details });
      return details;
    },
    cachedBmc: (mac) => lastBmc.get(mac),
    sealRuleSecret: (password) => o.secrets.seal(password, RULE_AAD),
    openRuleSecret: (sealed) => o.secrets.open(sealed, RULE_AAD),
    pollAll,
    startPoller() {
      const seconds = config.remote.power.pollSeconds;
      if (!seconds) return () => undefined;
      const run = (): void => {
        pollAll().catch((err: unknown) => log.warn({ err }, 'power poll failed'));
      };
      const first = setTimeout(run, 1000);
      const timer = setInterval(run, seconds * 1000);
      first.unref();
      timer.unref();
      return () => {
        clearTimeout(first);
        clearInterval(timer);
      };
    },
    async powerCycleForDeploy(node, actor) {
      const stored = repos.powerConfigs.get(node.mac);
      if (!stored || stored.driver === 'manual' || !config.remote.power.rebootForDeploy) return null;
      const c = await resolveAuto(node, stored);
      if (c.driver === 'auto' || c.driver === 'manual') return null;
      if (c.driver === 'wol') {
        const r = await act(node, 'on', actor);
        return { driver: c.driver, message: r.message, rebooted: false };
      }
      // `chassis bootdev pxe` holds for the next boot only: the installed system boots its disk after.
      await act(node, 'pxe', actor);
      const r = await act(node, 'cycle', actor);
      return { driver: c.driver, message: r.message, rebooted: true };
    },
  };
}
