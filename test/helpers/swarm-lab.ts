/**
 * The apps lab (issue 21): engine "nodes" as network namespaces on a bridge, each with its own OpenSSH
 * server and its own dockerd (entered with nsenter, not `ip netns exec`, which hides the cgroup mounts
 * dockerd needs), a client namespace, and the real `corral master` in a master namespace with the nodes
 * seeded as deployed with the engine tag. Every dockerd gets a per-run data root, a short exec root (unix
 * socket length) and its own containerd namespaces; the busybox image is imported on each node (no
 * registry, no internet). destroy() stops what was started, by PID, and removes the directories.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  copyFileSync,
  writeFileSync,
} from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ensureMasterKey } from '../../master/deploy/ssh.js';
import { openRepos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';
import { apiOk } from './api.js';
import { basic, type MasterProcess } from './master-process.js';
import { runId, startRelayedMaster, TestNet, waitFor, type Host } from './netns.js';
import { prepareSshd, writeAuthorizedKeys } from './sshd.js';
import { nsenterDockerdArgs } from './registry-dockerd.js';

export const SWARM_PASSWORD = 'apps-test-password';
export const SWARM_AUTH = basic('admin', SWARM_PASSWORD);
export const IMAGE = 'corral-test/busybox:1';
const BUSYBOX_APPLETS = [
  'sh',
  'httpd',
  'wget',
  'mkdir',
  'echo',
  'cat',
  'sleep',
  'kill',
  'hostname',
  'false',
  'true',
];

/**
 * A root tree of the static busybox and the applets the apps tests' containers use (a few MB): imported
 * on each namespace node here, pushed as the base image to the master's registry by the apps-lab e2e.
 */
export function busyboxTree(root: string): string {
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'tmp'), { recursive: true });
  copyFileSync('/usr/bin/busybox', join(root, 'bin', 'busybox'));
  for (const a of BUSYBOX_APPLETS) symlinkSync('busybox', join(root, 'bin', a));
  return root;
}

/**
 * The apps tests' app `web`: busybox httpd on port 8000 serving `$V` (the version's text), a health
 * check that fetches it, and fast stops and updates. `pace` sets the health check interval and timeout
 * and the update's monitor window in seconds (slower on emulated VMs).
 */
export function webApp(lbPort: number, pace: { healthSeconds: number; monitorSeconds: number }) {
  return {
    name: 'web',
    command: [
      'sh',
      '-c',
      'echo "start $V"; mkdir -p /w && echo "$V" > /w/index.html && exec httpd -f -p 8000 -h /w',
    ],
    instances: 3,
    ports: [{ port: 8000, lbPort }],
    env: { V: 'v1' },
    healthCheck: {
      command: ['wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8000/'],
      intervalSeconds: pace.healthSeconds,
      timeoutSeconds: pace.healthSeconds,
      retries: 2,
    },
    // httpd as PID 1 ignores SIGTERM: without this every stop waits docker's default 10 s.
    stopGraceSeconds: 1,
    restart: { condition: 'any', delaySeconds: 0 },
    update: {
      parallelism: 1,
      delaySeconds: 1,
      failureAction: 'rollback',
      monitorSeconds: pace.monitorSeconds,
    },
  };
}

/** The same app with a health check that always fails (a version the engine's health gate rolls back). */
export function failingVersion<S extends { healthCheck: object }>(spec: S): S {
  return { ...spec, env: { V: 'v2' }, healthCheck: { ...spec.healthCheck, command: ['false'] } };
}

export interface EngineNode {
  name: string;
  mac: string;
  host: Host;
  sock: string;
  execRoot: string;
  dockerd: ChildProcess | undefined;
}

export class SwarmLab {
  readonly net = new TestNet('ap');
  readonly dir = mkdtempSync(join(tmpdir(), 'corral-apps-'));
  readonly tag = runId().slice(-6);
  master!: MasterProcess;
  masterHost!: Host;
  client!: Host;
  nodes: EngineNode[] = [];
  url = '';
  private relay: Server | undefined;

  static async start(count: number, appsConfig: Record<string, unknown>): Promise<SwarmLab> {
    const lab = new SwarmLab();
    try {
      await lab.build(count, appsConfig);
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  private async build(count: number, appsConfig: Record<string, unknown>): Promise<void> {
    this.masterHost = this.net.addHost('m', '10.89.0.1/24');
    this.client = this.net.addHost('c', '10.89.0.100/24');
    const dataDir = join(this.dir, 'data');
    const key = await ensureMasterKey(dataDir);
    const authorizedKeys = writeAuthorizedKeys(this.dir, key.publicKey);
    const tree = this.busyboxTree();
    const starts: Promise<void>[] = [];
    for (let i = 1; i <= count; i++) {
      const host = this.net.addHost(`n${i}`, `10.89.0.${10 + i}/24`);
      const execRoot = `/tmp/ap${this.tag}${i}`;
      const sock = join(this.dir, `n${i}`, 'docker.sock');
      const node: EngineNode = {
        name: `eng${i}`,
        mac: `52:54:00:89:00:${(10 + i).toString(16)}`,
        host,
        sock,
        execRoot,
        dockerd: undefined,
      };
      this.nodes.push(node);
      const sshd = prepareSshd(this.net, host, {
        dir: this.dir,
        name: `n${i}`,
        authorizedKeys,
        fromNs: this.masterHost.ns,
        // The docker CLI of an SSH session talks to this node's own dockerd.
        extraConfig: [`SetEnv DOCKER_HOST=unix://${sock}`],
      });
      starts.push(
        (async () => {
          await this.startDockerd(node);
          // A busybox tree as an image, imported on each node: nothing pulled.
          const tar = spawnSync('tar', ['-C', tree, '-c', '.'], { maxBuffer: 64 << 20 });
          this.docker(node, ['import', '-', IMAGE], tar.stdout);
          await sshd();
        })(),
      );
    }
    await Promise.all(starts);
    const repos = openRepos({ path: join(dataDir, 'corral.db'), logger: silentLogger() });
    repos.store.write((journal) => {
      this.nodes.forEach((n, i) => {
        repos.nodes.insertIn(journal, {
          mac: n.mac,
          name: n.name,
          seqNo: i + 1,
          state: 'deployed',
          ip: n.host.address,
        });
        repos.nodes.patchIn(journal, n.mac, { role: 'web', tags: ['engine'] });
      });
    });
    repos.store.close();
    const cfg = join(this.dir, 'corral.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        lb: { pollMs: 250 },
        console: { https: false, allowInsecureBasicAuth: true },
        monitor: { enabled: false },
        remote: { exec: { connectTimeoutSeconds: 3 } },
        apps: { enabled: true, ...appsConfig },
      }),
    );
    const m = await startRelayedMaster({
      net: this.net,
      ns: this.masterHost.ns,
      address: '10.89.0.1',
      dir: this.dir,
      dataDir,
      configPath: cfg,
      password: SWARM_PASSWORD,
    });
    this.master = m.master;
    this.relay = m.relay;
    this.url = m.url;
  }

