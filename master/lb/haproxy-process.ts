/**
 * HAProxy as a supervised child: `haproxy -W -db -f CFG -p PID -S MASTER_SOCK` (master-worker mode in
 * the foreground). A reload is SIGUSR2 to the master, which starts a new worker that takes the listening
 * sockets over from the old one (`expose-fd listeners`), so no connection is refused; the old worker
 * finishes what it has. If the master dies, it is started again with a bounded backoff.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
const MAX_BACKOFF_MS = 30_000;

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
  private child: ChildProcess | undefined;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private workerPidCache: number | null = null;
  private restarts = 0;
  private reloads = 0;
  private lastExit: string | null = null;
  private lastReloadAt: string | null = null;

  constructor(private readonly opts: HaproxyProcessOptions) {
    mkdirSync(opts.dir, { recursive: true, mode: 0o750 });
    this.paths = haproxyPaths(opts.dir);
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  status(): HaproxyStatus {
    return {
      running: this.running,
      masterPid: this.running ? (this.child?.pid ?? null) : null,
      workerPid: this.running ? this.workerPidCache : null,
      restarts: this.restarts,
      reloads: this.reloads,
      lastExit: this.lastExit,
      lastReloadAt: this.lastReloadAt,
    };
  }

  /** Starts HAProxy on the installed config and waits until its runtime API answers. */
  async start(): Promise<void> {
    this.stopping = false;
    if (this.running) return;
    const log = this.opts.logger;
    const child = spawn(
      this.opts.bin,
      [
        '-W',
        '-db',
        '-f',
        this.paths.config,
        '-p',
        this.paths.pidFile,
        '-S',
        `${this.paths.masterSocket},mode,600`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    let tail = '';
    const onOutput = (d: Buffer): void => {
      for (const line of d.toString().split('\n').filter(Boolean)) {
        tail = (tail + line + '\n').slice(-2000);
        log[/ALERT|EMERG/.test(line) ? 'warn' : 'debug']({ haproxy: line }, 'haproxy');
      }
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    const spawnFailed = new Promise<never>((_, reject) => {
      child.once('error', (err) =>
        reject(new CorralError('LB_HAPROXY_MISSING', `cannot run ${this.opts.bin}: ${err.message}`)),
      );
    });
    spawnFailed.catch(() => undefined);
    child.once('exit', (code, signal) => {
      this.lastExit = signal ?? `exit ${code}`;
      this.workerPidCache = null;
      if (this.stopping || this.child !== child) return;
      log.warn({ exit: this.lastExit, output: tail }, 'haproxy died; starting it again');
      this.scheduleRestart();
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (!this.running) {
        await Promise.race([spawnFailed, sleep(0)]);
        throw new CorralError(
          'LB_HAPROXY_FAILED',
          `haproxy exited at start (${this.lastExit}): ${tail.trim().split('\n').slice(-3).join(' | ')}`,
        );
      }
      const pid = await this.workerPid().catch(() => null);
      if (pid) {
        log.info({ masterPid: child.pid, workerPid: pid, config: this.paths.config }, 'haproxy running');
        return;
      }
      await sleep(100);
    }
    throw new CorralError(
      'LB_HAPROXY_FAILED',
      `haproxy did not answer on ${this.paths.adminSocket} within ${READY_TIMEOUT_MS} ms`,
    );
  }

  private scheduleRestart(): void {
    const delay = Math.min(250 * 2 ** this.failures, MAX_BACKOFF_MS);
    this.failures++;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      // Nothing may reject out of this timer: an unhandled rejection ends the whole master process.
      this.start()
        .then(
          () => {
            this.restarts++;
            this.failures = 0;
            this.opts.onRestart?.({ restarts: this.restarts, exit: this.lastExit ?? 'unknown' });
          },
          (err: unknown) => {
            this.opts.logger.warn({ err: (err as Error).message }, 'haproxy restart failed; trying again');
            if (!this.running && !this.stopping && !this.restartTimer) this.scheduleRestart();
          },
        )
        .catch((err: unknown) => this.opts.logger.error({ err }, 'haproxy restart callback failed'));
    }, delay);
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
    if (state.startsWith('1\n')) {
      const tmp = `${this.paths.serverStateFile}.tmp`;
      writeFileSync(tmp, state);
      renameSync(tmp, this.paths.serverStateFile);
    }
    this.child?.kill('SIGUSR2');
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
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || !this.running) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 5000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
