/**
 * The virtual lab (`corral lab`): namespaces of its own (a bridge namespace holding the VMs' taps and a
 * master namespace), the real `corral master` inside, N QEMU VMs that PXE-boot from it, and a loopback
 * port on the host forwarded to the console. Used by the README's main job and by the e2e tests.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Server } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { buildNodeImage } from '../../node-images/index.js';
import type { Logger } from '../util/logger.js';
import { generatePassword } from '../auth/passwords.js';
import { LabNet, run, waitFor, type Host } from './net.js';
import { startMasterProcess, CLI, type MasterProcess } from './master-process.js';
import { labMac, startVm, type NicModel, type Vm } from './qemu.js';
import { forwardLoopbackToUnix } from './forward.js';

export interface LabOptions {
  /** Lab working directory: master data dir, VM disks, logs, state file. */
  dir: string;
  /** One entry per VM; `nic` defaults to virtio. */
  vms: {
    firmware: 'bios' | 'uefi' | 'uefi-http' | 'uefi-sb';
    nic?: NicModel;
    qmp?: boolean;
    /** `ipv6`: an IPv6-only UEFI machine (needs `ipv6Prefix`). */
    ipStack?: 'ipv4' | 'ipv6';
  }[];
  logger: Logger;
  /** Shared cache for the Debian kernel download. */
  cacheDir?: string;
  /** First three octets of the lab subnet inside the namespaces (the master is .1). */
  subnetPrefix?: string;
  /**
   * A dual-stack link (issue 18): the master also gets `<prefix>1/64` and serves DHCPv6 (and router
   * advertisements) from `<prefix>100` to `<prefix>1ff` beside DHCPv4, e.g. `fd00:98::`.
   */
  ipv6Prefix?: string;
  /** Loopback port on the host for the console (0 = any free port). */
  hostPort?: number;
  memoryMb?: number;
  diskGb?: number;
  /** VMs exit instead of rebooting (tests). */
  noReboot?: boolean;
  /** Extra JSON config for the master (merged into its config file). */
  masterConfig?: Record<string, unknown>;
  adminPassword?: string;
  /**
   * Two masters instead of one (issue 16's story): a backup host for `corral clone`, a witness host that
   * also relays the console, and the VIP the primary holds (docs/high-availability.md).
   */
  ha?: boolean;
  /** Runs after the master is up and before any VM powers on (the story's rules must exist first). */
  beforeVms?: (lab: Lab) => Promise<void>;
}

/** The HA half of a lab started with `ha: true`. */
export interface LabHa {
  vip: string;
  token: string;
  /** The backup master's host (namespace, interface, address) and data directory; started by the story. */
  backup: Host;
  backupDataDir: string;
  /** The witness's host; it also runs the console relay and is where the lab's own reads come from. */
  witness: Host;
  witnessUrl: string;
}

export interface Lab {
  id: string;
  net: LabNet;
  master: MasterProcess;
  masterNs: string;
  masterAddress: string;
  /** URL of the master inside the lab. */
  masterUrl: string;
  /** URL on the host's loopback, forwarded into the master namespace. */
  hostUrl: string;
  adminPassword: string;
  vms: Vm[];
  /** The MACs the VMs get, known before they power on (rules can name them). */
  macs: string[];
  ha?: LabHa;
  /** Records another long-running process of the lab (killed by destroy, listed in the state file). */
  adopt(proc: MasterProcess): void;
  destroy(): Promise<void>;
}

export interface LabState {
  id: string;
  namespaces: string[];
  pids: number[];
  hostUrl: string;
  createdAt: string;
}

export const STATE_FILE = 'lab.json';
/** HA replication, witness lease and follower timeouts in the lab (docs/lab.md: why not the defaults). */
export const LAB_HA_TIMEOUT_MS = 15_000;

/**
 * The lab's admin password, kept in DIR/admin-password (0600): a second `corral lab` on the same directory
 * reuses the master's data, where the first password is already set, so a new one would be wrong (and its
 * own progress poller would then lock the admin out through the sign-in limiter).
 */
export function labAdminPassword(dir: string): string {
  const file = join(dir, 'admin-password');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const password = generatePassword();
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return password;
}

