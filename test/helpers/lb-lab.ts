/**
 * The load-balancing lab shared by the integration test and the benchmark: a bridge, a master namespace
 * running the real `corral master` (which runs HAProxy as its child there), three backend hosts running
 * test/helpers/lb-backend, and a client namespace. The API and console are reached from the test through
 * a loopback port relayed into the master namespace (master/lab/forward.ts), so no host route changes.
 * The backends enlist over HTTP from their own namespaces (so their node `ip` is their real address)
 * and are moved to `deployed` with role `app` through the real API.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installPath } from '../../master/util/paths.js';
import { basic, type MasterProcess } from './master-process.js';
import { apiOk } from './api.js';
import { startRelayedMaster, TestNet, waitFor, type Host } from './netns.js';

export const PASSWORD = 'lb-test-password';
export const AUTH = basic('admin', PASSWORD);
const BACKEND = installPath('dist', 'test', 'helpers', 'lb-backend.js');
export const CLIENT = installPath('dist', 'test', 'helpers', 'lb-client.js');

export interface LbBackend {
  name: string;
  host: Host;
  mac: string;
  process: ChildProcess | undefined;
}

export class LbLab {
  readonly net: TestNet;
  readonly dir: string;
  master!: MasterProcess;
  masterHost!: Host;
  client!: Host;
  backends: LbBackend[] = [];
  /** Loopback URL of the master's HTTP server (API and console). */
  url = '';
  private relay: Server | undefined;

  constructor() {
    this.net = new TestNet('lb');
    this.dir = mkdtempSync(join(tmpdir(), 'corral-lb-'));
  }

  /** `config`: more sections of the master's config file (the DNS-SD test turns dns and dhcp on). */
  static async start(
    options: { pollMs?: number; backends?: number; config?: Record<string, unknown> } = {},
  ): Promise<LbLab> {
    const lab = new LbLab();
    try {
      await lab.build(options.pollMs ?? 250, options.backends ?? 3, options.config ?? {});
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  private async build(pollMs: number, count: number, config: Record<string, unknown>): Promise<void> {
    this.masterHost = this.net.addHost('m', '10.88.0.1/24');
    this.client = this.net.addHost('c', '10.88.0.100/24');
    for (let i = 1; i <= count; i++) {
      const mac = `52:54:00:88:00:${i.toString(16).padStart(2, '0')}`;
      this.backends.push({
        name: `b${i}`,
        host: this.net.addHost(`b${i}`, `10.88.0.${10 + i}/24`),
        mac,
        process: undefined,
      });
    }
    for (const b of this.backends) await this.startBackend(b);

    const cfg = join(this.dir, 'corral.json');
    // Plain HTTP console: the test's Browser speaks HTTP through the loopback relay.
    // Basic auth over the relay arrives from the master's own address, not loopback: opted in (test lab).
    writeFileSync(
      cfg,
      JSON.stringify({ lb: { pollMs }, console: { https: false, allowInsecureBasicAuth: true }, ...config }),
    );
    const m = await startRelayedMaster({
      net: this.net,
      ns: this.masterHost.ns,
      address: '10.88.0.1',
      dir: this.dir,
      dataDir: join(this.dir, 'data'),
      configPath: cfg,
      password: PASSWORD,
    });
    this.master = m.master;
    this.relay = m.relay;
    this.url = m.url;

    for (const b of this.backends) {
      // Enlist from the backend's own namespace: the master records the source address as the node's ip.
      this.net.nsExec(b.host.ns, [
        'curl',
        '-sf',
        '-m',
        '5',
        '-H',
        'content-type: application/json',
        '-d',
        JSON.stringify({ mac: b.mac, inventory: { memoryBytes: 1 << 30, cpu: { model: null, count: 1 } } }),
        'http://10.88.0.1:8088/api/v1/enlist',
      ]);
      await this.api('PATCH', `/nodes/${b.mac}`, { name: b.name, role: 'app' });
      await this.api('POST', `/nodes/${b.mac}/transition`, { to: 'deploying', reason: 'lb test' });
      await this.api('POST', `/nodes/${b.mac}/transition`, { to: 'deployed', reason: 'lb test' });
    }
  }

  async startBackend(b: LbBackend): Promise<void> {
    const child = this.net.spawnIn(b.host.ns, ['node', BACKEND, b.host.address, '8000', b.name]);
    b.process = child;
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(`backend ${b.name} listening`, () => out.includes('listening'), 10_000, 50);
  }

  async stopBackend(b: LbBackend): Promise<void> {
    const child = b.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    // `ip netns exec` is the direct parent: kill the node process inside by its namespace pid list.
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    for (const pid of this.net
      .nsExec(b.host.ns, ['ip', 'netns', 'pids', b.host.ns])
      .split('\n')
      .filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
  }

  async api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    return apiOk<T>({ url: this.url, password: PASSWORD }, method, path, body, { timeoutMs: 30_000 });
  }

  async destroy(): Promise<void> {
    await this.master?.stop('SIGTERM', 10_000).catch(() => this.master?.stop('SIGKILL'));
    this.relay?.close();
    await this.net.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
