/**
 * A real dockerd in a test namespace, as an engine node that pulls from the master's registry (the
 * registry test and bench). Entered with nsenter, not `ip netns exec`, which remounts /sys and hides
 * the cgroup mounts dockerd needs. vfs storage, no bridge, no iptables: nothing touches the host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runIn, waitFor, type RunResult, type TestNet } from './netns.js';

export interface TestDockerd {
  docker(args: string[], timeoutMs?: number): Promise<RunResult>;
  stop(): Promise<void>;
}

/** Starts dockerd in `ns` with its state under `dir` (keep it short: the exec root holds sockets). */
export async function startDockerd(
  net: TestNet,
  ns: string,
  dir: string,
  insecureRegistries: string[],
): Promise<TestDockerd> {
  mkdirSync(dir, { recursive: true });
  const sock = join(dir, 'sock');
  const tag = `corral-${ns}`;
  const child: ChildProcess = spawn(
    'nsenter',
    [
      `--net=/var/run/netns/${ns}`,
      'dockerd',
      ...['--data-root', join(dir, 'data'), '--exec-root', join(dir, 'x'), '--pidfile', join(dir, 'pid')],
      ...['-H', `unix://${sock}`, '--iptables=false', '--ip6tables=false', '--bridge=none'],
      ...['--storage-driver=vfs', '--containerd-namespace', tag, '--containerd-plugins-namespace', `${tag}p`],
      ...insecureRegistries.flatMap((r) => ['--insecure-registry', r]),
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  const docker = (args: string[], timeoutMs = 30_000): Promise<RunResult> =>
    runIn(net, ns, ['docker', '-H', `unix://${sock}`, ...args], timeoutMs);
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  };
  try {
    await waitFor('dockerd to answer', async () => (await docker(['version'], 5000)).code === 0, 30_000, 300);
  } catch (err) {
    await stop();
    throw err;
  }
  return { docker, stop };
}
