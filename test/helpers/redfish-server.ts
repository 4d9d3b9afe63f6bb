/**
 * A Redfish TEST SERVER, not a product part and not a real BMC. No runnable Redfish service ships in
 * Debian (DMTF's Redfish-Mockup-Server and OpenStack's sushy-tools are pip-only; python3-sushy is a
 * client), so the Redfish driver is tested against this stand-in, built from DMTF's published documents:
 *   - DSP0266 (Redfish Specification 1.x): service root without authentication (§13.3.1), sessions by
 *     POST to /redfish/v1/SessionService/Sessions answering X-Auth-Token + Location and ended by DELETE
 *     (§13.3.4), HTTP Basic as the alternative, error bodies with @Message.ExtendedInfo (§9.6), ETag and
 *     If-Match on PATCH (§9.3.4.2), actions as POST to Actions/#Type.Action targets (§9.4).
 *   - DSP2043 (Redfish mockups), "public-rackmount1": the resource tree and payload shapes of its
 *     ComputerSystem 437XR1138R2 (Contoso, Model 3500, BiosVersion "P79 v1.45 (12/06/2017)"), its
 *     ResetActionInfo, Managers/BMC and the LogServices/…/Entries collections.
 *   - DSP8010 schemas: ComputerSystem.Reset ResetType, Boot.BootSourceOverrideTarget/Enabled, PowerState.
 *
 * Behind it is a real QEMU VM driven over QMP (the VM's power and boot order), since QEMU has no BMC of
 * its own: "off" stops the vCPUs and takes the NIC's link down (the process stays, as a BMC's host stays
 * powered), "on" resets the machine into its firmware and runs it; a one-time boot override sets the
 * NIC's or disk's `bootindex` by qom-set, which QEMU hands to the firmware at the next reset
 * (fw_cfg "bootorder"), then restores the default order at the reset after.
 *
 * In-process: `startRedfishServer(options)`. In a namespace: `node dist/test/helpers/redfish-server.js
 * --port N --tls-dir DIR --qmp SOCK [--host H] [--user U] [--reset-types A,B]` with the password in
 * REDFISH_TEST_PASSWORD; prints `READY {port, fingerprint256}`, then one `REQ {json}` line per request.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureTls } from '../../master/auth/tls.js';
import { silentLogger } from '../../master/util/logger.js';

export const TEST_SERVER_NOTICE =
  'Redfish TEST SERVER (test/helpers/redfish-server.ts, built from DMTF DSP0266 + DSP2043 public-rackmount1; not a real BMC)';

const SYSTEM_ID = '437XR1138R2';
const SYS = `/redfish/v1/Systems/${SYSTEM_ID}`;
const MGR = '/redfish/v1/Managers/BMC';
const SESSIONS = '/redfish/v1/SessionService/Sessions';
export const ALL_RESET_TYPES = [
  'On',
  'ForceOff',
  'GracefulShutdown',
  'GracefulRestart',
  'ForceRestart',
  'Nmi',
  'ForceOn',
  'PushPowerButton',
  'PowerCycle',
];

export interface RedfishServerOptions {
  host: string;
  port: number;
  /** Where the self-signed certificate is generated (a new directory = a new certificate). */
  tlsDir: string;
  /** QMP socket of the VM; its NIC has device id nic0 and its disk disk0. */
  qmpSocket: string;
  username: string;
  password: string;
  /** ResetTypes advertised in ResetActionInfo (default: all of the schema's). */
  resetTypes?: string[];
  /** Request lines (`REQ` in spawned mode). */
  onRequest?: (r: RequestRecord) => void;
}

export interface RequestRecord {
  method: string;
  path: string;
  status: number;
  auth: 'session' | 'basic' | 'none';
}

export interface RedfishServer {
  port: number;
  fingerprint256: string;
  requests: RequestRecord[];
  /** Sessions currently open (a client that logs out leaves none). */
  openSessions(): number;
  close(): Promise<void>;
}

interface QmpReply {
  return?: unknown;
  error?: { class: string; desc: string };
}

