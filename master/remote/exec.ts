/**
 * Commands on nodes over SSH (node-ssh) with the master's key, in parallel with a bounded fan-out.
 * Output is handed on line by line with the node's name as prefix; each node ends in one outcome:
 * `ok` (exit 0), `failed` (non-zero exit or a signal), `unreachable` (no SSH session within the connect
 * timeout) or `timeout` (the command outlived its bound; the session is dropped). Nothing waits unbounded.
 */
import { NodeSSH } from 'node-ssh';
import { pinnedConnect, type HostKeyPins } from './host-keys.js';

export interface ExecTarget {
  name: string;
  mac: string;
  host: string;
}

export type ExecOutcome = 'ok' | 'failed' | 'unreachable' | 'timeout';

export interface ExecNodeResult {
  name: string;
  host: string;
  outcome: ExecOutcome;
  exitCode: number | null;
  signal: string | null;
  error: string | null;
  durationMs: number;
}

export interface ExecSummary {
  results: ExecNodeResult[];
  ok: number;
  failed: number;
  unreachable: number;
  timeout: number;
  durationMs: number;
}

export interface ExecOptions {
  targets: readonly ExecTarget[];
  command: string;
  privateKeyPath: string;
  user: string;
  port: number;
  parallel: number;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** Host keys the nodes must present (master/remote/host-keys.ts). */
  hostKeys: HostKeyPins;
  /** A node presented another host key: the run reports it unreachable, and this records why. */
  onHostKeyRefused?: (target: ExecTarget, reason: string) => void;
  onLine?: (name: string, stream: 'stdout' | 'stderr', line: string) => void;
  onResult?: (result: ExecNodeResult) => void;
  /**
   * Keep each node's session open for the next command (the apps' engine driver runs several docker
   * commands per reconcile pass): the SSH handshake is paid once per node, not once per command.
   */
  sessions?: SessionPool;
}

interface Pooled {
  ssh: NodeSSH;
  idle: NodeJS.Timeout;
}

/**
 * Open SSH sessions by node (MAC, address and port), each closed after `idleMs` unused, or at once when
 * its connection ends (keepalives notice a node that went away without a word). A session is taken for
 * one command at a time and given back after it; one that failed or timed out is dropped, not given back.
 */
export class SessionPool {
  private readonly open = new Map<string, Pooled>();
  constructor(readonly idleMs: number) {}

  take(key: string): NodeSSH | undefined {
    const p = this.open.get(key);
    if (!p) return undefined;
    this.open.delete(key);
    clearTimeout(p.idle);
    return p.ssh;
  }

  /**
   * Called once per new session: when its connection ends or fails (a reset, keepalives unanswered) it
   * leaves the pool, if it is there.
   */
  watch(key: string, ssh: NodeSSH): void {
    const forget = (): void => {
      if (this.open.get(key)?.ssh === ssh) this.drop(key);
    };
    ssh.connection?.once('close', forget);
    ssh.connection?.on('error', forget);
  }

  /** Gives a session back; a second one for the same node (two commands at once) is closed instead. */
  give(key: string, ssh: NodeSSH): void {
    if (this.open.has(key) || !ssh.isConnected()) return ssh.dispose();
    const idle = setTimeout(() => this.drop(key), this.idleMs);
    idle.unref();
    this.open.set(key, { ssh, idle });
  }

  drop(key: string): void {
    const p = this.open.get(key);
    if (!p) return;
    this.open.delete(key);
    clearTimeout(p.idle);
    p.ssh.dispose();
  }

  get size(): number {
    return this.open.size;
  }

  close(): void {
    for (const key of [...this.open.keys()]) this.drop(key);
  }
}

/** A pooled session's keepalives: every 5 s, and 2 unanswered close it. */
const POOL_KEEPALIVE_MS = 5000;
const POOL_KEEPALIVE_MAX = 2;

/** Splits a byte stream into whole lines (the last partial line is kept until more comes or `flush`). */
export function lineSplitter(emit: (line: string) => void): {
  push(chunk: Buffer | string): void;
  flush(): void;
} {
  let partial = '';
  return {
    push(chunk) {
      partial += chunk.toString();
      const lines = partial.split(/\r?\n/);
      partial = lines.pop() ?? '';
      for (const l of lines) emit(l);
    },
    flush() {
      if (partial) emit(partial);
      partial = '';
    },
  };
}

/** `name | line`, names padded to one width so columns line up. */
export function prefixLine(
  name: string,
  width: number,
  line: string,
  stream: 'stdout' | 'stderr' = 'stdout',
): string {
  return `${name.padEnd(width)} ${stream === 'stderr' ? '!' : '|'} ${line}`;
}

export function summarise(results: ExecNodeResult[], durationMs: number): ExecSummary {
  const count = (o: ExecOutcome): number => results.filter((r) => r.outcome === o).length;
  return {
    results,
    ok: count('ok'),
    failed: count('failed'),
    unreachable: count('unreachable'),
    timeout: count('timeout'),
    durationMs,
  };
}

/** The exit summary as text lines: one per node, then the totals. */
export function formatSummary(s: ExecSummary): string[] {
  const width = Math.max(4, ...s.results.map((r) => r.name.length));
  const lines = s.results.map((r) => {
    const what =
      r.outcome === 'ok'
        ? 'exit 0'
        : r.outcome === 'failed'
          ? r.exitCode !== null
            ? `exit ${r.exitCode}`
            : `killed by ${r.signal ?? 'signal'}`
          : (r.error ?? r.outcome);
    return `${r.name.padEnd(width)}  ${r.outcome.padEnd(11)} ${what}  (${(r.durationMs / 1000).toFixed(1)} s)`;
  });
  lines.push(
    `${s.results.length} node(s): ${s.ok} ok, ${s.failed} failed, ${s.unreachable} unreachable, ${s.timeout} timed out in ${(s.durationMs / 1000).toFixed(1)} s`,
  );
  return lines;
}

