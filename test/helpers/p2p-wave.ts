/**
 * A deploy wave of installer clients fetching one image, each in its own network namespace on a
 * tc-shaped link, for test/integration/p2p-image.test.ts and test/bench/p2p-image-bench.ts. The clients
 * run the installer's own functions (node-images/agent/corral-install sourced with CORRAL_INSTALL_LIB=1:
 * p2p_fetch, p2p_linger, p2p_stop, so the same aria2c command line) under busybox sh, or busybox wget for
 * plain HTTP. The master's side is p2p-seed-server.ts (web seed, torrent, wave count) and opentracker
 * under Corral's supervisor (master/images/p2p-tracker.ts), both in the master's namespace.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Tracker } from '../../master/images/p2p-tracker.js';
import { silentLogger } from '../../master/util/logger.js';
import { TestNet, waitFor, type Host } from './netns.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const INSTALL = join(HERE, '..', '..', '..', 'node-images', 'agent', 'corral-install');
const SEED_SERVER = join(HERE, 'p2p-seed-server.js');
const HTTP_PORT = 8000;
const TRACKER_PORT = 6969;

export interface P2pLabOptions {
  clients: number;
  imageBytes: number;
  /** Rates of the master's link and of each client's link (both directions), Mbit/s. */
  masterMbit: number;
  clientMbit: number;
  dir: string;
}

export interface ClientResult {
  ok: boolean;
  /** Seconds from the wave's start until this client had every byte. */
  seconds: number;
  sha256: string;
  /** Bytes aria2c uploaded to other clients (0 for HTTP). */
  uploaded: number;
  /** How the client got the image: p2p, or http (asked for, or p2p's fallback). */
  method: string;
  log: string;
}

export interface WaveResult {
  /** Seconds until the last client had every byte. */
  seconds: number;
  clients: ClientResult[];
  /** Bytes the master's interface sent during the wave. */
  masterTxBytes: number;
  /** CPU seconds of the wave's own processes: the clients (busybox sh, aria2c, wget) and the seed server. */
  cpuSeconds: number;
  /** Share of the machine's CPU time (all cores, every process) that was busy during the wave, 0-1. */
  machineBusy: number;
  /** The 1-minute load average when the wave ended. */
  load: number;
}

export interface WaveOptions {
  n: number;
  method: 'p2p' | 'http';
  /** The torrent URL the clients are given (default: the seed server's). */
  torrentUrl?: string;
  seedSeconds?: number;
  stallSeconds?: number;
  /**
   * The first `webSeeds` clients are the wave's web seeders (plan.env P2P_WEB_SEED=1, as the master's
   * webSeeder() names the first deployments); the others get P2P_WEB_SEED=0. Unset: every client uses the
   * web seed (an installer whose plan has no P2P_WEB_SEED).
   */
  webSeeds?: number;
  /** P2P_WEB_SEED_AFTER: seconds without bytes before a client that is no web seeder adds it. */
  webSeedAfter?: number;
  timeoutMs: number;
}

/** tc token bucket on an interface's egress (RFC 2697-like shaping): `rate` Mbit/s. */
function shape(net: TestNet, ns: string, ifname: string, mbit: number): void {
  net.nsExec(ns, [
    'tc',
    'qdisc',
    'add',
    'dev',
    ifname,
    'root',
    'tbf',
    'rate',
    `${mbit}mbit`,
    'burst',
    '64kb',
    'latency',
    '50ms',
  ]);
}

function uptime(): Promise<number> {
  return readFile('/proc/uptime', 'utf8').then((t) => Number(t.split(' ')[0]));
}

const TICK = 100; // USER_HZ: the unit of /proc's CPU times on Linux

/** The machine's CPU time, busy and total, in ticks (/proc/stat's first line: user nice system idle iowait ...). */
async function machineTicks(): Promise<{ busy: number; total: number }> {
  const f = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total };
}

/** CPU seconds of a process (utime + stime), plus those of its waited-for children (cutime + cstime). */
async function processCpu(pid: number | string, children: boolean): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14 ... cstime 17.
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const own = (f[11] ?? 0) + (f[12] ?? 0);
  return (children ? own + (f[13] ?? 0) + (f[14] ?? 0) : own) / TICK;
}

export class P2pLab {
  readonly net: TestNet;
  readonly master: Host;
  readonly clients: Host[] = [];
  sha256 = '';
  infoHash = '';
  size = 0;
  private tracker: Tracker | undefined;
  private serverPid: number | undefined;

