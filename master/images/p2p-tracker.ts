/**
 * The BitTorrent tracker for peer-to-peer image downloads (issue 19): Debian's opentracker (a proven,
 * small, in-memory tracker), run as a foreground child by the shared daemon supervisor like haproxy and
 * radvd. Address and port are arguments. Debian builds it with a whitelist (WANT_ACCESSLIST_WHITE): it
 * tracks only the info-hashes in its access list, here the torrents of Corral's images (allow()), re-read
 * on SIGHUP. Peers announce to http://MASTER:PORT/announce (BEP 3) and learn each other's addresses; the
 * image bytes never pass it.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:net';
import { Supervisor, type SupervisorStatus } from '../daemons/supervisor.js';
import type { Logger } from '../util/logger.js';

export interface TrackerSettings {
  /** Address to bind (the master's address on the nodes' network). */
  bind: string;
  port: number;
  /** opentracker chroots here; its access list (ACCESS_LIST) is read from inside. */
  dir: string;
}

/** The access list's name, relative to the chroot (opentracker opens it after chrooting). */
export const ACCESS_LIST = 'whitelist';

/** opentracker's arguments: TCP (HTTP announces) and UDP (BEP 15) on the same port. */
export function trackerArgs(s: TrackerSettings): string[] {
  return ['-i', s.bind, '-p', String(s.port), '-P', String(s.port), '-d', s.dir, '-w', ACCESS_LIST];
}

/** Resolves once something accepts TCP connections on host:port; bounded by the supervisor's ready timeout. */
async function listening(host: string, port: number, stillRunning: () => boolean): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (!stillRunning()) throw new Error('opentracker exited');
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface TrackerOptions {
  settings: TrackerSettings;
  bin: string;
  logger: Logger;
  /**
   * Words before opentracker's own arguments, with `bin` then the program that runs them (the tests and
   * the benchmark: `ip netns exec NS opentracker`). The readiness probe is then skipped: the master's
   * process is not in that namespace.
   */
  wrap?: string[];
}

export class Tracker {
  private readonly daemon: Supervisor;
  private readonly allowed = new Set<string>();

  constructor(private readonly opts: TrackerOptions) {
    const { settings } = opts;
    const probeHost = settings.bind === '0.0.0.0' ? '127.0.0.1' : settings.bind;
    this.daemon = new Supervisor({
      name: 'opentracker',
      bin: opts.bin,
      args: () => [...(opts.wrap ?? []), ...trackerArgs(settings)],
      logger: opts.logger,
      backoff: { initialMs: 1000, maxMs: 30_000 },
      readyTimeoutMs: 5000,
      ...(opts.wrap
        ? {}
        : { ready: (s) => listening(probeHost, settings.port, () => s.child.exitCode === null) }),
      codes: { missing: 'P2P_TRACKER_FAILED', failed: 'P2P_TRACKER_FAILED' },
    });
  }

  /**
   * Lets the tracker track these info-hashes (hex): the access list is rewritten (temp file, rename) and,
   * when the tracker runs, re-read on SIGHUP.
   */
  async allow(infoHashes: readonly string[]): Promise<void> {
    const fresh = infoHashes.filter((h) => !this.allowed.has(h));
    if (!fresh.length) return;
    for (const h of fresh) this.allowed.add(h);
    const { dir } = this.opts.settings;
    await mkdir(dir, { recursive: true });
    const file = join(dir, ACCESS_LIST);
    await writeFile(`${file}.tmp`, [...this.allowed].map((h) => `${h}\n`).join(''));
    await rename(`${file}.tmp`, file);
    if (this.daemon.running) await this.daemon.reload({ signal: 'SIGHUP' });
  }

  /** Starts and waits until it accepts announces; throws P2P_TRACKER_FAILED. */
  async start(): Promise<void> {
    await mkdir(this.opts.settings.dir, { recursive: true });
    await this.daemon.start();
  }

  /** Starts in the background: a failed start is logged and retried with the supervisor's backoff. */
  async run(): Promise<void> {
    await mkdir(this.opts.settings.dir, { recursive: true });
    this.daemon.run();
  }

  get running(): boolean {
    return this.daemon.running;
  }

  status(): SupervisorStatus {
    return this.daemon.status();
  }

  stop(): Promise<void> {
    return this.daemon.stop();
  }
}
