/**
 * The one way the API, the console and the CLI run a command on nodes: resolves the targets (names/MACs,
 * or every node of a role or tag), runs the fan-out with the master's SSH key (master/deploy/ssh.ts), and records
 * the run: output and summary in `exec_runs`, one audit row naming the run, the command and the outcome.
 */
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { NodeRecord } from '../store/nodes.js';
import type { AuditVia } from '../store/audit.js';
import { findNode } from '../nodes/service.js';
import { CorralError } from '../util/errors.js';
import { formatSummary, prefixLine, runOnNodes, type ExecNodeResult, type ExecSummary } from './exec.js';
import { HostKeyPins, recordHostKeyRefusal } from './host-keys.js';

export interface ExecRequest {
  nodes?: readonly string[] | undefined;
  role?: string | undefined;
  /** Every node carrying this tag (issue 16), beside names and role. */
  tag?: string | undefined;
  command: string;
  actor: string;
  via: 'api' | 'console' | 'cli';
  ip?: string | null;
  timeoutSeconds?: number | undefined;
  parallel?: number | undefined;
}

export interface ExecEvents {
  /** The run is recorded (its id) and about to start. */
  start?: (runId: number) => void;
  /** A prefixed output line (`name | text`, stderr with `!`). */
  line?: (text: string, name: string, stream: 'stdout' | 'stderr') => void;
  result?: (r: ExecNodeResult) => void;
}

export function resolveTargets(
  repos: Pick<Repos, 'nodes'>,
  req: Pick<ExecRequest, 'nodes' | 'role' | 'tag'>,
): NodeRecord[] {
  const picked = new Map<string, NodeRecord>();
  for (const id of req.nodes ?? []) {
    const node = findNode(repos.nodes, id);
    picked.set(node.mac, node);
  }
  if (req.role) for (const n of repos.nodes.list()) if (n.role === req.role) picked.set(n.mac, n);
  if (req.tag) for (const n of repos.nodes.listByTag(req.tag)) picked.set(n.mac, n);
  if (!picked.size) {
    throw new CorralError(
      'EXEC_NO_TARGETS',
      req.role
        ? `no node has role '${req.role}'`
        : req.tag
          ? `no node has tag '${req.tag}'`
          : 'no nodes named',
    );
  }
  return [...picked.values()];
}

export async function execOnNodes(
  deps: {
    repos: Pick<Repos, 'nodes' | 'execRuns' | 'audit' | 'events'>;
    config: Pick<FrozenConfig, 'remote' | 'dataDir' | 'sharedRoot'>;
    privateKeyPath: string;
  },
  req: ExecRequest,
  events: ExecEvents = {},
): Promise<{ runId: number; summary: ExecSummary; summaryLines: string[] }> {
  const { repos, config } = deps;
  const nodes = resolveTargets(repos, req);
  const width = Math.max(...nodes.map((n) => n.name.length));
  const runId = repos.execRuns.start({
    actor: req.actor,
    via: req.via,
    command: req.command,
    targets: nodes.map((n) => n.name),
  });
  let output = '';
  events.start?.(runId);
  const summary = await runOnNodes({
    targets: nodes.map((n) => ({ name: n.name, mac: n.mac, host: n.ip ?? '' })),
    hostKeys: HostKeyPins.forConfig(config),
    onHostKeyRefused: (t, reason) => recordHostKeyRefusal(repos, t, reason),
    command: req.command,
    privateKeyPath: deps.privateKeyPath,
    user: config.remote.exec.user,
    port: config.remote.exec.port,
    parallel: req.parallel ?? config.remote.exec.parallel,
    connectTimeoutMs: config.remote.exec.connectTimeoutSeconds * 1000,
    commandTimeoutMs: (req.timeoutSeconds ?? config.remote.exec.commandTimeoutSeconds) * 1000,
    onLine: (name, stream, line) => {
      const text = prefixLine(name, width, line, stream);
      output += `${text}\n`;
      events.line?.(text, name, stream);
    },
    ...(events.result ? { onResult: events.result } : {}),
  });
  const summaryLines = formatSummary(summary);
  repos.execRuns.finish(runId, summary as unknown as Record<string, unknown>, output);
  const via: AuditVia = req.via === 'cli' ? 'system' : req.via;
  repos.audit.append({
    actor: req.actor,
    via,
    action: 'exec',
    target: nodes
      .map((n) => n.name)
      .join(',')
      .slice(0, 200),
    outcome: summary.ok === summary.results.length ? 'ok' : 'failed',
    ip: req.ip ?? null,
    detail: `run #${runId}: ${req.command.slice(0, 600)} → ${summaryLines.at(-1) ?? ''}`,
  });
  return { runId, summary, summaryLines };
}
