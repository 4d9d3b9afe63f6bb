/**
 * A two-master HA cluster in network namespaces for tests and the bench: a bridge, masters m1 and m2,
 * a witness host and a client host; real `corral master` processes (each supervising a real keepalived),
 * a real `corral witness`, and `corral clone` to build m2 from m1. Everything is torn down by `destroy()`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TestNet, waitFor, type Host } from './netns.js';
import { startMasterProcess, CLI, type MasterProcess } from './master-process.js';

export const TOKEN = 'ha-test-token-0123456789';
export const PASSWORD = 'ha-test-password';
export const PORT = 8080;
const WRITER = fileURLToPath(new URL('./ha-writer.js', import.meta.url));

export interface MasterHost {
  name: 'm1' | 'm2';
  host: Host;
  dataDir: string;
  configPath: string;
  proc?: MasterProcess;
}

export class HaCluster {
  readonly net: TestNet;
  readonly prefix: string;
  readonly vip: string;
  readonly m1: MasterHost;
  readonly m2: MasterHost;
  readonly witnessHost: Host;
  readonly client: Host;
  readonly dhcpClient: Host;
  readonly dir: string;
  witness?: ChildProcess;
  private readonly procs: ChildProcess[] = [];

  constructor() {
    this.net = new TestNet('cha');
    const b = parseInt(this.net.id.slice(0, 2), 16);
    this.prefix = `10.${70 + (b % 10)}.${parseInt(this.net.id.slice(2, 4), 16) % 250}`;
    this.vip = `${this.prefix}.50`;
    // keepalived runs scripts only from paths no other user can write: a root-only folder outside /tmp.
    this.dir = mkdtempSync('/run/corral-ha-');
    const m1h = this.net.addHost('m1', `${this.prefix}.1/24`);
    const m2h = this.net.addHost('m2', `${this.prefix}.2/24`);
    this.witnessHost = this.net.addHost('wit', `${this.prefix}.3/24`);
    this.client = this.net.addHost('cli', `${this.prefix}.10/24`);
    this.dhcpClient = this.net.addHost('dhc', null);
    this.m1 = { name: 'm1', host: m1h, dataDir: join(this.dir, 'm1'), configPath: join(this.dir, 'm1.json') };
    this.m2 = {
      name: 'm2',
      host: m2h,
      dataDir: join(this.dir, 'm2'),
      configPath: join(this.dir, 'm2', 'corral.json'),
    };
  }

  url(m: MasterHost): string {
    return `http://${m.host.address}:${PORT}`;
  }

  /** Where the masters reach each other: HTTPS (default port 443), the certificate pinned by clone. */
  peerUrl(m: MasterHost): string {
    return `https://${m.host.address}`;
  }

  get vipUrl(): string {
    return `http://${this.vip}:${PORT}`;
  }

  writeM1Config(extraHa: Record<string, unknown> = {}): void {
    writeFileSync(
      this.m1.configPath,
      JSON.stringify({
        dataDir: this.m1.dataDir,
        address: this.m1.host.address,
        interface: this.m1.host.ifname,
        http: { port: PORT, publicUrl: this.vipUrl },
        dhcp: { mode: 'server', range: `${this.prefix}.100-${this.prefix}.150` },
        log: { level: 'debug' },
        // The write load enlists a new MAC every 20 ms from one client: lift the new-MAC rate limit.
        nodes: {
          enlistRate: {
            perIpBurst: 100_000,
            perIpPerMinute: 1_000_000,
            globalBurst: 1_000_000,
            globalPerMinute: 10_000_000,
          },
        },
        // The tests' curl -u goes over plain HTTP between namespaces: opted in (m2's clone inherits it).
        console: { allowInsecureBasicAuth: true },
        ha: {
          enabled: true,
          token: TOKEN,
          peerUrl: this.peerUrl(this.m2),
          vip: `${this.vip}/24`,
          witnessUrl: `http://${this.witnessHost.address}:7070`,
          priority: 150,
          ...extraHa,
        },
      }),
    );
  }

  async startWitness(): Promise<void> {
    const out: string[] = [];
    const w = this.net.spawnIn(this.witnessHost.ns, [
      'node',
      CLI,
      'witness',
      '--listen',
      `${this.witnessHost.address}:7070`,
      '--token',
      TOKEN,
      '--state',
      join(this.dir, 'witness.json'),
      '--lease-ms',
      '3000',
    ]);
    w.stdout?.on('data', (d: Buffer) => out.push(d.toString()));
    w.stderr?.on('data', (d: Buffer) => out.push(d.toString()));
    this.witness = w;
    await waitFor('witness start', () => out.join('').includes('corral witness started'), 10_000);
  }

  async startMaster(m: MasterHost): Promise<MasterProcess> {
    m.proc = await startMasterProcess({
      args: ['--config', m.configPath],
      netns: m.host.ns,
      host: m.host.address,
      env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
      logFile: join(this.dir, `${m.name}.log`),
      timeoutMs: 30_000,
    });
    return m.proc;
  }

  /** `corral clone` run on m2's host against m1. */
  clone(): string {
    return this.net.nsExec(this.m2.host.ns, [
      'node',
      CLI,
      'clone',
      '--from',
      this.peerUrl(this.m1),
      '--token',
      TOKEN,
      '--data-dir',
      this.m2.dataDir,
      '--address',
      this.m2.host.address,
      '--interface',
      this.m2.host.ifname,
      '--priority',
      '100',
    ]);
  }

  /** JSON from a master's API, fetched inside a namespace with curl (bounded). */
  api(ns: string, url: string, method = 'GET', body?: unknown): { status: number; json: unknown } {
    const args = ['curl', '-sS', '-m', '3', '-u', `admin:${PASSWORD}`, '-X', method, '-w', '\n%{http_code}'];
    if (body !== undefined) args.push('-H', 'content-type: application/json', '-d', JSON.stringify(body));
    try {
      const out = this.net.nsExec(ns, [...args, url]).trimEnd();
      const i = out.lastIndexOf('\n');
      const text = out.slice(0, i);
      return { status: Number(out.slice(i + 1)), json: text ? (JSON.parse(text) as unknown) : null };
    } catch {
      return { status: 0, json: null };
    }
  }

  status(m: MasterHost): HaStatusView | undefined {
    const r = this.api(m.host.ns, `${this.url(m)}/api/v1/ha/status`);
    return r.status === 200 ? (r.json as HaStatusView) : undefined;
  }

  holdsVip(m: MasterHost): boolean {
    try {
      return this.net
        .nsExec(m.host.ns, ['ip', '-4', '-o', 'addr', 'show', 'dev', m.host.ifname])
        .includes(`${this.vip}/`);
    } catch {
      return false;
    }
  }

  keepalivedPids(m: MasterHost): number[] {
    const pids: number[] = [];
    for (const f of ['keepalived.pid', 'keepalived-vrrp.pid']) {
      try {
        pids.push(Number(readFileSync(join(m.dataDir, 'ha', f), 'utf8').trim()));
      } catch {
        /* not running */
      }
    }
    return pids.filter((p) => p > 1);
  }

  /** Machine death: SIGKILL the master and its keepalived at once (no priority-0 advert is sent). */
  killMachine(m: MasterHost): void {
    const pids = [...this.keepalivedPids(m), m.proc?.child.pid ?? 0].filter((p) => p > 1);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  startWriter(
    url: string,
    intervalMs: number,
    prefix: string,
  ): { proc: ChildProcess; acked: string[]; errors: string[]; latencies: number[] } {
    const proc = this.net.spawnIn(this.client.ns, ['node', WRITER, url, String(intervalMs), prefix]);
    this.procs.push(proc);
    const acked: string[] = [];
    const errors: string[] = [];
    const latencies: number[] = [];
    let buf = '';
    proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const [kind, mac, rest] = line.split(' ');
        if (kind === 'ACK' && mac) {
          acked.push(mac);
          latencies.push(Number(rest));
        } else if (kind === 'ERR') errors.push(line);
      }
    });
    return { proc, acked, errors, latencies };
  }

  /**
   * Cuts (or heals) the link between the two masters only: both bridge ports are marked `isolated`, so
   * the bridge drops every frame between them (VRRP, replication, ARP) while both still reach the
   * witness and the clients.
   */
  partition(on: boolean): void {
    for (const port of [`p0-${this.net.id}`, `p1-${this.net.id}`]) {
      this.net.nsExec(this.net.bridgeNs, [
        'bridge',
        'link',
        'set',
        'dev',
        port,
        'isolated',
        on ? 'on' : 'off',
      ]);
    }
  }

  async destroy(): Promise<void> {
    for (const m of [this.m1, this.m2]) {
      for (const pid of this.keepalivedPids(m)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await m.proc?.stop('SIGKILL', 5000).catch(() => undefined);
    }
    for (const p of this.procs) if (p.exitCode === null) p.kill('SIGKILL');
    await this.net.destroy();
    if (!process.env['HA_KEEP_LOGS']) rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface HaStatusView {
  nodeId: string;
  role: 'primary' | 'backup';
  epoch: number;
  lastSeq: number;
  vrrp: string;
  mode: string;
  backup: { ackedSeq: number; lagChanges: number; lagSeconds: number; connected: boolean } | null;
  follower: {
    appliedSeq: number;
    lagChanges: number;
    lagSeconds: number;
    connected: boolean;
    discarded: number;
  } | null;
}