async function runOne(t: ExecTarget, o: ExecOptions): Promise<ExecNodeResult> {
  const started = Date.now();
  const done = (outcome: ExecOutcome, rest: Partial<ExecNodeResult> = {}): ExecNodeResult => ({
    name: t.name,
    host: t.host,
    outcome,
    exitCode: null,
    signal: null,
    error: null,
    durationMs: Date.now() - started,
    ...rest,
  });
  if (!t.host) return done('unreachable', { error: 'no IP address recorded for this node' });
  const key = `${t.mac} ${t.host} ${o.port}`;
  const kept = o.sessions?.take(key);
  if (kept) {
    const r = await runOn(kept, t, o, done);
    // A kept session that cannot open a channel any more (the node rebooted, sshd restarted, or it went
    // silent: no channel within the connect timeout) is dropped and the command runs once more on a new
    // one; a command that ran (any exit code) is the answer.
    if (r !== 'broken') return settle(kept, key, r, o);
    kept.dispose();
  }
  const ssh = new NodeSSH();
  const pin = pinnedConnect(o.hostKeys, t);
  try {
    await ssh.connect({
      host: t.host,
      port: o.port,
      username: o.user,
      privateKeyPath: o.privateKeyPath,
      readyTimeout: o.connectTimeoutMs,
      // Checked before the master authenticates: an impostor never gets a signature or a command.
      hostVerifier: pin.hostVerifier,
      ...(o.sessions ? { keepaliveInterval: POOL_KEEPALIVE_MS, keepaliveCountMax: POOL_KEEPALIVE_MAX } : {}),
    });
  } catch (err) {
    ssh.dispose();
    const refused = pin.verdict();
    if (refused && !refused.ok) {
      const reason = refused.reason ?? 'SSH host key refused';
      o.onHostKeyRefused?.(t, reason);
      return done('unreachable', { error: reason });
    }
    return done('unreachable', {
      error: ((err as Error).message || 'connect failed').split('\n')[0] ?? null,
    });
  }
  // A connection error after the handshake (a reset by the node) must not be an unhandled 'error' event:
  // a command in flight sees it as its own failure, and a kept session leaves the pool.
  ssh.connection?.on('error', () => undefined);
  o.sessions?.watch(key, ssh);
  const r = await runOn(ssh, t, o, done);
  const broken = `the SSH session opened no channel within ${Math.round(o.connectTimeoutMs / 1000)} s`;
  return settle(ssh, key, r === 'broken' ? done('failed', { error: broken }) : r, o);
}

/** After a command: an ended command's session goes back to the pool (if any), anything else is closed. */
function settle(ssh: NodeSSH, key: string, r: ExecNodeResult, o: ExecOptions): ExecNodeResult {
  if (o.sessions && (r.outcome === 'ok' || (r.outcome === 'failed' && r.exitCode !== null)))
    o.sessions.give(key, ssh);
  else ssh.dispose();
  return r;
}

/** One command on a connected session; `broken` when the session could not even start it. */
async function runOn(
  ssh: NodeSSH,
  t: ExecTarget,
  o: ExecOptions,
  done: (outcome: ExecOutcome, rest?: Partial<ExecNodeResult>) => ExecNodeResult,
): Promise<ExecNodeResult | 'broken'> {
  if (!ssh.isConnected()) return 'broken';
  const out = lineSplitter((l) => o.onLine?.(t.name, 'stdout', l));
  const errOut = lineSplitter((l) => o.onLine?.(t.name, 'stderr', l));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), o.commandTimeoutMs);
  });
  let begun = false;
  // A channel that does not open within the connect timeout will not: a kept session whose node went away
  // without a word (powered off) would otherwise hold the command until the command timeout.
  let stall: NodeJS.Timeout | undefined;
  const stalled = new Promise<'stalled'>((resolve) => {
    stall = setTimeout(() => resolve('stalled'), o.connectTimeoutMs);
  });
  try {
    const r = await Promise.race([
      ssh.execCommand(o.command, {
        onChannel: () => {
          begun = true;
          clearTimeout(stall);
        },
        onStdout: (c) => out.push(c),
        onStderr: (c) => errOut.push(c),
        noTrim: true,
      }),
      timedOut,
      stalled,
    ]);
    if (r === 'stalled') return 'broken';
    out.flush();
    errOut.flush();
    if (r === 'timeout')
      return done('timeout', { error: `still running after ${Math.round(o.commandTimeoutMs / 1000)} s` });
    return done(r.code === 0 ? 'ok' : 'failed', { exitCode: r.code, signal: r.signal });
  } catch (err) {
    if (!begun) return 'broken';
    return done('failed', { error: (err as Error).message });
  } finally {
    clearTimeout(timer);
    clearTimeout(stall);
  }
}

/** Runs the command on every target, at most `parallel` at once; never rejects. */
export async function runOnNodes(o: ExecOptions): Promise<ExecSummary> {
  const started = Date.now();
  const results: ExecNodeResult[] = new Array<ExecNodeResult>(o.targets.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < o.targets.length) {
      const i = next++;
      const t = o.targets[i]!;
      const r = await runOne(t, o);
      results[i] = r;
      o.onResult?.(r);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.parallel, o.targets.length) }, worker));
  return summarise(results, Date.now() - started);
}
