/**
 * The one way a generated daemon config reaches disk (STYLE.md habit 7, after CapRover's `nginx -t`):
 *
 *   render (caller) → temp file in the same directory → the daemon's own check on the temp file →
 *   keep the installed file as `FILE.prev` → atomic rename over FILE → reload (caller)
 *
 * The temp file lives beside FILE so the rename stays on one file system and is atomic (rename(2)):
 * a reader sees the old bytes or the new ones, never half a file. A config the check rejects is deleted
 * and the installed file is not touched. `.prev` is a copy, so FILE exists at every instant.
 */
import { execFile, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { CorralError, type ErrorCode } from '../util/errors.js';

export interface ConfigInstall {
  /** The installed file the daemon reads. */
  path: string;
  /** The rendered text. */
  text: string;
  /** File mode of the new file (the temp file is created with it, so it is never readable wider). */
  mode: number;
  /** Install even when FILE already holds `text` (default: an identical file is left alone). */
  force?: boolean;
}

/** `FILE.next`: the temp name, in FILE's directory. */
export const stagedPath = (path: string): string => `${path}.next`;
/** `FILE.prev`: the file that was installed before the last install. */
export const previousPath = (path: string): string => `${path}.prev`;

export function readInstalled(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

function stage(c: ConfigInstall): string | undefined {
  if (!c.force && readInstalled(c.path) === c.text) return undefined;
  const tmp = stagedPath(c.path);
  rmSync(tmp, { force: true }); // a leftover with another mode would keep that mode
  writeFileSync(tmp, c.text, { mode: c.mode });
  chmodSync(tmp, c.mode); // the umask may have narrowed it
  return tmp;
}

function commit(tmp: string, path: string): void {
  if (existsSync(path)) copyFileSync(path, previousPath(path));
  renameSync(tmp, path);
}

/**
 * Installs `c.text` at `c.path` when the check accepts it. `check` gets the temp file's path and throws
 * (with the daemon's own words) to refuse it. Resolves true when the file changed, so the caller reloads.
 */
export async function installConfig(
  c: ConfigInstall,
  check: (stagedFile: string) => Promise<void>,
): Promise<boolean> {
  const tmp = stage(c);
  if (!tmp) return false;
  try {
    await check(tmp);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  commit(tmp, c.path);
  return true;
}

/** What `installByTrialStart` drives: the daemon's supervisor (daemons/supervisor.ts). */
export interface TrialDaemon {
  stop(): Promise<void>;
  start(): Promise<void>;
  retryLater(): void;
}

/**
 * The step for a daemon with no config-check mode of its own (nfs-ganesha, docker-registry): the check is
 * a start on the staged file, so the trial start is also the start (forced, even for identical text). On
 * failure the daemon goes back to the installed config, if there was one (should that fail as well, the
 * supervisor's backoff takes over), and the error `rejected` makes of the start's failure is thrown.
 */
export async function installByTrialStart(
  c: Omit<ConfigInstall, 'force'>,
  t: {
    daemon: TrialDaemon;
    /** Points the daemon's arguments at a config file. */
    use: (path: string) => void;
    /** The error for a rejected config (the caller may record or log it first). */
    rejected: (err: Error, hadPrevious: boolean) => Error;
    /** The installed config failed to start again too. */
    previousFailed?: (err: Error) => void;
  },
): Promise<void> {
  const hadPrevious = existsSync(c.path);
  await installConfig({ ...c, force: true }, async (staged) => {
    await t.daemon.stop();
    t.use(staged);
    try {
      await t.daemon.start();
    } catch (err) {
      const error = t.rejected(err as Error, hadPrevious);
      t.use(c.path);
      if (hadPrevious) {
        await t.daemon.start().catch((e: Error) => {
          t.previousFailed?.(e);
          t.daemon.retryLater();
        });
      }
      throw error;
    }
  });
  // The daemon read FILE.next; its restarts use FILE, which now holds the same bytes.
  t.use(c.path);
}

/**
 * The same step for a caller that must finish before it returns (keepalived is installed inside the
 * synchronous `ha.start()`); the file steps are the ones `installConfig` uses.
 */
export function installConfigSync(c: ConfigInstall, check: (stagedFile: string) => void): boolean {
  const tmp = stage(c);
  if (!tmp) return false;
  try {
    check(tmp);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  commit(tmp, c.path);
  return true;
}

/** How a check command's failure becomes a coded error. */
export interface CheckCommand {
  bin: string;
  args: string[];
  /** Code for a check that ran and refused the file. */
  invalid: ErrorCode;
  /** Code for a binary that cannot be run (defaults to `invalid`). */
  missing?: ErrorCode;
  /** Names the step in the message, e.g. `haproxy -c`. */
  what: string;
  /** Picks the lines worth showing from the daemon's output (default: the last five). */
  summarise?: (output: string) => string;
  timeoutMs?: number;
}

const lastLines = (output: string): string => output.trim().split('\n').slice(-5).join(' | ');

function refused(c: CheckCommand, output: string, fallback: string): CorralError {
  const words = (c.summarise ?? lastLines)(output);
  return new CorralError(c.invalid, `${c.what} rejected the generated config: ${words || fallback}`);
}

/** Runs a daemon's own config check (`haproxy -c -f F`, `keepalived -t -f F`); throws a coded error. */
export function runCheck(c: CheckCommand): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(c.bin, c.args, { timeout: c.timeoutMs ?? 10_000 }, (err, stdout, stderr) => {
      if (!err) return resolve();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new CorralError(c.missing ?? c.invalid, `${c.bin} not found (needed for ${c.what})`));
      }
      reject(refused(c, `${stderr}\n${stdout}`, err.message));
    });
  });
}

export function runCheckSync(c: CheckCommand): void {
  const r = spawnSync(c.bin, c.args, { encoding: 'utf8', timeout: c.timeoutMs ?? 10_000 });
  if (r.status === 0) return;
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new CorralError(c.missing ?? c.invalid, `${c.bin} not found (needed for ${c.what})`);
  }
  throw refused(c, `${r.stderr ?? ''}${r.stdout ?? ''}`, r.error?.message ?? `exit ${r.status}`);
}

/** Temp + rename for a file that has no check (scripts, runtime state); same directory, so atomic. */
export function writeFileAtomic(path: string, text: string, mode: number): void {
  const tmp = stagedPath(path);
  rmSync(tmp, { force: true });
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}
