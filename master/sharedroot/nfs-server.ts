/**
 * Supervises nfs-ganesha for the shared roots. ganesha has no check mode (no `-t`) and, without D-Bus,
 * no live export reload, so the check of the shared install step (master/daemons/config-install.ts) is
 * a trial start of the daemon on the temp file:
 *
 *   render → CONF.next → stop the running daemon → start with CONF.next → wait for its log to say
 *   "NFS SERVER INITIALIZED" with no config error → CONF.prev keeps the old → rename CONF.next over CONF
 *
 * If the new config fails (ganesha exits, or logs a CRIT/FATAL config error, or never initialises), the
 * previous config is started again and the error is reported as NFS_CONFIG_INVALID: a bad config never
 * replaces a working one. A daemon that dies on its own is restarted by the shared supervisor with
 * backoff (1 s doubling to 30 s).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { installByTrialStart } from '../daemons/config-install.js';
import { Supervisor } from '../daemons/supervisor.js';
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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class NfsServer {
  readonly configPath: string;
  readonly logPath: string;
  private readonly pidPath: string;
  private readonly daemon: Supervisor;
  /** The file the next start reads: CONF, or CONF.next during a trial start. */
  private conf: string;
  private lastError: string | null = null;
  private restartsAtApply = 0;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: NfsServerOptions) {
    this.configPath = join(opts.dir, 'ganesha.conf');
    this.logPath = join(opts.dir, 'ganesha.log');
    this.pidPath = join(opts.dir, 'ganesha.pid');
    this.conf = this.configPath;
    this.daemon = new Supervisor({
      name: 'nfs-ganesha',
      bin: opts.bin,
      args: () => ['-F', '-f', this.conf, '-L', this.logPath, '-p', this.pidPath, '-N', 'NIV_EVENT'],
      logger: opts.logger,
      backoff: { initialMs: 1000, maxMs: 30_000 },
      // ready reads this log: each start gets a fresh one, so an old READY line cannot pass a new start.
      prepare: () => writeFile(this.logPath, ''),
      ready: ({ child, output }) => this.initialised(child, output),
      readyTimeoutMs: opts.startTimeoutMs,
      codes: { missing: 'NFS_CONFIG_INVALID', failed: 'NFS_CONFIG_INVALID' },
    });
  }

  status(): NfsServerStatus {
    const d = this.daemon.status();
    return {
      running: d.running,
      pid: d.pid,
      restarts: d.restarts,
      // A death the supervisor recovered from stays visible until the next good apply, as before.
      lastError:
        this.lastError ??
        d.lastError ??
        (d.restarts > this.restartsAtApply ? `nfs-ganesha exited (${d.lastExit})` : null),
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
    // The check is a start of ganesha on the staged file; on failure the previous config runs again.
    await installByTrialStart(
      { path: this.configPath, text, mode: 0o644 },
      {
        daemon: this.daemon,
        use: (path) => (this.conf = path),
        rejected: (err, hadPrevious) => {
          this.lastError = err.message;
          if (hadPrevious)
            this.opts.logger.error(
              { err: this.lastError },
              'new NFS config rejected; restarting the previous one',
            );
          return new CorralError(
            'NFS_CONFIG_INVALID',
            `nfs-ganesha rejected the rendered config: ${err.message}`,
          );
        },
        previousFailed: (e) => {
          this.lastError = `${this.lastError}; the previous config failed too: ${e.message}`;
        },
      },
    );
    this.lastError = null;
    this.restartsAtApply = this.daemon.status().restarts;
  }

  /** Resolves when ganesha's log says it initialised; rejects with the log's config error lines. */
  private async initialised(child: ChildProcess, output: () => string): Promise<void> {
    for (;;) {
      const exit = child.exitCode ?? child.signalCode;
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
      if (log.includes(READY)) return;
      if (exit !== null) {
        const tail = log.trim().split('\n').slice(-3).join(' | ');
        throw new Error(`${this.opts.bin} exited (${exit}): ${tail || output().trim()}`);
      }
      await sleep(200);
    }
  }

  async close(): Promise<void> {
    await this.chain.catch(() => undefined);
    await this.daemon.stop();
    await rm(this.pidPath, { force: true });
  }
}
