/**
 * Supervises nfs-ganesha for the shared roots. ganesha has no check mode (no `-t`) and, without D-Bus,
 * no live export reload, so a config is applied by starting the daemon with it:
 *
 *   render → CONF.next → stop the running daemon → start with CONF.next → wait for its log to say
 *   "NFS SERVER INITIALIZED" with no config error → rename CONF.next over CONF (CONF.prev keeps the old)
 *
 * If the new config fails (ganesha exits, or logs a CRIT/FATAL config error, or never initialises), the
 * previous config is started again and the error is reported as NFS_CONFIG_INVALID: a bad config never
 * replaces a working one. A daemon that dies on its own is restarted with backoff (1 s doubling to 30 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

export interface NfsServerOptions {
  /** Where CONF, its .prev/.next, the pid file and the log go. */
  dir: string;
  bin: string;
  logger: Logger;
  startTimeoutMs: number;
}

export interface NfsServerStatus {
  running: boolean;
  pid: number | null;
  restarts: number;
  lastError: string | null;
  configPath: string;
}

const READY = 'NFS SERVER INITIALIZED';
/**
 * Lines ganesha writes about problems in the config file (config_errs_to_log names "Config File (path:line)").
 * ganesha itself only warns about some (an unknown parameter) and starts without that part; Corral
 * is stricter and rejects any of them, so a typo never silently drops an export or an option.
 */
const CONFIG_ERROR =
  /Config File \(|:CONFIG :(CRIT|FATAL|MAJ) :|:FATAL :|Error while parsing|errors found block/;

export class NfsServer {
  readonly configPath: string;
  readonly logPath: string;
  private readonly pidPath: string;
  private child: ChildProcess | undefined;
  private stopping = false;
  private restarts = 0;
  private backoffMs = 1000;
  private restartTimer: NodeJS.Timeout | undefined;
  private lastError: string | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: NfsServerOptions) {
    this.configPath = join(opts.dir, 'ganesha.conf');
    this.logPath = join(opts.dir, 'ganesha.log');
    this.pidPath = join(opts.dir, 'ganesha.pid');
  }

  status(): NfsServerStatus {
    return {
      running: this.child !== undefined && this.child.exitCode === null,
      pid: this.child?.pid ?? null,
      restarts: this.restarts,
      lastError: this.lastError,
      configPath: this.configPath,
    };
  }

  /** The config the running daemon was started with ('' when none). */
  async currentConfig(): Promise<string> {
    return readFile(this.configPath, 'utf8').catch(() => '');
  }

  /** Applies `text` (serialised with other applies); resolves once the daemon runs it. */
  apply(text: string): Promise<void> {
    const run = this.chain.then(() => this.applyNow(text));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async applyNow(text: string): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true });
    const next = `${this.configPath}.next`;
    await writeFile(next, text, { mode: 0o644 });
    const hadPrevious = existsSync(this.configPath);
    await this.stopChild();
    try {
      await this.startWith(next);
    } catch (err) {
      this.lastError = (err as Error).message;
      await this.stopChild();
      if (hadPrevious) {
        this.opts.logger.error(
          { err: this.lastError },
          'new NFS config rejected; restarting the previous one',
        );
        await this.startWith(this.configPath).catch((e: Error) => {
          this.lastError = `${this.lastError}; the previous config failed too: ${e.message}`;
          this.scheduleRestart();
        });
      }
      throw new CorralError(
        'NFS_CONFIG_INVALID',
        `nfs-ganesha rejected the rendered config: ${(err as Error).message}`,
      );
    }
    if (hadPrevious) await rename(this.configPath, `${this.configPath}.prev`).catch(() => undefined);
    await rename(next, this.configPath);
    // The daemon read CONF.next; restarts must use CONF (same bytes): restart with the final path later.
    this.lastError = null;
    this.backoffMs = 1000;
  }

  /** Starts ganesha with `conf` and waits for it to initialise; rejects with the log's error lines. */
  private async startWith(conf: string): Promise<void> {
    await writeFile(this.logPath, '');
    const child = spawn(
      this.opts.bin,
      ['-F', '-f', conf, '-L', this.logPath, '-p', this.pidPath, '-N', 'NIV_EVENT'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    this.child = child;
    const deadline = Date.now() + this.opts.startTimeoutMs;
    for (;;) {
      const log = await readFile(this.logPath, 'utf8').catch(() => '');
      const errors = log.split('\n').filter((l) => CONFIG_ERROR.test(l));
      if (errors.length > 0) {
        throw new Error(
          errors
            .slice(0, 5)
            .map((l) => l.replace(/^.*?\] /, ''))
            .join(' | '),
        );
      }
      if (log.includes(READY)) break;
      const done = await Promise.race([
        exited.then((code) => `exited (${code})`),
        spawnError.then((e) => `could not start: ${e.message}`),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 200)),
      ]);
      if (done !== undefined) {
        const tail = log.trim().split('\n').slice(-3).join(' | ');
        throw new Error(`${this.opts.bin} ${done}: ${tail || stderr.trim()}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`${this.opts.bin} did not initialise within ${this.opts.startTimeoutMs} ms`);
      }
    }
    this.opts.logger.info({ pid: child.pid, conf }, 'NFS server (nfs-ganesha) running');
    child.once('exit', (code, signal) => {
      if (this.child !== child || this.stopping) return;
      this.child = undefined;
      this.lastError = `nfs-ganesha exited (${signal ?? code})`;
      this.opts.logger.error({ code, signal }, 'NFS server exited; restarting');
      this.scheduleRestart();
    });
  }

  private scheduleRestart(): void {
    if (this.stopping || this.restartTimer) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.restarts++;
      this.chain = this.chain
        .then(() => this.startWith(this.configPath))
        .catch((err: Error) => {
          this.lastError = err.message;
          this.opts.logger.error({ err: err.message }, 'NFS server restart failed');
          void this.stopChild().then(() => this.scheduleRestart());
        });
    }, delay);
    this.restartTimer.unref();
  }

  private async stopChild(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const killed = await Promise.race([
      gone.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
    ]);
    if (!killed) {
      child.kill('SIGKILL');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 2000))]);
    }
  }

  async close(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.chain.catch(() => undefined);
    await this.stopChild();
    await rm(this.pidPath, { force: true });
  }
}
