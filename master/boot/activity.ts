/**
 * The per-MAC boot timeline (issue 22): every step of a boot attempt — DHCP, TFTP, the iPXE script, kernel
 * and initrd fetches, enlistment, deploy reports — from known and unknown MACs alike, with the failing step
 * marked and a hint saying what to do. `describe()` is pure (a step in, summary/failed/hint out); the
 * BootActivity class only attributes steps to MACs and hands them to the buffered store.
 *
 * Bounds (master/store/boot-activity.ts): 100 steps per MAC, 1000 MACs; the oldest are evicted.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MESSAGE_TYPE_NAMES, type DhcpPacket } from '../dhcp/codec.js';
import type { Decision } from '../dhcp/policy.js';
import { clientArchitecture, isIpxe, isPxeClient } from '../dhcp/pxe.js';
import type { BootActivityStore, BootActivityWrite } from '../store/boot-activity.js';
import type { Logger } from '../util/logger.js';
import { clientIp, plainAddress } from '../util/client-ip.js';
import { diskFailureHow } from './local-fallback.js';

export interface DhcpStep {
  kind: 'dhcp';
  /** DHCPDISCOVER, DHCPREQUEST, ... as received. */
  message: string;
  /** DHCPOFFER, DHCPACK, DHCPNAK, or null when nothing was sent. */
  reply: string | null;
  /** Option 60 starts with PXEClient, or user class iPXE: a boot ROM rather than an OS's client. */
  pxe: boolean;
  /** Option 93's first type (RFC 4578 §2.1), or the one in the PXE vendor class. */
  arch: number | null;
  vendorClass: string | null;
  userClass: string | null;
  /** The boot file offered (a TFTP name, or the boot script's URL for iPXE). */
  bootFile: string | null;
  /** The address offered or acknowledged (yiaddr); null in proxyDHCP mode or without a reply. */
  ip: string | null;
  /** The address the client says it has (ciaddr): in proxyDHCP mode the only address a request names. */
  clientIp: string | null;
  note: string;
  problem: NonNullable<Decision['tag']> | null;
}

export interface TftpStep {
  kind: 'tftp';
  file: string;
  ok: boolean;
  bytes: number;
  ms: number;
  error?: string;
}

export interface ScriptStep {
  kind: 'script';
  /** The template served: iPXE's (ipxe/discover.hbs, ...) or network GRUB's (grub/discover.hbs, ...). */
  template: string;
  ip: string;
}

export interface FetchStep {
  kind: 'http';
  path: string;
  status: number;
  /** Content-Length of a completed response; null when the client went away first. */
  bytes: number | null;
  ms: number;
  aborted: boolean;
}

export interface EnlistStep {
  kind: 'enlist';
  name: string;
  created: boolean;
  ip: string;
}

export interface DeployStep {
  kind: 'deploy';
  event: 'progress' | 'result' | 'booted';
  phase?: string;
  ok?: boolean;
  reason?: string;
}

/** The node used its boot attempts (boot.retries) and was given the operator's fallback (issue 18). */
export interface FallbackStep {
  kind: 'fallback';
  /** boot.onFailure: 'local-disk' or 'shell' (retry-forever never falls back). */
  action: string;
  /** Boot attempts made: the first and each retry. */
  attempts: number;
  ip: string;
}

/** A deployed node's boot loader reported that its disk did not boot (boot/local-fallback.ts, issue 18). */
export interface DiskFailedStep {
  kind: 'disk-failed';
  /** 'sanboot' (iPXE, BIOS), 'grub' (network GRUB, UEFI) or 'returned' (local-fallback.ts isReturn). */
  via: string;
  /** Believed: the node was marked failed and given the node environment. */
  accepted: boolean;
  /** Why it was not believed (local-fallback.ts judgeLocalFailure). */
  refused?: string;
  ip: string;
}

export type BootStep =
  DhcpStep | TftpStep | ScriptStep | FetchStep | EnlistStep | DeployStep | FallbackStep | DiskFailedStep;

/** Where the socket servers and routes report steps; every hook is `deps.activity?.…`, so it is optional. */
export interface BootActivitySink {
  record(mac: string, step: BootStep): void;
  /** For protocols that only know the peer's address (TFTP, kernel fetches): attributed via DHCP and leases. */
  recordByIp(ip: string, step: BootStep): void;
  /** Records an HTTP download (status, bytes, duration) when its response closes. */
  watchFetch(req: IncomingMessage, res: ServerResponse): void;
  /** The firmware boot option (firmwareBootPath) of the MAC's latest firmware DHCP request, if any. */
  firmwarePath?(mac: string): string | undefined;
}

