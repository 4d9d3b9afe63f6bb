/**
 * Network namespaces for the virtual lab and the tests (see shared/LAB.md). Every name carries a per-run
 * suffix so two runs cannot collide; everything created is recorded and removed by `destroy()`, which
 * callers run in a finally/after hook. Traffic stays inside these namespaces: nothing here touches the
 * host's interfaces, addresses or routes.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function hasCommand(name: string): boolean {
  try {
    run('sh', ['-c', `command -v ${name}`]);
    return true;
  } catch {
    return false;
  }
}

/** A short per-run token: interface names are limited to 15 characters. */
export function runId(): string {
  return randomBytes(3).toString('hex');
}

export interface Host {
  ns: string;
  ifname: string;
  address: string;
}

/**
 * A lab segment: one namespace holding a bridge, and hosts each in their own namespace joined to the
 * bridge by a veth pair. Addresses are on a subnet the test chooses (e.g. 10.77.x.0/24).
 */
export class LabNet {
  readonly id: string;
  readonly bridgeNs: string;
  private readonly namespaces: string[] = [];
  private readonly children: ChildProcess[] = [];
  private hostCount = 0;

  constructor(prefix = 'ct', id = runId()) {
    this.id = id;
    this.bridgeNs = `${prefix}-br-${this.id}`;
    this.addNs(this.bridgeNs);
    this.nsExec(this.bridgeNs, ['ip', 'link', 'add', 'br0', 'type', 'bridge']);
    // Forward immediately: STP/forward delay would otherwise hold the first DHCP packets.
    this.nsExec(this.bridgeNs, ['ip', 'link', 'set', 'br0', 'type', 'bridge', 'forward_delay', '0']);
    this.nsExec(this.bridgeNs, ['ip', 'link', 'set', 'br0', 'up']);
  }

  /** Every namespace this net created, bridge first (for `corral lab down` state files). */
  get namespaceNames(): readonly string[] {
    return this.namespaces;
  }

  /** PIDs of the processes started through spawnIn that are still running. */
  get childPids(): number[] {
    return this.children
      .filter((c) => c.exitCode === null && c.signalCode === null && c.pid)
      .map((c) => c.pid!);
  }

  private addNs(name: string): void {
    run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  nsExec(ns: string, argv: string[], input?: string): string {
    const [cmd, ...args] = argv;
    if (!cmd) throw new Error('empty command');
    return run('ip', ['netns', 'exec', ns, cmd, ...args], input);
  }

  /**
   * Adds a host namespace with one interface on the bridge. `cidr` like "10.77.0.1/24", or null for an
   * interface with no address (a DHCP client host).
   */
  addHost(name: string, cidr: string | null, mac?: string): Host {
    const n = this.hostCount++;
    const ns = `${name}-${this.id}`;
    this.addNs(ns);
    const ifname = `h${n}`;
    const peer = `p${n}-${this.id}`;
    this.nsExec(this.bridgeNs, ['ip', 'link', 'add', ifname, 'type', 'veth', 'peer', 'name', peer]);
    this.nsExec(this.bridgeNs, ['ip', 'link', 'set', peer, 'master', 'br0']);
    this.nsExec(this.bridgeNs, ['ip', 'link', 'set', peer, 'up']);
    this.nsExec(this.bridgeNs, ['ip', 'link', 'set', ifname, 'netns', ns]);
    if (mac) this.nsExec(ns, ['ip', 'link', 'set', ifname, 'address', mac]);
    if (cidr) this.nsExec(ns, ['ip', 'addr', 'add', cidr, 'dev', ifname]);
    this.nsExec(ns, ['ip', 'link', 'set', ifname, 'up']);
    return { ns, ifname, address: cidr ? (cidr.split('/')[0] ?? '') : '' };
  }

  /** Adds a tap device on the bridge (for a QEMU VM started inside the bridge namespace). */
  addTap(): string {
    const name = `tap${this.hostCount++}`;
    this.nsExec(this.bridgeNs, ['ip', 'tuntap', 'add', 'dev', name, 'mode', 'tap']);
    this.nsExec(this.bridgeNs, ['ip', 'link', 'set', name, 'master', 'br0']);
    this.nsExec(this.bridgeNs, ['ip', 'link', 'set', name, 'up']);
    return name;
  }

  /** Starts a long-running process inside a namespace; it is killed by destroy(). */
  spawnIn(ns: string, argv: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: 'pipe', ...options });
    this.children.push(child);
    return child;
  }

  /** Kills every process started here, then removes the namespaces (and with them veths, taps, bridge). */
  async destroy(): Promise<void> {
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(resolve, 3000);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
    for (const ns of this.namespaces.reverse()) {
      // Any stray process left in the namespace (a daemonised client) is killed before the namespace goes.
      try {
        const pids = run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
      } catch {
        /* namespace already gone */
      }
      try {
        run('ip', ['netns', 'del', ns]);
      } catch {
        /* already gone */
      }
    }
  }
}

/** Waits for `predicate` to return a value, polling; bounded by `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  predicate: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