/** Runs QMP commands on a fresh connection (QMP spec: greeting, qmp_capabilities, then commands). */
export function qmp(
  socket: string,
  commands: { execute: string; arguments?: unknown }[],
): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    const results: unknown[] = [];
    let buf = '';
    // Replies arrive in order: the greeting, qmp_capabilities' reply, then one per command.
    let answered = -2;
    const timer = setTimeout(() => s.destroy(new Error(`QMP ${socket}: no answer within 10 s`)), 10_000);
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as QmpReply & { event?: string };
        if (msg.event) continue;
        if (msg.error) {
          clearTimeout(timer);
          s.destroy();
          const what = answered < 0 ? 'qmp_capabilities' : (commands[answered]?.execute ?? '?');
          return reject(new Error(`QMP ${what}: ${msg.error.desc}`));
        }
        if (answered >= 0) results.push(msg.return);
        answered++;
        const next = answered === -1 ? { execute: 'qmp_capabilities' } : commands[answered];
        if (next) s.write(`${JSON.stringify(next)}\n`);
        else {
          clearTimeout(timer);
          s.end();
          return resolve(results);
        }
      }
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

type BootTarget = 'None' | 'Pxe' | 'Hdd' | 'UefiHttp';

/** The VM behind the service: power and boot order through QMP. */
class QemuHost {
  overrideTarget: BootTarget = 'None';
  overrideEnabled: 'Disabled' | 'Once' | 'Continuous' = 'Disabled';
  private restoreDefault = false;

  constructor(private readonly socket: string) {}

  async powerState(): Promise<'On' | 'Off'> {
    try {
      const [status] = (await qmp(this.socket, [{ execute: 'query-status' }])) as { running: boolean }[];
      return status?.running ? 'On' : 'Off';
    } catch {
      return 'Off'; // the QEMU process is gone: nothing runs
    }
  }

  /** The boot order for this reset: the pending one-time override, else back to the default after one. */
  private async applyBootOrder(): Promise<string | undefined> {
    let first: 'nic0' | 'disk0' | undefined;
    let note: string | undefined;
    if (this.overrideEnabled !== 'Disabled' && this.overrideTarget !== 'None') {
      // UefiHttp is the firmware's network boot as well: QEMU's NIC is the device either way.
      first = this.overrideTarget === 'Hdd' ? 'disk0' : 'nic0';
      note = `boot override ${this.overrideTarget} applied`;
      if (this.overrideEnabled === 'Once') {
        this.overrideEnabled = 'Disabled';
        this.overrideTarget = 'None';
        this.restoreDefault = true;
      }
    } else if (this.restoreDefault) {
      first = 'nic0'; // the VM's own order (master/lab/qemu.ts: NIC 1, disk 2)
      this.restoreDefault = false;
    }
    if (!first) return undefined;
    const second = first === 'nic0' ? 'disk0' : 'nic0';
    const set = (id: string, value: number) => ({
      execute: 'qom-set',
      arguments: { path: `/machine/peripheral/${id}`, property: 'bootindex', value },
    });
    // Two devices may not share a bootindex (QEMU check_boot_index): park both, then set the order.
    await qmp(this.socket, [set('nic0', 100), set('disk0', 101), set(first, 1), set(second, 2)]);
    return note;
  }

  async bootIndexes(): Promise<{ nic0: number; disk0: number }> {
    const get = (id: string) => ({
      execute: 'qom-get',
      arguments: { path: `/machine/peripheral/${id}`, property: 'bootindex' },
    });
    const [nic0, disk0] = (await qmp(this.socket, [get('nic0'), get('disk0')])) as number[];
    return { nic0: nic0 ?? -1, disk0: disk0 ?? -1 };
  }

  async on(): Promise<string> {
    if ((await this.powerState()) === 'On') return 'already on';
    const note = await this.applyBootOrder();
    await qmp(this.socket, [
      { execute: 'set_link', arguments: { name: 'nic0', up: true } },
      { execute: 'system_reset' },
      { execute: 'cont' },
    ]);
    return `powered on${note ? `; ${note}` : ''}`;
  }

  async off(): Promise<string> {
    await qmp(this.socket, [
      { execute: 'stop' },
      { execute: 'set_link', arguments: { name: 'nic0', up: false } },
    ]);
    return 'powered off';
  }

