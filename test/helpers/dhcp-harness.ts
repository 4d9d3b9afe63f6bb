/**
 * Process plumbing shared by the DHCP integration test and benchmark: run a command in a namespace
 * without blocking the event loop, and start/stop dhcp-serve (Corral's DHCP server over a real store).
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor, type TestNet } from './netns.js';

const SERVE = fileURLToPath(new URL('./dhcp-serve.js', import.meta.url));

export { runIn, type RunResult } from './netns.js';

export interface ServeProcess {
  child: ChildProcess;
  logPath: string;
  log(): string;
  /** SIGTERM and wait (bounded); returns the server's final counters from its STATS line. */
  stop(): Promise<Record<string, number>>;
  /** SIGKILL and wait (bounded): a crash, for restart tests. */
  kill(): Promise<void>;
}

let serveCount = 0;

/** Starts dist/test/helpers/dhcp-serve.js in `ns` with `args`; resolves once it printed READY (10 s bound). */
export async function startServe(
  net: TestNet,
  ns: string,
  logDir: string,
  args: string[],
  logLevel = 'debug',
): Promise<ServeProcess> {
  const logPath = join(logDir, `dhcp-serve-${++serveCount}.log`);
  const fd = openSync(logPath, 'w');
  // Logs go to a file: a pipe nobody drains would stall the server once its buffer filled.
  const child = net.spawnIn(ns, [process.execPath, SERVE, '--log-level', logLevel, ...args], {
    stdio: ['ignore', 'pipe', fd],
  });
  closeSync(fd);
  let stdout = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const bounded = (): Promise<unknown> => Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  await waitFor(
    'dhcp-serve READY',
    () => {
      if (child.exitCode !== null) {
        throw new Error(`dhcp-serve exited ${child.exitCode}: ${readFileSync(logPath, 'utf8')}`);
      }
      return stdout.includes('READY');
    },
    10_000,
  );
  return {
    child,
    logPath,
    log: () => readFileSync(logPath, 'utf8'),
    async stop() {
      child.kill('SIGTERM');
      await bounded();
      const line = stdout.split('\n').find((l) => l.startsWith('STATS '));
      return line ? (JSON.parse(line.slice(6)) as Record<string, number>) : {};
    },
    async kill() {
      child.kill('SIGKILL');
      await bounded();
    },
  };
}

/**
 * dnsmasq as the reference DHCPv4 server of the benchmarks: foreground, no DNS, bound to one interface,
 * a /16 range, no ping before an offer (as Corral's reference runs are compared), running as root in the
 * namespace. `extra` adds what one benchmark needs (boot files, TFTP).
 */
export function dnsmasqDhcpArgs(o: {
  ifname: string;
  range: readonly [string, string];
  leaseFile: string;
  pidFile: string;
  logFile: string;
  extra?: readonly string[];
}): string[] {
  return [
    'dnsmasq',
    '--no-daemon',
    '--conf-file=/dev/null',
    '--port=0',
    `--interface=${o.ifname}`,
    '--bind-interfaces',
    `--dhcp-range=${o.range[0]},${o.range[1]},255.255.0.0,1h`,
    '--dhcp-lease-max=100000',
    `--dhcp-leasefile=${o.leaseFile}`,
    '--no-ping',
    ...(o.extra ?? []),
    `--pid-file=${o.pidFile}`,
    `--log-facility=${o.logFile}`,
    '--user=root',
    '--group=root',
  ];
}
