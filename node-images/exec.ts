/** Runs the host tools the builder relies on (apt-get, dpkg, modinfo, depmod, gzip) with clear errors. */
import { execFile } from 'node:child_process';
import { CorralError } from '../master/util/errors.js';

export interface ExecOptions {
  cwd?: string;
  input?: Buffer;
  /** Bounded: a hung apt or gzip must not hang the build. */
  timeoutMs?: number;
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
