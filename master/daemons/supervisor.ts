/**
 * The one supervisor for the daemons Corral runs as foreground children (haproxy, keepalived,
 * nfs-ganesha, and those to come): start and wait until the daemon says it serves, watch its exit,
 * start it again with a capped exponential backoff, reload it by signal or command, stop it with a
 * bounded wait (SIGKILL after the timeout), relay its output into structured logs, and count restarts.
 * Each daemon module keeps only what is its own: argv, how it shows it is ready, how it reloads.
 *
 * A daemon must not outlive the master, even one killed with SIGKILL (no exit handler runs then): each is
 * started through util-linux's `setpriv --pdeathsig KILL`, which asks the kernel (prctl PR_SET_PDEATHSIG)
 * to kill it when its parent, the master, dies, and then execs the daemon in the same process (same pid,
 * so signals and reloads reach it). Without this an opentracker, say, was left running after `kill -9`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CorralError, type ErrorCode } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

/** util-linux's setpriv (Debian: essential package util-linux); absent elsewhere, daemons start bare. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => executable(p));

/** Whether `bin` (a path, or a name looked up in PATH as execvp does) can be executed. */
export function executable(bin: string): boolean {
  const candidates = bin.includes('/')
    ? [bin]
    : (process.env['PATH'] ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, bin));
  return candidates.some((c) => {
    try {
      accessSync(c, fsConstants.X_OK);
      return statSync(c).isFile();
    } catch {
      return false;
    }
  });
}

/** Timers the supervisor uses; tests pass their own to step through the backoff. */
export interface SupervisorClock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

export const realClock: SupervisorClock = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending restart must not keep a finished master process alive.
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  now: () => Date.now(),
};

export interface Started {
  child: ChildProcess;
  /** The last ~2000 characters the daemon wrote to stdout and stderr. */
  output(): string;
}

export interface SupervisorOptions {
  /** Names the daemon in logs and errors. */
  name: string;
  bin: string;
  /** Arguments for each start (a function: a trial start may use another config file). */
  args: () => string[];
  logger: Logger;
  /**
   * Restart delay: initialMs, doubling per attempt up to maxMs. It starts over once a child stayed
   * up for stableMs (default 10 s), so a daemon that crashes right after each start backs off.
   */
  backoff: { initialMs: number; maxMs: number; stableMs?: number };
  /**
   * Resolves when the daemon serves (runtime API answers, log says so); rejects to fail the start.
   * Without it, a daemon counts as started once it was spawned.
   */
  ready?: (s: Started) => Promise<void>;
  /** Runs before each spawn (e.g. truncating the log file `ready` reads). */
  prepare?: () => Promise<void>;
  readyTimeoutMs?: number;
  /** Signal for stop (default SIGTERM) and the wait before SIGKILL (default 5 s). */
  stopSignal?: NodeJS.Signals;
  stopTimeoutMs?: number;
  /** Log level for one output line (default debug). */
  lineLevel?: (line: string) => 'debug' | 'info' | 'warn';
  /** Codes for a binary that cannot be run, and for a daemon that exits or never gets ready. */
  codes: { missing: ErrorCode; failed: ErrorCode };
  /** Called after the daemon died on its own and was started again (`restarts`: recoveries so far). */
  onRestart?: (info: { restarts: number; exit: string }) => void;
  clock?: SupervisorClock;
}

export interface SupervisorStatus {
  running: boolean;
  pid: number | null;
  /** Restart attempts after the daemon died on its own (counted when the restart is spawned). */
  restarts: number;
  /** Of those, the ones that reached `ready`. */
  recoveries: number;
  /** Restart attempts since a child last stayed up for stableMs (drives the backoff). */
  failures: number;
  lastExit: string | null;
  lastError: string | null;
}

export type Reload = { signal: NodeJS.Signals } | { command: { bin: string; args: string[] } };

const OUTPUT_TAIL = 2000;

export class Supervisor {
  private child: ChildProcess | undefined;
  /** The child that passed `ready`: only its death is restarted (a failed start is the caller's). */
  private serving: ChildProcess | undefined;
  private stopping = false;
  private restartTimer: unknown;
  private failures = 0;
  private restarts = 0;
  private recoveries = 0;
  private lastExit: string | null = null;
  private readyAt = 0;
  private lastError: string | null = null;
  private readonly clock: SupervisorClock;
  private readonly log: Logger;

  constructor(private readonly opts: SupervisorOptions) {
    this.clock = opts.clock ?? realClock;
    this.log = opts.logger.child({ daemon: opts.name });
  }

