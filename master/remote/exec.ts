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
}

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
  const ssh = new NodeSSH();
  try {
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
      });
    } catch (err) {
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
    const out = lineSplitter((l) => o.onLine?.(t.name, 'stdout', l));
    const errOut = lineSplitter((l) => o.onLine?.(t.name, 'stderr', l));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), o.commandTimeoutMs);
    });
    try {
      const r = await Promise.race([
        ssh.execCommand(o.command, {
          onStdout: (c) => out.push(c),
          onStderr: (c) => errOut.push(c),
          noTrim: true,
        }),
        timedOut,
      ]);
      out.flush();
      errOut.flush();
      if (r === 'timeout')
        return done('timeout', { error: `still running after ${Math.round(o.commandTimeoutMs / 1000)} s` });
      return done(r.code === 0 ? 'ok' : 'failed', { exitCode: r.code, signal: r.signal });
    } catch (err) {
      return done('failed', { error: (err as Error).message });
    } finally {
      clearTimeout(timer);
    }
  } finally {
    ssh.dispose();
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
