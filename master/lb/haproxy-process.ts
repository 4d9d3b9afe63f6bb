/**
 * HAProxy as a supervised child: `haproxy -W -db -f CFG -p PID -S MASTER_SOCK` (master-worker mode in
 * the foreground). A reload is SIGUSR2 to the master, which starts a new worker that takes the listening
 * sockets over from the old one (`expose-fd listeners`), so no connection is refused; the old worker
 * finishes what it has. Start, restart with backoff (250 ms doubling to 30 s) and stop are the shared
 * daemon supervisor's (master/daemons/supervisor.ts); this file holds what is HAProxy's own.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../daemons/config-install.js';
import { Supervisor, type SupervisorClock } from '../daemons/supervisor.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { HaproxyPaths } from './render.js';
import { runtimeCommand } from './runtime-api.js';

export interface HaproxyProcessOptions {
  bin: string;
  /** Run directory: config, sockets, pid and server-state files. */
  dir: string;
  logger: Logger;
  /** Called after HAProxy had to be started again because it died. */
  onRestart?: (info: { restarts: number; exit: string }) => void;
  clock?: SupervisorClock;
}

export interface HaproxyStatus {
  running: boolean;
  masterPid: number | null;
  workerPid: number | null;
  restarts: number;
  reloads: number;
  lastExit: string | null;
  lastReloadAt: string | null;
}

const READY_TIMEOUT_MS = 10_000;

export function haproxyPaths(
  dir: string,
): HaproxyPaths & { config: string; masterSocket: string; pidFile: string } {
  return {
    config: join(dir, 'haproxy.cfg'),
    adminSocket: join(dir, 'admin.sock'),
    masterSocket: join(dir, 'master.sock'),
    pidFile: join(dir, 'haproxy.pid'),
    serverStateFile: join(dir, 'server-state'),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class HaproxyProcess {
  readonly paths: ReturnType<typeof haproxyPaths>;
  private readonly daemon: Supervisor;
  private workerPidCache: number | null = null;
  private reloads = 0;
  private lastReloadAt: string | null = null;

  constructor(private readonly opts: HaproxyProcessOptions) {
    mkdirSync(opts.dir, { recursive: true, mode: 0o750 });
    this.paths = haproxyPaths(opts.dir);
    this.daemon = new Supervisor({
      name: 'haproxy',
      bin: opts.bin,
      args: () => [
        '-W',
        '-db',
        '-f',
        this.paths.config,
        '-p',
        this.paths.pidFile,
        '-S',
        `${this.paths.masterSocket},mode,600`,
      ],
      logger: opts.logger,
      backoff: { initialMs: 250, maxMs: 30_000 },
      // Ready once the worker answers on the runtime API; the supervisor bounds the wait.
      ready: async ({ child }) => {
        while (child.exitCode === null && child.signalCode === null) {
          if (await this.workerPid().catch(() => null)) return;
          await sleep(100);
        }
      },
      readyTimeoutMs: READY_TIMEOUT_MS,
      lineLevel: (line) => (/ALERT|EMERG/.test(line) ? 'warn' : 'debug'),
      codes: { missing: 'LB_HAPROXY_MISSING', failed: 'LB_HAPROXY_FAILED' },
      ...(opts.onRestart ? { onRestart: opts.onRestart } : {}),
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
  }

  get running(): boolean {
    return this.daemon.running;
  }

  status(): HaproxyStatus {
    const d = this.daemon.status();
    return {
      running: d.running,
      masterPid: d.pid,
      workerPid: d.running ? this.workerPidCache : null,
      restarts: d.recoveries,
      reloads: this.reloads,
      lastExit: d.lastExit,
      lastReloadAt: this.lastReloadAt,
    };
  }

  /** Starts HAProxy on the installed config and waits until its runtime API answers. */
  async start(): Promise<void> {
    if (this.running) return;
    this.workerPidCache = null;
    await this.daemon.start();
    this.opts.logger.info(
      { masterPid: this.daemon.pid, workerPid: this.workerPidCache, config: this.paths.config },
      'haproxy running',
    );
  }

  /** The current worker's PID from `show info` on the runtime API. */
  async workerPid(): Promise<number | null> {
    const info = await runtimeCommand(this.paths.adminSocket, 'show info', 1000);
    const m = /^Pid: (\d+)$/m.exec(info);
    this.workerPidCache = m ? Number(m[1]) : null;
    return this.workerPidCache;
  }

  /** Runtime API command on the current worker. */
  command(cmd: string, timeoutMs = 3000): Promise<string> {
    return runtimeCommand(this.paths.adminSocket, cmd, timeoutMs);
  }

  /**
   * Seamless reload: dump `show servers state` to the server-state-file (the new worker loads it, so
   * drain/maint and up/down survive), SIGUSR2 the master, and wait for a new worker to answer.
   */
  async reload(): Promise<void> {
    if (!this.running) return this.start();
    const old = await this.workerPid().catch(() => null);
    const state = await this.command('show servers state').catch(() => '');
    if (state.startsWith('1\n')) writeFileAtomic(this.paths.serverStateFile, state, 0o640);
    await this.daemon.reload({ signal: 'SIGUSR2' });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const pid = await this.workerPid().catch(() => null);
      if (pid && pid !== old) {
        this.reloads++;
        this.lastReloadAt = new Date().toISOString();
        this.opts.logger.info({ oldWorker: old, workerPid: pid }, 'haproxy reloaded');
        return;
      }
      await sleep(50);
    }
    throw new CorralError(
      'LB_RELOAD_FAILED',
      `haproxy did not start a new worker within ${READY_TIMEOUT_MS} ms of the reload`,
    );
  }

  /** Stops HAProxy (hard stop: SIGTERM to the master), bounded; SIGKILL after 5 s. */
  stop(): Promise<void> {
    this.workerPidCache = null;
    return this.daemon.stop();
  }
}