/**
 * Which of a firmware's network boot options a DHCP request comes from: its vendor class (PXE or HTTP
 * boot) and the protocol family, e.g. "PXEClient over IPv6". Undefined for iPXE (user class iPXE: it does
 * its own DHCP after the firmware, or is the option ROM itself) and for clients that are not booting.
 */
export function firmwareBootPath(step: DhcpStep): string | undefined {
  const cls = /^(PXEClient|HTTPClient)/.exec(step.vendorClass ?? '')?.[1];
  if (!cls || (step.userClass ?? '').split(',').includes('iPXE')) return undefined;
  return `${cls} over ${step.message.startsWith('DHCP') ? 'IPv4' : 'IPv6'}`;
}

export interface Described {
  summary: string;
  failed: boolean;
  hint: string | null;
}

const ARCH_NAMES: Readonly<Record<number, string>> = {
  0: 'BIOS',
  6: 'UEFI ia32',
  7: 'UEFI x86-64',
  9: 'UEFI x86-64',
  16: 'UEFI x86-64 HTTP',
};

const BUILD_HINT = 'the node environment is not built — see the dashboard (or run `corral node-image build`)';

function archName(arch: number | null): string | null {
  return arch === null ? null : (ARCH_NAMES[arch] ?? `arch ${arch}`);
}

