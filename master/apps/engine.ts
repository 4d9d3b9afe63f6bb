/**
 * The docker CLI on an engine node, over SSH with the master's key and the node's pinned host key (the
 * same session code as `corral node exec`: remote/exec.ts). Each node's session stays open between
 * commands (a reconcile pass runs several; docs/apps.md has what that saved), one command at a time on
 * it, each bounded in time; stdout comes back whole (docker's JSON), stderr as the error's text.
 */
import { runOnNodes, SessionPool, type ExecTarget } from '../remote/exec.js';
import type { HostKeyPins } from '../remote/host-keys.js';
import { CorralError } from '../util/errors.js';
import { shellJoin } from './docker-args.js';

export interface EngineSsh {
  user: string;
  port: number;
  privateKeyPath: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  hostKeys: HostKeyPins;
  dockerBin: string;
  onHostKeyRefused?: (target: ExecTarget, reason: string) => void;
}

export interface DockerResult {
  ok: boolean;
  stdout: string;
  stderr: string;
  /** Why it did not run or failed, in one line (unreachable, timeout, exit code and stderr's last line). */
  error: string | null;
}

/** Runs docker on nodes; an interface so the service can be driven by the real SSH runner only. */
export interface Docker {
  run(node: ExecTarget, args: readonly string[]): Promise<DockerResult>;
}

/** An engine node's session is closed after this long unused (a reconcile pass comes every few seconds). */
const SESSION_IDLE_MS = 60_000;

export class SshDocker implements Docker {
  private readonly sessions = new SessionPool(SESSION_IDLE_MS);
  constructor(private readonly ssh: EngineSsh) {}

  /** Closes the kept sessions (the master stops). */
  close(): void {
    this.sessions.close();
  }

  async run(node: ExecTarget, args: readonly string[]): Promise<DockerResult> {
    const out: string[] = [];
    const err: string[] = [];
    const summary = await runOnNodes({
      targets: [node],
      command: shellJoin([this.ssh.dockerBin, ...args]),
      privateKeyPath: this.ssh.privateKeyPath,
      user: this.ssh.user,
      port: this.ssh.port,
      parallel: 1,
      connectTimeoutMs: this.ssh.connectTimeoutMs,
      commandTimeoutMs: this.ssh.commandTimeoutMs,
      hostKeys: this.ssh.hostKeys,
      sessions: this.sessions,
      ...(this.ssh.onHostKeyRefused ? { onHostKeyRefused: this.ssh.onHostKeyRefused } : {}),
      onLine: (_name, stream, line) => (stream === 'stdout' ? out : err).push(line),
    });
    const r = summary.results[0]!;
    const stderr = err.join('\n');
    const ok = r.outcome === 'ok';
    const lastErr = err.filter((l) => l.trim()).pop();
    return {
      ok,
      stdout: out.join('\n'),
      stderr,
      error: ok
        ? null
        : r.outcome === 'failed' && r.exitCode !== null
          ? `docker ${args[0] ?? ''} ${args[1] ?? ''} exited ${r.exitCode}${lastErr ? `: ${lastErr}` : ''}`
          : `${r.outcome}: ${r.error ?? ''}`,
    };
  }
}

/** Runs and insists on success: the error names the node and docker's own words. */
export async function mustRun(docker: Docker, node: ExecTarget, args: readonly string[]): Promise<string> {
  const r = await docker.run(node, args);
  if (!r.ok) throw new CorralError('APP_ENGINE_FAILED', `${node.name}: ${r.error ?? 'failed'}`);
  return r.stdout;
}