  get running(): boolean {
    const c = this.child;
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  status(): SupervisorStatus {
    return {
      running: this.running,
      pid: this.pid ?? null,
      restarts: this.restarts,
      recoveries: this.recoveries,
      failures: this.failures,
      lastExit: this.lastExit,
      lastError: this.lastError,
    };
  }

  /** The delay before restart attempt `failures + 1`. */
  backoffDelay(failures: number): number {
    const { initialMs, maxMs } = this.opts.backoff;
    return Math.min(initialMs * 2 ** Math.min(failures, 30), maxMs);
  }

  /**
   * Starts the daemon and waits for `ready`. On failure the child is stopped and a coded error thrown;
   * nothing is restarted (the caller decides, e.g. falls back to the previous config).
   */
  async start(): Promise<void> {
    this.stopping = false;
    if (this.running) return;
    const { bin, name } = this.opts;
    await this.opts.prepare?.();
    // stop() may have come while prepare ran: a child spawned now would outlive the master.
    if (this.stopping) throw new CorralError(this.opts.codes.failed, `${name} was stopped while starting`);
    const args = this.opts.args();
    // setpriv would report a missing daemon as its own exit 127: say "missing" before, as spawn would.
    if (SETPRIV && !executable(bin)) {
      const err = new CorralError(this.opts.codes.missing, `cannot run ${bin}: not found or not executable`);
      this.lastError = err.message;
      throw err;
    }
    const child = SETPRIV
      ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let tail = '';
    const relay = (d: Buffer): void => {
      for (const line of d.toString().split('\n')) {
        if (!line.trim()) continue;
        tail = (tail + line + '\n').slice(-OUTPUT_TAIL);
        this.log[this.opts.lineLevel?.(line) ?? 'debug']({ line }, name);
      }
    };
    child.stdout?.on('data', relay);
    child.stderr?.on('data', relay);
    const spawnFailed = new Promise<never>((_, reject) =>
      child.once('error', (err) =>
        reject(new CorralError(this.opts.codes.missing, `cannot run ${bin}: ${err.message}`)),
      ),
    );
    spawnFailed.catch(() => undefined);
    const exitedAtStart = (): CorralError =>
      new CorralError(
        this.opts.codes.failed,
        `${name} exited at start (${child.signalCode ?? `exit ${child.exitCode}`}): ${lastLines(tail)}`,
      );
    child.once('exit', (code, signal) => this.exited(child, signal ?? `exit ${code}`, tail));
    const timeoutMs = this.opts.readyTimeoutMs ?? 10_000;
    let timer: unknown;
    const timedOut = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(
        () => reject(new CorralError(this.opts.codes.failed, `${name} was not ready within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    timedOut.catch(() => undefined);
    // A `ready` hook must return or throw once the child exits; its own reason (a config error in a
    // log) is better than the bare exit status, so exit is only checked after it.
    const ready = this.opts.ready
      ? this.opts.ready({ child, output: () => tail })
      : new Promise<void>((resolve) => child.once('spawn', () => resolve()));
    try {
      await Promise.race([ready, spawnFailed, timedOut]);
      if (child.exitCode !== null || child.signalCode !== null) throw exitedAtStart();
    } catch (err) {
      this.lastError = (err as Error).message;
      await this.kill(child);
      throw err;
    } finally {
      this.clock.clearTimeout(timer);
    }
    this.serving = child;
    this.readyAt = this.clock.now();
    this.lastError = null;
    this.log.info({ pid: child.pid, args }, `${name} running`);
  }

  /** Starts without waiting: a start that fails is logged and tried again with the backoff. */
  run(): void {
    this.start().catch((err: unknown) => {
      this.log.error({ err: (err as Error).message }, `${this.opts.name} could not start; trying again`);
      if (!this.running) this.scheduleRestart();
    });
  }

  private exited(child: ChildProcess, exit: string, tail: string): void {
    this.lastExit = exit;
    if (this.stopping || this.child !== child || this.serving !== child) return;
    if (this.clock.now() - this.readyAt >= (this.opts.backoff.stableMs ?? 10_000)) this.failures = 0;
    this.log.warn({ exit, output: lastLines(tail) }, `${this.opts.name} exited; starting it again`);
    this.scheduleRestart();
  }

  /** Schedules a start after the backoff delay (a caller whose own start failed, too). */
  retryLater(): void {
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.stopping || this.restartTimer !== undefined) return;
    const delay = this.backoffDelay(this.failures);
    this.failures++;
    this.restartTimer = this.clock.setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.restarts++;
      // Nothing may reject out of this timer: an unhandled rejection ends the whole master process.
      this.start()
        .then(
          () => {
            this.recoveries++;
            this.opts.onRestart?.({ restarts: this.recoveries, exit: this.lastExit ?? 'unknown' });
          },
          (err: unknown) => {
            this.log.warn({ err: (err as Error).message }, `${this.opts.name} restart failed; trying again`);
            if (!this.running) this.scheduleRestart();
          },
        )
        .catch((err: unknown) => this.log.error({ err }, `${this.opts.name} restart callback failed`));
    }, delay);
  }

  /** Reloads by signal to the daemon, or by running a command (e.g. a control tool); no wait here. */
  async reload(how: Reload): Promise<void> {
    if ('signal' in how) {
      if (!this.running) throw new CorralError(this.opts.codes.failed, `${this.opts.name} is not running`);
      this.child?.kill(how.signal);
      this.log.info({ signal: how.signal }, `${this.opts.name} reload signalled`);
      return;
    }
    await new Promise<void>((resolve, reject) =>
      execFile(how.command.bin, how.command.args, { timeout: 10_000 }, (err, _out, stderr) =>
        err
          ? reject(
              new CorralError(this.opts.codes.failed, `${this.opts.name} reload: ${stderr || err.message}`),
            )
          : resolve(),
      ),
    );
    this.log.info({ command: how.command.bin }, `${this.opts.name} reloaded`);
  }

  /** Stops the daemon and any pending restart; SIGKILL after stopTimeoutMs. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer !== undefined) this.clock.clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    if (child) await this.kill(child);
  }

  private async kill(child: ChildProcess): Promise<void> {
    // No pid: the spawn itself failed, there is no process to stop.
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(this.opts.stopSignal ?? 'SIGTERM');
    let timer: unknown;
    const inTime = await Promise.race([
      gone.then(() => true),
      new Promise<boolean>(
        (r) => (timer = this.clock.setTimeout(() => r(false), this.opts.stopTimeoutMs ?? 5000)),
      ),
    ]);
    this.clock.clearTimeout(timer);
    if (!inTime) {
      this.log.warn({ pid: child.pid }, `${this.opts.name} did not stop in time; SIGKILL`);
      child.kill('SIGKILL');
      await gone;
    }
  }
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' | ');
}