  private busyboxTree(): string {
    return busyboxTree(join(this.dir, 'image'));
  }

  async startDockerd(n: EngineNode): Promise<void> {
    const d = join(this.dir, n.host.ns);
    mkdirSync(d, { recursive: true });
    mkdirSync(dirname(n.sock), { recursive: true });
    const ns = `ap${this.tag}${n.name}`;
    const child = spawn(
      'nsenter',
      nsenterDockerdArgs({
        ns: n.host.ns,
        dataRoot: join(d, 'data'),
        execRoot: n.execRoot,
        pidFile: join(d, 'dockerd.pid'),
        sock: n.sock,
        containerdNamespace: ns,
      }),
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    child.stderr?.on('data', (b: Buffer) => (log = (log + b.toString()).slice(-4000)));
    n.dockerd = child;
    await waitFor(
      `dockerd of ${n.name}`,
      () => {
        if (child.exitCode !== null) throw new Error(`dockerd of ${n.name} exited: ${log}`);
        return spawnSync('docker', ['-H', `unix://${n.sock}`, 'info', '--format', '{{.ID}}']).status === 0;
      },
      30_000,
      200,
    );
  }

  /** Stops a node's dockerd as a shutdown does (SIGTERM: it stops its containers), bounded. */
  async stopDockerd(n: EngineNode): Promise<void> {
    const child = n.dockerd;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }

  docker(n: EngineNode, args: string[], input?: Buffer): string {
    const r = spawnSync('docker', ['-H', `unix://${n.sock}`, ...args], {
      input,
      maxBuffer: 16 << 20,
      timeout: 60_000,
    });
    if (r.status !== 0)
      throw new Error(`docker ${args.join(' ')} on ${n.name}: ${r.stderr?.toString() ?? ''}`);
    return r.stdout.toString();
  }

  /** dockerd + its containerd RSS in KiB (ps), by the PIDs of this node's processes. */
  engineRssKiB(n: EngineNode): number {
    const pids = this.pidsOf(n);
    if (pids.length === 0) return 0;
    const out = spawnSync('ps', ['-o', 'rss=,comm=', '-p', pids.join(',')]).stdout.toString();
    return out
      .split('\n')
      .filter((l) => /dockerd|containerd$/.test(l.trim()))
      .reduce((s, l) => s + Number(l.trim().split(/\s+/)[0]), 0);
  }

  /** This node's dockerd and everything it started (containerd, shims): found by its unique exec root. */
  private pidsOf(n: EngineNode): number[] {
    const r = spawnSync('pgrep', ['-f', n.execRoot]);
    const pids = r.stdout.toString().split('\n').filter(Boolean).map(Number);
    if (n.dockerd?.pid && n.dockerd.exitCode === null) pids.push(n.dockerd.pid);
    return [...new Set(pids)];
  }

  /** From the client namespace through HAProxy on the master: the body, or null. */
  fetch(port: number): string | null {
    const r = spawnSync('ip', [
      'netns',
      'exec',
      this.client.ns,
      'curl',
      '-sf',
      '-m',
      '2',
      `http://10.89.0.1:${port}/`,
    ]);
    return r.status === 0 ? r.stdout.toString() : null;
  }

  async api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    return apiOk<T>({ url: this.url, password: SWARM_PASSWORD }, method, path, body, { timeoutMs: 120_000 });
  }

  masterLog(): string {
    try {
      return readFileSync(join(this.dir, 'master.log'), 'utf8');
    } catch {
      return '';
    }
  }

  async destroy(): Promise<void> {
    await this.master?.stop('SIGTERM', 10_000).catch(() => this.master?.stop('SIGKILL'));
    this.relay?.close();
    await Promise.all(this.nodes.map((n) => this.stopDockerd(n)));
    for (const n of this.nodes) {
      for (const pid of this.pidsOf(n)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    // Container mounts (shm, vfs layers) left by a killed dockerd would stop the directory's removal.
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((p) => p.startsWith(this.dir) || this.nodes.some((n) => p.startsWith(n.execRoot)))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) spawnSync('umount', ['-l', m]);
    await this.net.destroy();
    for (const n of this.nodes) rmSync(n.execRoot, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