export async function startLab(opts: LabOptions): Promise<Lab> {
  const log = opts.logger.child({ module: 'lab' });
  const dir = resolve(opts.dir);
  const dataDir = join(dir, 'master');
  mkdirSync(dataDir, { recursive: true });
  if (existsSync(join(dir, STATE_FILE))) {
    throw new Error(
      `a lab already runs from ${dir} (or was not torn down): run \`corral lab down --dir ${opts.dir}\``,
    );
  }
  if (opts.vms.some((v) => v.ipStack === 'ipv6') && !opts.ipv6Prefix)
    throw new Error('an IPv6-only lab VM needs the lab link to carry IPv6 (ipv6Prefix)');
  const prefix = opts.subnetPrefix ?? '10.99.0';
  const masterAddress = `${prefix}.1`;
  if (opts.ha) {
    // A story run starts from an empty inventory (its rules count machines from 1, the backup is cloned
    // afresh); what is slow to make is cached outside DIR (node environment, OS image).
    for (const d of ['master', 'backup', 'witness.json'])
      rmSync(join(dir, d), { recursive: true, force: true });
    opts.vms.forEach((_, i) => rmSync(join(dir, `vm${i + 1}.qcow2`), { force: true }));
    mkdirSync(dataDir, { recursive: true });
  }
  const adminPassword = opts.adminPassword ?? labAdminPassword(dir);

  log.info({ dir }, 'building the node environment (cached after the first build)');
  await buildNodeImage({
    cacheDir: opts.cacheDir ?? '/var/cache/corral',
    outDir: join(dataDir, 'node-image'),
    logger: opts.logger,
  });

  const net = new LabNet('corral');
  const extra: { servers: Server[]; children: ChildProcess[] } = { servers: [], children: [] };
  let master: MasterProcess | undefined;
  const vms: Vm[] = [];
  const masters: MasterProcess[] = [];
  const destroy = async (): Promise<void> => {
    for (const vm of vms) vm.kill();
    for (const s of extra.servers) s.close();
    for (const p of masters) await p.stop('SIGTERM', 8000).catch(() => p.stop('SIGKILL', 3000));
    if (master) await master.stop('SIGTERM', 8000).catch(() => master?.stop('SIGKILL', 3000));
    await net.destroy();
    rmSync(join(dir, STATE_FILE), { force: true });
  };

  try {
    const m = net.addHost('corral-m', `${masterAddress}/24`);
    const v6 = opts.ipv6Prefix;
    // nodad: the address is usable at once (Duplicate Address Detection would hold it tentative for ~1 s).
    if (v6) net.nsExec(m.ns, ['ip', '-6', 'addr', 'add', `${v6}1/64`, 'dev', m.ifname, 'nodad']);
    let ha: LabHa | undefined;
    if (opts.ha) {
      const witness = net.addHost('corral-w', `${prefix}.3/24`);
      ha = {
        vip: `${prefix}.50`,
        token: randomBytes(18).toString('hex'),
        backup: net.addHost('corral-b', `${prefix}.2/24`),
        backupDataDir: join(dir, 'backup'),
        witness,
        witnessUrl: `http://${witness.address}:7070`,
      };
      await startWitness(net, ha, dir);
    }
    const configPath = join(dir, 'master.json');
    writeFileSync(
      configPath,
      JSON.stringify(
        {
          dataDir,
          address: masterAddress,
          interface: m.ifname,
          http: { port: 80, ...(ha ? { publicUrl: `http://${ha.vip}` } : {}) },
          // The host reaches the console through a plain TCP relay to port 80 (docs/security.md).
          // The host's API calls arrive through the relay from the master's own address, inside namespaces
          // the lab made (nothing crosses a real network): Basic over HTTP opted in (docs/security.md).
          // With HA the masters' replication link needs the HTTPS listener, so it stays on.
          // The host's relay goes to port 80, so plain HTTP serves the console there (no redirect to an
          // HTTPS address the host cannot reach).
          console: { https: ha !== undefined, allowInsecureBasicAuth: true, redirectHttp: false },
          ...(ha
            ? {
                ha: {
                  enabled: true,
                  token: ha.token,
                  peerUrl: `https://${ha.backup.address}`,
                  vip: `${ha.vip}/24`,
                  witnessUrl: ha.witnessUrl,
                  priority: 150,
                  // The lab shares a small machine with TCG VMs that stall every process for seconds at a
                  // time: with the defaults (2 s, advert_int 1) the primary stepped down mid-deploy, its
                  // backup's poll and the witness both late. A longer witness lease and sync wait carry it
                  // through; the follower timeout must stay below 3 × advert_int (config check), so VRRP
                  // adverts go every 2 s and a dead primary's VIP moves in ~6 s instead of ~3 s.
                  advertInt: 2,
                  followerTimeoutMs: 5000,
                  syncTimeoutMs: LAB_HA_TIMEOUT_MS,
                  leaseMs: LAB_HA_TIMEOUT_MS,
                },
              }
            : {}),
          dhcp: { mode: 'server', range: `${prefix}.100-${prefix}.199`, subnet: `${prefix}.0/24` },
          ...(v6
            ? {
                dhcp6: {
                  enabled: true,
                  address: `${v6}1`,
                  prefix: `${v6}/64`,
                  range: `${v6}100-${v6}1ff`,
                },
              }
            : {}),
          nodeImage: { cacheDir: opts.cacheDir ?? '/var/cache/corral' },
          // Each VM's serial line as a socket named after its MAC (qemu.ts consoleSocket, issue 20).
          serialConsole: { socketDir: join(dir, 'serial') },
          ...(opts.masterConfig ?? {}),
        },
        null,
        2,
      ),
    );
    master = await startMasterProcess({
      args: ['--config', configPath],
      netns: m.ns,
      host: masterAddress,
      env: { CORRAL_ADMIN_PASSWORD: adminPassword, CORRAL_LOG_LEVEL: 'info' },
      logFile: join(dir, 'master.log'),
      timeoutMs: 30_000,
    });
    log.info({ ns: m.ns, address: masterAddress }, 'master running in its namespace');

    // The console on the host's loopback, through a Unix socket relay inside the master namespace. With
    // HA the relay runs on the witness host and goes to the VIP, so the console follows a failover.
    const sock = join(dir, 'console.sock');
    rmSync(sock, { force: true });
    const relayNs = ha ? ha.witness.ns : m.ns;
    const relayTarget = ha ? ha.vip : masterAddress;
    const relay = net.spawnIn(relayNs, ['node', CLI, '_forward', sock, relayTarget, '80'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    extra.children.push(relay);
    await waitFor('console relay socket', () => existsSync(sock), 10_000);
    const fwd = await forwardLoopbackToUnix(opts.hostPort ?? 0, sock);
    extra.servers.push(fwd.server);
    const hostUrl = `http://127.0.0.1:${fwd.port}`;

    const labByte = randomBytes(1)[0] ?? 1;
    const macs = opts.vms.map((_, i) => labMac(labByte, i + 1));
    const writeState = (): void => {
      const state: LabState = {
        id: net.id,
        namespaces: [...net.namespaceNames],
        pids: [...net.childPids, ...[master, ...masters].flatMap((p) => (p?.child.pid ? [p.child.pid] : []))],
        hostUrl,
        createdAt: new Date().toISOString(),
      };
      writeFileSync(join(dir, STATE_FILE), JSON.stringify(state, null, 2));
    };
    const lab: Lab = {
      id: net.id,
      net,
      master,
      masterNs: m.ns,
      masterAddress,
      masterUrl: master.url,
      hostUrl,
      adminPassword,
      vms,
      macs,
      ...(ha ? { ha } : {}),
      adopt: (proc) => {
        masters.push(proc);
        writeState();
      },
      destroy,
    };
    // Written before the hook: a Ctrl-C while the story prepares still finds what to tear down.
    writeState();
    await opts.beforeVms?.(lab);
    opts.vms.forEach((v, i) => {
      const name = `vm${i + 1}`;
      const spec = {
        name,
        ...(v.qmp ? { qmpSocket: join(dir, `${name}.qmp`) } : {}),
        mac: macs[i]!,
        firmware: v.firmware,
        ...(v.ipStack ? { ipStack: v.ipStack } : {}),
        nic: v.nic ?? ('virtio' as const),
        memoryMb: opts.memoryMb ?? 512,
        cpus: 1,
        diskPath: join(dir, `${name}.qcow2`),
        diskGb: opts.diskGb ?? 4,
        diskSerial: `CORRAL${net.id.toUpperCase()}${i + 1}`,
        tap: net.addTap(),
        noReboot: opts.noReboot ?? false,
        consoleSocket: join(dir, 'serial', `${macs[i]!.replace(/:/g, '-')}.sock`),
      };
      vms.push(startVm(net, spec, join(dir, `${name}.log`)));
      log.info(
        { vm: name, mac: spec.mac, firmware: spec.firmware, nic: spec.nic },
        'VM powered on (PXE boot)',
      );
    });

    writeState();
    return lab;
  } catch (err) {
    await destroy();
    throw err;
  }
}

/** The HA witness (`corral witness`) on its own host, as docs/high-availability.md sets it up. */
async function startWitness(net: LabNet, ha: LabHa, dir: string): Promise<void> {
  let out = '';
  const w = net.spawnIn(ha.witness.ns, [
    'node',
    CLI,
    'witness',
    '--listen',
    `${ha.witness.address}:7070`,
    '--token',
    ha.token,
    '--state',
    join(dir, 'witness.json'),
    '--lease-ms',
    String(LAB_HA_TIMEOUT_MS),
  ]);
  w.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  w.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('the witness to start', () => out.includes('corral witness started'), 15_000).catch(
    (err: Error) => {
      throw new Error(`${err.message}:\n${out}`);
    },
  );
}

/**
 * `corral lab down`: tears down a lab from its state file (when the `corral lab` process is gone).
 * Kills only the recorded PIDs whose command line is still a lab process, then deletes the namespaces.
 */
export function labDown(dir: string, logger: Logger): boolean {
  const path = join(resolve(dir), STATE_FILE);
  if (!existsSync(path)) return false;
  const state = JSON.parse(readFileSync(path, 'utf8')) as LabState;
  for (const pid of state.pids) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (/qemu-system|cli\.js|ip\0netns/.test(cmdline)) process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const ns of [...state.namespaces].reverse()) {
    try {
      for (const pid of run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      run('ip', ['netns', 'del', ns]);
    } catch {
      /* already gone */
    }
  }
  rmSync(path, { force: true });
  logger.info({ id: state.id, namespaces: state.namespaces.length }, 'lab torn down');
  return true;
}
