/** Runs the host tools the builder relies on (apt-get, dpkg, modinfo, depmod, gzip) with clear errors. */
import { execFile, type ChildProcess } from 'node:child_process';
import { CorralError } from '../master/util/errors.js';

export interface ExecOptions {
  cwd?: string;
  input?: Buffer;
  /** Bounded: a hung apt or gzip must not hang the build. */
  timeoutMs?: number;
}

/** The tools running now, so a stopping master can end them (killRunningTools). */
const running = new Set<ChildProcess>();

/**
 * Ends every tool this process is running (SIGTERM), for a master that stops mid-build: a running child
 * (apt-cache takes seconds on a loaded machine, apt-get minutes) would otherwise keep the process alive
 * after everything else has closed. Each one's build step fails, which the builder takes as its cancel.
 * Returns how many were signalled.
 */
export function killRunningTools(): number {
  for (const child of running) child.kill('SIGTERM');
  return running.size;
}

/** Runs `cmd args`, returns stdout as a Buffer; a non-zero exit becomes NODE_IMAGE_BUILD_FAILED. */
export function execBuffer(cmd: string, args: readonly string[], options: ExecOptions = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      {
        cwd: options.cwd,
        encoding: 'buffer',
        maxBuffer: 512 * 1024 * 1024,
        timeout: options.timeoutMs ?? 10 * 60_000,
        env: { ...process.env, LC_ALL: 'C' },
      },
      (err, stdout, stderr) => {
        running.delete(child);
        if (err) {
          const tail = stderr.toString('utf8').trim().split('\n').slice(-5).join(' | ');
          reject(
            new CorralError(
              'NODE_IMAGE_BUILD_FAILED',
              `${cmd} ${args.join(' ')} failed: ${tail || err.message}`,
              {
                cmd,
                args: [...args],
              },
            ),
          );
          return;
        }
        resolve(stdout);
      },
    );
    running.add(child);
    // A tool that exits before reading all its input (ended by killRunningTools, or failing) makes the write
    // fail with EPIPE; its exit status already says what happened, and an unhandled stream error would take
    // the whole master down (seen as an uncaught EPIPE after a master stopped mid-build, CI run 10).
    child.stdin?.on('error', () => undefined);
    if (options.input) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

export async function execText(
  cmd: string,
  args: readonly string[],
  options: ExecOptions = {},
): Promise<string> {
  return (await execBuffer(cmd, args, options)).toString('utf8');
}