  async restart(): Promise<string> {
    if ((await this.powerState()) === 'Off') return this.on();
    const note = await this.applyBootOrder();
    await qmp(this.socket, [{ execute: 'system_reset' }]);
    return `reset${note ? `; ${note}` : ''}`;
  }

  async cycle(): Promise<string> {
    await this.off();
    await new Promise((r) => setTimeout(r, 500));
    return `power cycle: ${await this.on()}`;
  }

  async acpiPowerdown(): Promise<string> {
    await qmp(this.socket, [{ execute: 'system_powerdown' }]);
    return 'ACPI power button pressed';
  }
}

interface LogEntry {
  Id: string;
  Created: string;
  Severity: 'OK' | 'Warning' | 'Critical';
  Message: string;
}

export async function startRedfishServer(o: RedfishServerOptions): Promise<RedfishServer> {
  const tls = await ensureTls({ dataDir: o.tlsDir, address: o.host, logger: silentLogger() });
  const host = new QemuHost(o.qmpSocket);
  const resetTypes = o.resetTypes ?? ALL_RESET_TYPES;
  const sessions = new Map<string, { token: string; user: string }>();
  const systemLog: LogEntry[] = [];
  const managerLog: LogEntry[] = [];
  const requests: RequestRecord[] = [];
  let etag = 1;
  const log = (to: LogEntry[], Severity: LogEntry['Severity'], Message: string): void => {
    to.push({ Id: String(to.length + 1), Created: new Date().toISOString(), Severity, Message });
  };
  log(managerLog, 'OK', `BMC started; TLS certificate sha256 ${tls.fingerprint256}`);

  const redfishError = (res: ServerResponse, status: number, id: string, message: string): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        error: {
          code: 'Base.1.8.GeneralError',
          message: 'A general error has occurred. See ExtendedInfo for more information.',
          '@Message.ExtendedInfo': [{ MessageId: `Base.1.8.${id}`, Message: message, Severity: 'Critical' }],
        },
      }),
    );
  };

  const collection = (id: string, type: string, members: string[]) => ({
    '@odata.id': id,
    '@odata.type': `#${type}.${type}`,
    Name: type.replace('Collection', ' Collection'),
    'Members@odata.count': members.length,
    Members: members.map((m) => ({ '@odata.id': m })),
  });

  const entries = (base: string, list: LogEntry[], inline: boolean) => ({
    '@odata.id': `${base}/Entries`,
    '@odata.type': '#LogEntryCollection.LogEntryCollection',
    Name: 'Log Service Collection',
    'Members@odata.count': list.length,
    // The System log answers expanded members, the manager's SEL only links: both forms are legal.
    Members: list.map((e) => (inline ? entryBody(base, e) : { '@odata.id': `${base}/Entries/${e.Id}` })),
  });
  const entryBody = (base: string, e: LogEntry) => ({
    '@odata.id': `${base}/Entries/${e.Id}`,
    '@odata.type': '#LogEntry.v1_15_0.LogEntry',
    Id: e.Id,
    Name: `Log Entry ${e.Id}`,
    EntryType: 'Event',
    Severity: e.Severity,
    Created: e.Created,
    Message: e.Message,
  });

  const system = async () => ({
    '@odata.id': SYS,
    '@odata.type': '#ComputerSystem.v1_20_0.ComputerSystem',
    Id: SYSTEM_ID,
    Name: 'WebFrontEnd483',
    SystemType: 'Physical',
    Manufacturer: 'Contoso',
    Model: '3500',
    SKU: '8675309',
    SerialNumber: SYSTEM_ID,
    PartNumber: '224071-J23',
    BiosVersion: 'P79 v1.45 (12/06/2017)',
    PowerState: await host.powerState(),
    Boot: {
      BootSourceOverrideEnabled: host.overrideEnabled,
      BootSourceOverrideTarget: host.overrideTarget,
      'BootSourceOverrideTarget@Redfish.AllowableValues': ['None', 'Pxe', 'Hdd', 'UefiHttp'],
      BootSourceOverrideMode: 'Legacy',
    },
    LogServices: { '@odata.id': `${SYS}/LogServices` },
    Links: { ManagedBy: [{ '@odata.id': MGR }] },
    Actions: {
      '#ComputerSystem.Reset': {
        target: `${SYS}/Actions/ComputerSystem.Reset`,
        '@Redfish.ActionInfo': `${SYS}/ResetActionInfo`,
      },
    },
  });

  const GET: Record<string, () => unknown> = {
    '/redfish': () => ({ v1: '/redfish/v1/' }),
    '/redfish/v1/': () => ({
      '@odata.id': '/redfish/v1/',
      '@odata.type': '#ServiceRoot.v1_15_0.ServiceRoot',
      Id: 'RootService',
      Name: 'Root Service',
      RedfishVersion: '1.15.0',
      UUID: '92384634-2938-2342-8820-489239905423',
      Systems: { '@odata.id': '/redfish/v1/Systems' },
      Managers: { '@odata.id': '/redfish/v1/Managers' },
      SessionService: { '@odata.id': '/redfish/v1/SessionService' },
      Links: { Sessions: { '@odata.id': SESSIONS } },
      Oem: { TestServer: TEST_SERVER_NOTICE },
    }),
    '/redfish/v1/Systems': () => collection('/redfish/v1/Systems', 'ComputerSystemCollection', [SYS]),
    [SYS]: system,
    [`${SYS}/ResetActionInfo`]: () => ({
      '@odata.id': `${SYS}/ResetActionInfo`,
      '@odata.type': '#ActionInfo.v1_3_0.ActionInfo',
      Id: 'ResetActionInfo',
      Name: 'Reset Action Info',
      Parameters: [{ Name: 'ResetType', Required: true, DataType: 'String', AllowableValues: resetTypes }],
    }),
    [`${SYS}/LogServices`]: () =>
      collection(`${SYS}/LogServices`, 'LogServiceCollection', [`${SYS}/LogServices/Log`]),
    [`${SYS}/LogServices/Log`]: () => ({
      '@odata.id': `${SYS}/LogServices/Log`,
      '@odata.type': '#LogService.v1_5_0.LogService',
      Id: 'Log',
      Name: 'System Log Service',
      Entries: { '@odata.id': `${SYS}/LogServices/Log/Entries` },
    }),
    [`${SYS}/LogServices/Log/Entries`]: () => entries(`${SYS}/LogServices/Log`, systemLog, true),
    '/redfish/v1/Managers': () => collection('/redfish/v1/Managers', 'ManagerCollection', [MGR]),
    [MGR]: () => ({
      '@odata.id': MGR,
      '@odata.type': '#Manager.v1_19_0.Manager',
      Id: 'BMC',
      Name: 'Manager',
      ManagerType: 'BMC',
      FirmwareVersion: 'test-server',
      LogServices: { '@odata.id': `${MGR}/LogServices` },
    }),
    [`${MGR}/LogServices`]: () =>
      collection(`${MGR}/LogServices`, 'LogServiceCollection', [`${MGR}/LogServices/SEL`]),
    [`${MGR}/LogServices/SEL`]: () => ({
      '@odata.id': `${MGR}/LogServices/SEL`,
      '@odata.type': '#LogService.v1_5_0.LogService',
      Id: 'SEL',
      Name: 'System Event Log Service',
      Entries: { '@odata.id': `${MGR}/LogServices/SEL/Entries` },
    }),
    [`${MGR}/LogServices/SEL/Entries`]: () => entries(`${MGR}/LogServices/SEL`, managerLog, false),
    '/redfish/v1/SessionService': () => ({
      '@odata.id': '/redfish/v1/SessionService',
      '@odata.type': '#SessionService.v1_1_8.SessionService',
      Id: 'SessionService',
      Name: 'Session Service',
      ServiceEnabled: true,
      SessionTimeout: 600,
      Sessions: { '@odata.id': SESSIONS },
    }),
    [SESSIONS]: () =>
      collection(
        SESSIONS,
        'SessionCollection',
        [...sessions.keys()].map((id) => `${SESSIONS}/${id}`),
      ),
  };

  const bodyOf = (req: IncomingMessage): Promise<Record<string, unknown> | undefined> =>
    new Promise((resolve) => {
      let text = '';
      req.on('data', (d: Buffer) => {
        text += d.toString('utf8');
        if (text.length > 65_536) req.destroy();
      });
      req.on('end', () => {
        try {
          resolve(text ? (JSON.parse(text) as Record<string, unknown>) : undefined);
        } catch {
          resolve(undefined);
        }
      });
    });

  const authOf = (
    req: IncomingMessage,
  ): { kind: RequestRecord['auth']; user?: string; sessionId?: string } => {
    const token = req.headers['x-auth-token'];
    if (typeof token === 'string') {
      for (const [id, s] of sessions)
        if (s.token === token) return { kind: 'session', user: s.user, sessionId: id };
      return { kind: 'none' };
    }
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    if (basic) {
      const [u, ...p] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      if (u === o.username && p.join(':') === o.password) return { kind: 'basic', user: u };
    }
    return { kind: 'none' };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<RequestRecord['auth']> => {
    const path = new URL(req.url ?? '/', 'https://x').pathname.replace(/^\/redfish\/v1$/, '/redfish/v1/');
    const method = req.method ?? 'GET';
    const json = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'odata-version': '4.0', ...headers });
      res.end(JSON.stringify(body));
    };
    // DSP0266 §13.3.1: the service root and the login itself need no authentication.
    if (method === 'GET' && (path === '/redfish' || path === '/redfish/v1/')) {
      json(200, GET[path]!());
      return 'none';
    }
    if (method === 'POST' && path === SESSIONS) {
      const b = await bodyOf(req);
      if (b?.['UserName'] !== o.username || b?.['Password'] !== o.password) {
        log(managerLog, 'Warning', `Login failed for user ${String(b?.['UserName'] ?? '?')}`);
        redfishError(res, 401, 'NoValidSession', 'Invalid user name or password.');
        return 'none';
      }
      const id = randomUUID();
      const token = randomBytes(24).toString('hex');
      sessions.set(id, { token, user: o.username });
      log(managerLog, 'OK', `Session ${id.slice(0, 8)} opened for user ${o.username}`);
      json(
        201,
        {
          '@odata.id': `${SESSIONS}/${id}`,
          '@odata.type': '#Session.v1_6_0.Session',
          Id: id,
          UserName: o.username,
        },
        { 'x-auth-token': token, location: `${SESSIONS}/${id}` },
      );
      return 'none';
    }
    const auth = authOf(req);
    if (auth.kind === 'none') {
      res.setHeader('www-authenticate', 'Basic realm="Redfish"');
      redfishError(
        res,
        401,
        'NoValidSession',
        'There is no valid session established with the implementation.',
      );
      return 'none';
    }
    if (method === 'DELETE' && path.startsWith(`${SESSIONS}/`)) {
      const id = path.slice(SESSIONS.length + 1);
      if (!sessions.delete(id)) {
        redfishError(res, 404, 'ResourceMissingAtURI', `The resource at the URI ${path} was not found.`);
      } else {
        log(managerLog, 'OK', `Session ${id.slice(0, 8)} closed`);
        res.writeHead(204).end();
      }
      return auth.kind;
    }
    if (method === 'GET') {
      const make = GET[path];
      const entry = /^(.*\/LogServices\/(?:Log|SEL))\/Entries\/(\d+)$/.exec(path);
      if (entry) {
        const list = entry[1] === `${SYS}/LogServices/Log` ? systemLog : managerLog;
        const e = list.find((x) => x.Id === entry[2]);
        if (e) json(200, entryBody(entry[1]!, e));
        else redfishError(res, 404, 'ResourceMissingAtURI', `The resource at the URI ${path} was not found.`);
        return auth.kind;
      }
      if (!make) {
        redfishError(res, 404, 'ResourceMissingAtURI', `The resource at the URI ${path} was not found.`);
        return auth.kind;
      }
      json(200, await make(), path === SYS ? { etag: `W/"${etag}"` } : {});
      return auth.kind;
    }
    if (method === 'PATCH' && path === SYS) {
      const ifMatch = req.headers['if-match'];
      if (ifMatch && ifMatch !== `W/"${etag}"`) {
        redfishError(
          res,
          412,
          'PreconditionFailed',
          'The ETag supplied did not match the ETag required to change this resource.',
        );
        return auth.kind;
      }
      const boot = (await bodyOf(req))?.['Boot'] as Record<string, unknown> | undefined;
      const target = boot?.['BootSourceOverrideTarget'];
      const enabled = boot?.['BootSourceOverrideEnabled'];
      if (target !== undefined && !['None', 'Pxe', 'Hdd', 'UefiHttp'].includes(String(target))) {
        redfishError(
          res,
          400,
          'PropertyValueNotInList',
          `The value ${String(target)} for the property BootSourceOverrideTarget is not in the list of acceptable values.`,
        );
        return auth.kind;
      }
      if (enabled !== undefined && !['Disabled', 'Once', 'Continuous'].includes(String(enabled))) {
        redfishError(
          res,
          400,
          'PropertyValueNotInList',
          `The value ${String(enabled)} for the property BootSourceOverrideEnabled is not in the list of acceptable values.`,
        );
        return auth.kind;
      }
      if (target !== undefined) host.overrideTarget = target as BootTarget;
      if (enabled !== undefined) host.overrideEnabled = enabled as 'Disabled' | 'Once' | 'Continuous';
      etag++;
      log(systemLog, 'OK', `Boot source override set: ${host.overrideTarget} (${host.overrideEnabled})`);
      res.writeHead(204, { etag: `W/"${etag}"` }).end();
      return auth.kind;
    }
    if (method === 'POST' && path === `${SYS}/Actions/ComputerSystem.Reset`) {
      const type = String((await bodyOf(req))?.['ResetType'] ?? '');
      if (!resetTypes.includes(type)) {
        redfishError(
          res,
          400,
          'ActionParameterValueNotInList',
          `The value ${type} for the parameter ResetType is not in the list of acceptable values.`,
        );
        return auth.kind;
      }
      const run: Record<string, () => Promise<string>> = {
        On: () => host.on(),
        ForceOn: () => host.on(),
        ForceOff: () => host.off(),
        GracefulShutdown: () => host.acpiPowerdown(),
        PushPowerButton: async () => ((await host.powerState()) === 'On' ? host.acpiPowerdown() : host.on()),
        ForceRestart: () => host.restart(),
        GracefulRestart: () => host.restart(),
        PowerCycle: () => host.cycle(),
        Nmi: async () => (await qmp(o.qmpSocket, [{ execute: 'inject-nmi' }]), 'NMI injected'),
      };
      try {
        const what = await run[type]!();
        log(systemLog, 'OK', `ResetType ${type}: ${what}`);
        res.writeHead(204).end();
      } catch (err) {
        log(systemLog, 'Critical', `ResetType ${type} failed: ${(err as Error).message}`);
        redfishError(res, 500, 'InternalError', `The request failed: ${(err as Error).message}`);
      }
      return auth.kind;
    }
    redfishError(res, 405, 'OperationNotAllowed', `${method} is not allowed on ${path}.`);
    return auth.kind;
  };

  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    handle(req, res)
      .then((auth) => {
        const r: RequestRecord = {
          method: req.method ?? '',
          path: req.url ?? '',
          status: res.statusCode,
          auth,
        };
        requests.push(r);
        o.onRequest?.(r);
      })
      .catch((err: unknown) => {
        if (!res.headersSent) redfishError(res, 500, 'InternalError', (err as Error).message);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : o.port,
    fingerprint256: tls.fingerprint256,
    requests,
    openSessions: () => sessions.size,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      'tls-dir': { type: 'string' },
      qmp: { type: 'string' },
      user: { type: 'string', default: 'corral' },
      'reset-types': { type: 'string' },
    },
    strict: true,
  });
  const password = process.env['REDFISH_TEST_PASSWORD'];
  if (!values['tls-dir'] || !values.qmp || !password) {
    console.error('usage: REDFISH_TEST_PASSWORD=… redfish-server --tls-dir DIR --qmp SOCK [--port N]');
    process.exit(2);
  }
  const s = await startRedfishServer({
    host: values.host,
    port: Number(values.port),
    tlsDir: values['tls-dir'],
    qmpSocket: values.qmp,
    username: values.user,
    password,
    ...(values['reset-types'] ? { resetTypes: values['reset-types'].split(',') } : {}),
    onRequest: (r) => console.log(`REQ ${JSON.stringify(r)}`),
  });
  console.error(TEST_SERVER_NOTICE);
  console.log(`READY ${JSON.stringify({ port: s.port, fingerprint256: s.fingerprint256 })}`);
  const stop = (): void => void s.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