  private constructor(readonly opts: P2pLabOptions) {
    this.net = new TestNet('p2p');
    this.master = this.net.addHost('p2pm', '10.91.0.1/16');
  }

  /** Builds the namespaces, the links, the image and the master's side. Call close() in finally. */
  static async start(opts: P2pLabOptions): Promise<P2pLab> {
    const lab = new P2pLab(opts);
    try {
      await lab.setUp();
      return lab;
    } catch (err) {
      await lab.close();
      throw err;
    }
  }

  private async setUp(): Promise<void> {
    const { opts, net } = this;
    shape(net, this.master.ns, this.master.ifname, opts.masterMbit);
    for (let i = 0; i < opts.clients; i++) {
      const host = net.addHost(`p2pc${i}`, `10.91.1.${i + 1}/16`);
      shape(net, host.ns, host.ifname, opts.clientMbit);
      // The bridge's port towards the client: the client's downlink.
      shape(net, net.bridgeNs, `p${i + 1}-${net.id}`, opts.clientMbit);
      this.clients.push(host);
    }
    await mkdir(join(opts.dir, 'done'), { recursive: true });
    const out = createWriteStream(join(opts.dir, 'image'));
    for (let left = opts.imageBytes; left > 0; left -= 2 ** 20)
      out.write(randomBytes(Math.min(left, 2 ** 20)));
    await new Promise<void>((resolve, reject) =>
      out.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    await writeFile(join(opts.dir, 'wave-size'), '0');
    const server = net.spawnIn(this.master.ns, [
      process.execPath,
      SEED_SERVER,
      opts.dir,
      this.master.address,
      String(HTTP_PORT),
      String(TRACKER_PORT),
    ]);
    this.serverPid = server.pid;
    let text = '';
    server.stdout?.on('data', (c: Buffer) => (text += c.toString()));
    server.stderr?.on('data', (c: Buffer) => (text += c.toString()));
    const info = await waitFor(
      'the seed server',
      () => {
        if (server.exitCode !== null) throw new Error(`seed server exited: ${text}`);
        const line = text.split('\n').find((l) => l.startsWith('{'));
        return line ? (JSON.parse(line) as { sha256: string; size: number; infoHash: string }) : undefined;
      },
      60_000,
    );
    this.sha256 = info.sha256;
    this.size = info.size;
    this.infoHash = info.infoHash;
  }

  get imageUrl(): string {
    return `http://${this.master.address}:${HTTP_PORT}/boot/images/${this.sha256}`;
  }

  get torrentUrl(): string {
    return `http://${this.master.address}:${HTTP_PORT}/boot/torrents/${this.sha256}`;
  }

  /** opentracker in the master's namespace, under Corral's supervisor. */
  async startTracker(): Promise<void> {
    this.tracker = new Tracker({
      settings: { bind: this.master.address, port: TRACKER_PORT, dir: join(this.opts.dir, 'tracker') },
      bin: 'ip',
      wrap: ['netns', 'exec', this.master.ns, 'opentracker'],
      logger: silentLogger(),
    });
    // Debian's opentracker tracks only what its access list names (Tracker.allow).
    await this.tracker.allow([this.infoHash]);
    await this.tracker.start();
    // No readiness probe across namespaces: wait until it listens inside the master's namespace.
    await waitFor(
      'opentracker listening',
      () => this.net.nsExec(this.master.ns, ['ss', '-Hltn', `sport = :${TRACKER_PORT}`]).includes('LISTEN'),
      10_000,
    );
  }

  async stopTracker(): Promise<void> {
    await this.tracker?.stop();
    this.tracker = undefined;
  }

  private masterTx(): number {
    return Number(
      this.net.nsExec(this.master.ns, ['cat', `/sys/class/net/${this.master.ifname}/statistics/tx_bytes`]),
    );
  }

  /** One wave: the first `n` clients fetch the image at once. */
  async wave(o: WaveOptions): Promise<WaveResult> {
    const { dir } = this.opts;
    await rm(join(dir, 'done'), { recursive: true, force: true });
    await mkdir(join(dir, 'done'));
    await writeFile(join(dir, 'wave-size'), String(o.n));
    const tx0 = this.masterTx();
    const cpu = async (): Promise<number> =>
      (await processCpu('self', true)) + (this.serverPid ? await processCpu(this.serverPid, false) : 0);
    const [cpu0, m0] = [await cpu(), await machineTicks()];
    const t0 = await uptime();
    const runs = this.clients.slice(0, o.n).map((c, i) => this.client(c, i, o));
    const results = await Promise.all(runs);
    const [cpu1, m1] = [await cpu(), await machineTicks()];
    const clients = results.map((r) => ({ ...r, seconds: r.seconds - t0 }));
    for (let i = 0; i < o.n; i++) await rm(join(dir, `c${i}`), { recursive: true, force: true });
    return {
      seconds: Math.max(...clients.map((c) => c.seconds)),
      clients,
      masterTxBytes: this.masterTx() - tx0,
      cpuSeconds: cpu1 - cpu0,
      machineBusy: (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total),
      load: Number((await readFile('/proc/loadavg', 'utf8')).split(' ')[0]),
    };
  }

  private client(host: Host, i: number, o: WaveOptions): Promise<ClientResult> {
    const work = join(this.opts.dir, `c${i}`);
    const mac = `52:54:00:91:01:${i.toString(16).padStart(2, '0')}`;
    const fetch =
      o.method === 'p2p'
        ? // As main() does: p2p_try, and plain HTTP when it leaves no file.
          'p2p_try; F=${P2P_FILE:-$W/img}; [ -n "$P2P_FILE" ] && echo method p2p || echo method http\n' +
          '[ -n "$P2P_FILE" ] || wget -q -O "$F" "$IMAGE_URL" || { echo status fail; exit 0; }'
        : 'F=$W/img; echo method http; wget -q -O "$F" "$IMAGE_URL" || { echo status fail; exit 0; }';
    const script = [
      `. ${INSTALL}`,
      fetch,
      `echo "fetched $(cut -d' ' -f1 /proc/uptime)"`,
      `echo "sha $(sha256sum "$F" | cut -d' ' -f1)"`,
      `: >"${this.opts.dir}/done/${mac}"`,
      // p2p_finish's steps, with the uploaded bytes printed for the wave's result.
      '[ -z "$P2P_PID" ] || { p2p_linger; echo "uploaded $(p2p_stop)"; }',
      'echo status ok',
    ].join('\n');
    const env = {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      CORRAL_INSTALL_LIB: '1',
      // A raw image: p2p_dir puts the file in memory (CORRAL_WORK), as for a raw image on a node.
      RAW: '1',
      NEED_BYTES: '0',
      CORRAL_WORK: work,
      CORRAL_TARGET: join(work, 'target'),
      CORRAL_TOOLS: '/usr/bin',
      CORRAL_SERVER: `http://${this.master.address}:${HTTP_PORT}`,
      CORRAL_MAC: mac,
      CORRAL_CRED_FILE: join(work, 'credential'),
      CORRAL_STALL_SECONDS: String(o.stallSeconds ?? 30),
      CORRAL_P2P_POLL_SECONDS: '1',
      IMAGE_URL: this.imageUrl,
      IMAGE_SHA256: this.sha256,
      IMAGE_SIZE: String(this.size),
      P2P_TORRENT_URL: o.torrentUrl ?? this.torrentUrl,
      P2P_SEED_SECONDS: String(o.seedSeconds ?? 60),
      ...(o.webSeeds === undefined ? {} : { P2P_WEB_SEED: i < o.webSeeds ? '1' : '0' }),
      ...(o.webSeedAfter === undefined ? {} : { P2P_WEB_SEED_AFTER: String(o.webSeedAfter) }),
    };
    return new Promise((resolve) => {
      const child = spawn('ip', ['netns', 'exec', host.ns, 'busybox', 'sh', '-c', script], {
        env,
        stdio: 'pipe',
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
      child.on('close', () => {
        clearTimeout(timer);
        void readFile(join(work, 'install.log'), 'utf8')
          .catch(() => '')
          .then((log) => {
            const field = (k: string): string => new RegExp(`^${k} (\\S+)$`, 'm').exec(out)?.[1] ?? '';
            resolve({
              ok: field('status') === 'ok',
              seconds: Number(field('fetched') || NaN),
              sha256: field('sha'),
              uploaded: Number(field('uploaded') || 0),
              method: field('method'),
              log: `${out}\n${log}`,
            });
          });
      });
    });
  }

  async close(): Promise<void> {
    await this.stopTracker().catch(() => undefined);
    await this.net.destroy();
  }
}
