/**
 * Runs the real `corral` CLI as a child process (optionally inside a network namespace) and waits for
 * its "corral master started" log line. Used by the lab and by integration and e2e tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { installPath } from '../util/paths.js';

export const CLI = installPath('dist', 'master', 'cli.js');

export interface MasterProcess {
  child: ChildProcess;
  url: string;
  port: number;
  logs: () => string;
  /** Sends a signal and resolves with the exit code (or signal name). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
}

export interface StartOptions {
  args: string[];
  env?: Record<string, string>;
  /** Run inside this network namespace (ip netns exec). */
  netns?: string;
  host?: string;
  timeoutMs?: number;
  /** Also append the master's output to this file. */
  logFile?: string;
}

export function exitOf(child: ChildProcess, timeoutMs: number): Promise<number | string> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    if (child.signalCode !== null) return resolve(child.signalCode);
    const t = setTimeout(() => reject(new Error(`process did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve(code ?? signal ?? -1);
    });
  });
}

export async function startMasterProcess(opts: StartOptions): Promise<MasterProcess> {
  const argv = ['node', CLI, 'master', ...opts.args];
  const [cmd, ...args] = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv;
  const child = spawn(cmd!, args, {
    env: { ...process.env, CORRAL_LOG_LEVEL: 'debug', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Keep the last 4 MiB in memory for tests and error messages; the log file (if any) keeps everything.
  let out = '';
  const file = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
  const collect = (d: Buffer): void => {
    out += d.toString();
    if (out.length > 4 << 20) out = out.slice(-(2 << 20));
    file?.write(d);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  child.once('exit', () => file?.end());
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`master did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const check = (): void => {
      const m = /"http":"\S*?:(\d+)[" ][^\n]*corral master started/.exec(out);
      if (m) {
        clearTimeout(t);
        child.stdout.off('data', check);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`master exited with ${code} before starting:\n${out}`));
    });
  });
  return {
    child,
    port,
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    logs: () => out,
    stop: async (signal = 'SIGTERM', ms = 10_000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exitOf(child, ms);
    },
  };
}

export function basic(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}