function formatBytes(n: number | null): string {
  if (n === null) return '? bytes';
  if (n < 10_000) return `${n} bytes`;
  if (n < 10_000_000) return `${(n / 1024).toFixed(0)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/** The file a boot URL names, in words an operator knows. */
function fetchWhat(path: string): string {
  if (/\/boot\/node\/vmlinuz$/.test(path)) return 'kernel';
  if (/\/boot\/node\/initrd\.img$/.test(path)) return 'initrd';
  if (/\/boot\/images\//.test(path)) return 'OS image';
  if (/\/boot\/installer\//.test(path)) return 'installer tools';
  return path;
}

function describeDhcp(s: DhcpStep): Described {
  const facts = [
    // Not a boot ROM: a followed MAC's OS asking for an address (the node environment's udhcpc is up).
    s.pxe ? null : `OS client${s.vendorClass ? ` ${s.vendorClass}` : ''}`,
    archName(s.arch),
    s.userClass ? `user class ${s.userClass}` : null,
    s.bootFile ? `boot file ${s.bootFile}` : null,
    s.ip ? `address ${s.ip}` : null,
  ].filter(Boolean);
  const head = s.reply ? `${s.message} → ${s.reply}` : `${s.message}, no reply`;
  const summary = `${head}${facts.length ? ` (${facts.join(', ')})` : ''}${s.reply ? '' : `: ${s.note}`}`;
  if (s.problem === 'pool-exhausted') {
    return { summary, failed: true, hint: 'no free address: widen dhcp.range or free stale leases' };
  }
  if (s.problem === 'unknown-relay') {
    return {
      summary,
      failed: true,
      hint: "the relay's giaddr is in no configured pool: add a dhcp.relayPools entry",
    };
  }
  if (s.problem === 'declined') {
    return {
      summary,
      failed: true,
      hint: 'the client found the offered address in use (DHCPDECLINE): another host holds it',
    };
  }
  if (s.reply === 'DHCPNAK') {
    return {
      summary,
      failed: true,
      hint: 'the client asked for an address this master will not give it; it starts over',
    };
  }
  if (s.pxe && s.reply && !s.bootFile) {
    return {
      summary,
      failed: true,
      hint: 'no boot file for this client architecture: only BIOS and x86 UEFI are served',
    };
  }
  return { summary, failed: false, hint: null };
}

/** Summary, failure mark and hint of one step. Pure: the same step always reads the same. */
export function describe(step: BootStep): Described {
  switch (step.kind) {
    case 'dhcp':
      return describeDhcp(step);
    case 'tftp': {
      if (!step.ok && step.bytes === 0 && /^client sent ERROR 8\b/.test(step.error ?? '')) {
        // RFC 2347: a client may end the transfer with ERROR 8 after the OACK. UEFI PXE does so to learn
        // the file's size (tsize, RFC 2349) before fetching it for real: a normal step, not a failure.
        return {
          summary: `TFTP ${step.file}: size asked, then ended by the client (tsize probe)`,
          failed: false,
          hint: null,
        };
      }
      if (step.ok) {
        return {
          summary: `TFTP ${step.file}: ${formatBytes(step.bytes)} in ${step.ms} ms`,
          failed: false,
          hint: null,
        };
      }
      const summary = `TFTP ${step.file} failed${step.bytes ? ` after ${formatBytes(step.bytes)}` : ''}: ${step.error ?? 'unknown error'}`;
      const hint = /not found/i.test(step.error ?? '')
        ? /^\/?(shimx64|grubx64)\.efi$/.test(step.file)
          ? `${step.file} is not in the TFTP root: install Debian packages shim-signed and grub-efi-amd64-signed (boot.shimFile, boot.grubFile) and restart the master`
          : `${step.file} is not in the TFTP root: install Debian package ipxe (boot.ipxeDir) and restart the master`
        : /access violation/i.test(step.error ?? '')
          ? `${step.file} is outside the TFTP root or not a regular file: the firmware asked for the wrong name`
          : /busy/i.test(step.error ?? '')
            ? 'too many transfers at once: the client will retry; raise tftp.maxTransfers if it persists'
            : 'the transfer stopped: check the link; firmware that fails on large blocks needs a smaller tftp.maxBlksize';
      return { summary, failed: true, hint };
    }
    case 'script': {
      // grub/ templates: the Secure Boot chain's per-node GRUB config, the same decision (boot/grub.ts).
      const grub = step.template.startsWith('grub/');
      const summary = `${grub ? 'GRUB config' : 'iPXE script'} ${step.template}`;
      if (step.template === 'ipxe/no-image.hbs' || step.template === 'grub/no-image.hbs') {
        return { summary, failed: true, hint: `node environment missing: ${BUILD_HINT}; the node retries` };
      }
      return { summary, failed: false, hint: null };
    }
    case 'http': {
      const what = fetchWhat(step.path);
      if (step.aborted) {
        return {
          summary: `${what} download cut off (HTTP ${step.status}, ${step.ms} ms)`,
          failed: true,
          hint: 'the node closed the connection before the end: it timed out, rebooted or lost its link',
        };
      }
      const summary = `${what}: HTTP ${step.status}, ${formatBytes(step.bytes)} in ${step.ms} ms`;
      if (step.status === 404 && (what === 'kernel' || what === 'initrd')) {
        return { summary, failed: true, hint: `${what} missing: ${BUILD_HINT}` };
      }
      if (step.status === 404 && what === 'OS image') {
        return {
          summary,
          failed: true,
          hint: 'the image is not on this master: import it again or deploy another',
        };
      }
      if (step.status >= 500)
        return { summary, failed: true, hint: "the master failed to serve it: see the master's log" };
      if (step.status >= 400)
        return { summary, failed: true, hint: `the master refused the request (HTTP ${step.status})` };
      return { summary, failed: false, hint: null };
    }
    case 'fallback':
      return {
        summary: `boot failed ${step.attempts} times: ${step.action === 'shell' ? 'iPXE shell opened' : 'left for the local disk (exit 1)'}`,
        failed: true,
        hint: 'the node could not boot what the master served: see the failing steps above, fix them, then power-cycle it (boot.onFailure, boot.retries)',
      };
    case 'disk-failed':
      return step.accepted
        ? {
            summary: `disk boot failed (${diskFailureHow(step.via, true)}): node marked failed, node environment served`,
            failed: true,
            hint: "the node's disk did not boot what was deployed: redeploy it from the console (the node waits in the node environment)",
          }
        : {
            summary: `disk boot failure reported (${step.via}) but not taken: ${step.refused ?? 'refused'}; left for the next boot device`,
            failed: true,
            hint: 'a report is believed only within 10 minutes of a local-disk answer from this master: power-cycle the node',
          };
    case 'enlist':
      return {
        summary: `agent enlisted as ${step.name}${step.created ? ' (new node)' : ''} from ${step.ip}`,
        failed: false,
        hint: null,
      };
    case 'deploy': {
      if (step.event === 'progress')
        return { summary: `deploy: ${step.phase ?? 'progress'}`, failed: false, hint: null };
      if (step.event === 'booted')
        return { summary: 'deploy: installed system booted and reported', failed: false, hint: null };
      if (step.ok) return { summary: 'deploy: installer finished', failed: false, hint: null };
      return {
        summary: `deploy: installer failed: ${step.reason ?? 'no reason given'}`,
        failed: true,
        hint: "install failed: see the node's events for the installer's log tail, then deploy again",
      };
    }
  }
}

/**
 * A boot script asked for again right after a download names what iPXE could not use. The node
 * templates fetch the kernel, then the initrd, then boot, each `|| goto failed`, and `failed` sleeps and
 * chains the script again: so a script request straight after the kernel means iPXE rejected the kernel
 * (`kernel` failed: not a bootable image), and straight after the initrd means `initrd` or `boot` failed.
 * Null when the previous step says nothing about this request.
 */
export function scriptRetry(previous: BootStep | undefined, step: ScriptStep): Described | null {
  if (previous?.kind !== 'http' || previous.status >= 400 || previous.aborted) return null;
  const what = fetchWhat(previous.path);
  if (what !== 'kernel' && what !== 'initrd') return null;
  return {
    summary: `iPXE script ${step.template}, again right after the ${what} download: iPXE did not boot it`,
    failed: true,
    hint:
      what === 'kernel'
        ? 'iPXE fetched the kernel but could not load it (not a bootable kernel?): rebuild the node environment — see the dashboard'
        : "iPXE fetched the initrd but the boot failed: rebuild the node environment, and see the node's console",
  };
}

/** The DHCP step of one request and the policy's decision (master/dhcp/server.ts calls this). */
export function dhcpStep(req: DhcpPacket, decision: Pick<Decision, 'reply' | 'note' | 'tag'>): DhcpStep {
  const o = req.options;
  const reply = decision.reply?.packet;
  const type = (t: number | undefined): string =>
    t === undefined ? '?' : (MESSAGE_TYPE_NAMES[t] ?? `type ${t}`);
  const yiaddr = reply?.yiaddr && reply.yiaddr !== '0.0.0.0' ? reply.yiaddr : null;
  return {
    kind: 'dhcp',
    message: type(o.messageType),
    reply: reply ? type(reply.options.messageType) : null,
    pxe: isPxeClient(o) || isIpxe(o),
    arch: clientArchitecture(o),
    vendorClass: o.vendorClassId ?? null,
    userClass: o.userClass?.join(',') ?? null,
    bootFile: (reply?.options.bootfileName ?? reply?.file) || null,
    ip: yiaddr,
    clientIp: req.ciaddr && req.ciaddr !== '0.0.0.0' ? req.ciaddr : null,
    note: decision.note,
    problem: decision.tag ?? null,
  };
}

export interface BootActivityOptions {
  store: BootActivityStore;
  logger: Logger;
  now?: () => Date;
  /** Fallback IP → MAC (the DHCP leases), when no DHCP or script step of this master has named the pair. */
  lookupIp?: (ip: string) => string | undefined;
  /** A MAC this master knows as a node: its non-PXE DHCP (the agent's udhcpc) is recorded too. */
  isNode?: (mac: string) => boolean;
  /** How often buffered steps are written; default 1000 ms. */
  flushMs?: number;
}

/**
 * Attributes steps to MACs and buffers them into the store. Bounded memory: the IP → MAC map and the set
 * of followed MACs are capped at twice the store's MAC limit (oldest forgotten first).
 */
export class BootActivity implements BootActivitySink {
  private readonly now: () => Date;
  private readonly log: Logger;
  private readonly ipToMac = new Map<string, string>();
  private readonly tracked = new Set<string>();
  private readonly lastPhase = new Map<string, string>();
  /** Each followed MAC's previous step, for scriptRetry (a DHCP in between means a new boot). */
  private readonly lastStep = new Map<string, BootStep>();
  /** Each MAC's latest firmware boot option (firmwareBootPath). */
  private readonly firmware = new Map<string, string>();
  private readonly cap: number;
  private timer: NodeJS.Timeout | undefined;
  /** Steps whose peer address no DHCP lease or script request named. */
  unattributed = 0;

  constructor(private readonly opts: BootActivityOptions) {
    this.now = opts.now ?? (() => new Date());
    this.log = opts.logger.child({ module: 'boot-activity' });
    this.cap = opts.store.bounds.maxMacs * 2;
    for (const mac of opts.store.trackedMacs()) this.tracked.add(mac);
  }

  /** Starts the periodic flush (unref'd: it never keeps the process alive). */
  start(): void {
    this.timer ??= setInterval(() => this.flush(), this.opts.flushMs ?? 1000);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
  }

  flush(): void {
    try {
      this.opts.store.flush();
    } catch (err) {
      this.opts.store.shed();
      this.log.warn({ err }, 'boot activity not written');
    }
  }

  /** Never throws: it runs inside the DHCP server's packet handler and HTTP close listeners. */
  record(rawMac: string, step: BootStep): void {
    try {
      this.append(rawMac.toLowerCase(), step);
    } catch (err) {
      this.log.warn({ err, mac: rawMac, kind: step.kind }, 'boot step not recorded');
    }
  }

  private append(mac: string, step: BootStep): void {
    // An OS's own DHCP client on the segment (proxyDHCP beside an office network) is no boot attempt:
    // only boot ROMs, MACs already followed and known nodes (the agent's udhcpc) are recorded.
    if (step.kind === 'dhcp' && !step.pxe && !this.tracked.has(mac) && !this.opts.isNode?.(mac)) return;
    if (step.kind === 'dhcp' && step.ip && step.reply === 'DHCPACK')
      this.remember(this.ipToMac, step.ip, mac);
    // proxyDHCP: another server leased the address; the PXE client names it in ciaddr (port 4011 request).
    if (step.kind === 'dhcp' && step.clientIp) this.remember(this.ipToMac, step.clientIp, mac);
    if (step.kind === 'script' || step.kind === 'enlist')
      this.remember(this.ipToMac, plainAddress(step.ip), mac);
    const path = step.kind === 'dhcp' ? firmwareBootPath(step) : undefined;
    if (path) this.remember(this.firmware, mac, path);
    const previous = this.lastStep.get(mac);
    // A waiting agent polls /api/v1/enlist (pollSeconds): one step per boot, not one per poll.
    if (step.kind === 'enlist' && previous?.kind === 'enlist' && previous.name === step.name) return;
    if (step.kind === 'deploy' && step.event === 'progress') {
      // The installer reports every few seconds; a phase is one step of the timeline, not each report.
      if (this.lastPhase.get(mac) === step.phase) return;
      this.remember(this.lastPhase, mac, step.phase ?? '');
    }
    this.tracked.delete(mac);
    this.tracked.add(mac);
    if (this.tracked.size > this.cap) this.tracked.delete(this.tracked.values().next().value as string);
    const described = (step.kind === 'script' && scriptRetry(previous, step)) || describe(step);
    this.lastStep.delete(mac);
    this.lastStep.set(mac, step);
    if (this.lastStep.size > this.cap) this.lastStep.delete(this.lastStep.keys().next().value as string);
    const entry: BootActivityWrite = {
      mac,
      at: this.now().toISOString(),
      kind: step.kind,
      ...described,
      detail: { ...step },
    };
    this.opts.store.add(entry);
  }

  firmwarePath(mac: string): string | undefined {
    return this.firmware.get(mac.toLowerCase());
  }

  recordByIp(address: string, step: BootStep): void {
    const ip = plainAddress(address);
    let mac = this.ipToMac.get(ip);
    if (!mac) {
      try {
        mac = this.opts.lookupIp?.(ip);
      } catch (err) {
        this.log.debug({ err, ip }, 'lease lookup failed');
      }
    }
    if (!mac) {
      this.unattributed++;
      this.log.debug({ ip, kind: step.kind }, 'boot step from an address no lease names; not recorded');
      return;
    }
    this.record(mac, step);
  }

  watchFetch(req: IncomingMessage, res: ServerResponse): void {
    const started = this.now().getTime();
    const ip = clientIp(req) ?? '';
    // Express rewrites req.url inside a mounted router; originalUrl keeps the /boot/... path.
    const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '';
    const path = url.split('?')[0] ?? '';
    res.once('close', () => {
      const aborted = !res.writableFinished;
      const length = Number(res.getHeader('content-length'));
      this.recordByIp(ip, {
        kind: 'http',
        path,
        status: res.statusCode,
        bytes: aborted || !Number.isFinite(length) ? null : req.method === 'HEAD' ? 0 : length,
        ms: this.now().getTime() - started,
        aborted,
      });
    });
  }

  private remember(map: Map<string, string>, key: string, value: string): void {
    if (!key) return;
    map.delete(key);
    map.set(key, value);
    if (map.size > this.cap) map.delete(map.keys().next().value as string);
  }
}
