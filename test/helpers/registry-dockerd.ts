/**
 * A real dockerd in a test namespace, as an engine node that pulls from the master's registry (the
 * registry test and bench). Entered with nsenter, not `ip netns exec`, which remounts /sys and hides
 * the cgroup mounts dockerd needs. vfs storage, no bridge, no iptables: nothing touches the host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runIn, waitFor, type RunResult, type TestNet } from './netns.js';

export interface DockerdPlaces {
  /** The test namespace (under /var/run/netns) dockerd runs in. */
  ns: string;
  dataRoot: string;
  /** Keep it short: it holds unix sockets (108-byte path limit). */
  execRoot: string;
  pidFile: string;
  sock: string;
  /** containerd namespaces of this dockerd (unique per run, so two runs cannot collide). */
  containerdNamespace: string;
  insecureRegistries?: readonly string[];
}

/**
 * `nsenter` arguments that start dockerd in a test namespace: vfs storage, no bridge, no iptables, so
 * nothing touches the host's network or storage (the registry test and the apps swarm lab).
 */
export function nsenterDockerdArgs(p: DockerdPlaces): string[] {
  return [
    `--net=/var/run/netns/${p.ns}`,
    'dockerd',
    ...['--data-root', p.dataRoot, '--exec-root', p.execRoot, '--pidfile', p.pidFile],
    ...['-H', `unix://${p.sock}`, '--iptables=false', '--ip6tables=false', '--bridge=none'],
    ...['--storage-driver=vfs', '--containerd-namespace', p.containerdNamespace],
    ...['--containerd-plugins-namespace', `${p.containerdNamespace}p`],
    ...(p.insecureRegistries ?? []).flatMap((r) => ['--insecure-registry', r]),
  ];
}

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
    nsenterDockerdArgs({
      ns,
      dataRoot: join(dir, 'data'),
      execRoot: join(dir, 'x'),
      pidFile: join(dir, 'pid'),
      sock,
      containerdNamespace: tag,
      insecureRegistries,
    }),
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
