/**
 * `corral node power ...` and `corral node exec ...` (issue #11). Like `corral node deploy`, these open the
 * master's database directly (SQLite WAL: safe beside a running master) and act from this machine: the
 * power drivers and SSH run here, with the master's key files from its data directory. They declare their
 * flags; cli.ts parses them.
 */
import { defineCommand, onMasterFiles, usage, type Parsed } from '../cli/command.js';
import { join } from 'node:path';
import { buildConfig, type FrozenConfig } from '../config.js';
import { openRepos, type Repos } from '../store/repos.js';
import { CorralError } from '../util/errors.js';
import { createLogger } from '../util/logger.js';
import { findNode } from '../nodes/service.js';
import { ensureMasterKey } from '../deploy/ssh.js';
import type { RedfishDetails } from './redfish.js';
import { DRIVER_CHOICES, POWER_ACTIONS, type DriverChoice, type PowerAction } from './power-driver.js';
import { createPowerControl, type PublicPowerConfig } from './power.js';
import { SecretBox } from './secrets.js';
import { execOnNodes } from './exec-service.js';
import { readAllStdin } from '../cli/prompt.js';
import type { ApiClient } from '../cli/api-client.js';

type ReadConfig = (path: string | undefined) => unknown;

const POWER_HELP = `  corral node power NODE on|off|cycle|pxe|uefi-http|disk|status|bmc|show|remove [--json]
  corral node power NODE set --driver ipmi|redfish|auto|wol|manual [--address HOST] [--port N]
                    [--user U] [--password-stdin] [--wol-mac MAC] [--repin]
      Power control through the node's BMC (IPMI lanplus or Redfish; auto: Redfish if the BMC
      offers it, else IPMI), Wake-on-LAN or the operator (docs/remote-control.md, docs/redfish.md),
      by the master of the current profile (or --profile NAME). pxe, uefi-http and disk choose the
      next boot's device only; bmc shows a Redfish BMC's inventory and log entries; --repin forgets
      the BMC certificate pinned on first use (after it was replaced on purpose).
      With --config FILE or --data-dir DIR instead, on the master's machine: the drivers run
      here, with the master's data directory (also while the master is stopped).
`;

const EXEC_HELP = `  corral node exec (NODE[,NODE...] | --role R | --tag T) [--parallel N] [--timeout S] [--json] -- CMD
      Run CMD on nodes over SSH with the master's key, by the master of the current profile (or
      --profile NAME; admin only); output prefixed per node, then an exit summary. With --config
      FILE or --data-dir DIR instead, from the master's machine with the key in its data directory.
`;

const COMMON = {
  profile: { type: 'string' },
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const POWER_OPTIONS = {
  ...COMMON,
  driver: { type: 'string' },
  address: { type: 'string' },
  port: { type: 'string' },
  user: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  'wol-mac': { type: 'string' },
  repin: { type: 'boolean' },
} as const;

const EXEC_OPTIONS = {
  ...COMMON,
  role: { type: 'string' },
  tag: { type: 'string' },
  parallel: { type: 'string' },
  timeout: { type: 'string' },
} as const;

const line = (out: (text: string) => void) => (text: string) => out(`${text}\n`);

export const nodePowerCommand = defineCommand({
  path: ['node', 'power'],
  verbs: [...POWER_ACTIONS, 'status', 'bmc', 'show', 'remove', 'set'],
  help: POWER_HELP,
  options: POWER_OPTIONS,
  run: async ({ values, positionals }, ctx) =>
    onMasterFiles(values)
      ? runPowerCommand(values, positionals, ctx.readConfigFile, line(ctx.out), ctx.stdin)
      : powerViaApi(values, positionals, await ctx.api(values.profile), line(ctx.out), ctx.stdin),
});

export const nodeExecCommand = defineCommand({
  path: ['node', 'exec'],
  help: EXEC_HELP,
  options: EXEC_OPTIONS,
  passthrough: true,
  run: async ({ values, positionals, rest }, ctx) =>
    onMasterFiles(values)
      ? runExecCommand(
          values,
          positionals,
          rest,
          ctx.readConfigFile,
          line(ctx.out),
          ctx.env['SUDO_USER'] ?? ctx.env['USER'] ?? 'cli',
        )
      : execViaApi(values, positionals, rest, await ctx.api(values.profile), line(ctx.out)),
});

async function powerViaApi(
  values: Parsed<typeof POWER_OPTIONS>['values'],
  positionals: string[],
  api: ApiClient,
  out: (s: string) => void,
  stdin: NodeJS.ReadStream,
): Promise<number> {
  const [id, verb, ...extra] = positionals;
  if (!id || !verb || extra.length)
    usage('usage: corral node power NODE on|off|cycle|pxe|uefi-http|disk|status|bmc|show|remove|set ...');
  const path = `/nodes/${encodeURIComponent(id)}/power`;
  const print = (o: unknown, text: string): void => out(values.json ? JSON.stringify(o) : text);
  type View = { node: string; power: PublicPowerConfig | null };
  switch (verb) {
    case 'set': {
      const driver = values.driver as DriverChoice | undefined;
      if (!driver || !DRIVER_CHOICES.includes(driver))
        usage(`--driver must be one of ${DRIVER_CHOICES.join(', ')}`);
      const port = intOf('port', values.port, 1, 65535);
      const r = await api.call<View>('PUT', path, {
        driver,
        ...(values.address !== undefined ? { address: values.address } : {}),
        ...(port !== undefined ? { port } : {}),
        ...(values.user !== undefined ? { username: values.user } : {}),
        ...(values['password-stdin'] ? { password: await readAllStdin(stdin) } : {}),
        ...(values['wol-mac'] !== undefined ? { wolMac: values['wol-mac'] } : {}),
        ...(values.repin ? { repin: true } : {}),
      });
      print(r, describe(r.node, r.power ?? undefined));
      return 0;
    }
    case 'show': {
      const r = await api.call<View>('GET', path);
      print(r, describe(r.node, r.power ?? undefined));
      return 0;
    }
    case 'remove': {
      const { node } = await api.call<View>('GET', path);
      await api.call('DELETE', path);
      print({ node, removed: true }, `${node}: power driver removed`);
      return 0;
    }
    case 'bmc': {
      const r = await api.call<{ node: string; bmc: RedfishDetails }>(
        'GET',
        `${path}/bmc`,
        undefined,
        120_000,
      );
      print(r, describeBmc(r.node, r.bmc));
      return 0;
    }
    case 'status': {
      const r = await api.call<{ node: string; state: string }>('POST', `${path}/status`);
      print({ node: r.node, state: r.state }, `${r.node}: power ${r.state}`);
      return 0;
    }
    default: {
      if (!POWER_ACTIONS.includes(verb as PowerAction))
        usage(`unknown power action '${verb}' (${POWER_ACTIONS.join(', ')}, status, bmc, show, remove, set)`);
      // The BMC may take a while; the master bounds its own ipmitool calls.
      const r = await api.call<{ node: string; message: string; state: string }>(
        'POST',
        `${path}/${verb}`,
        undefined,
        120_000,
      );
      print(r, `${r.node}: ${r.message}${r.state !== 'unknown' ? `; power now ${r.state}` : ''}`);
      return 0;
    }
  }
}

async function execViaApi(
  values: Parsed<typeof EXEC_OPTIONS>['values'],
  positionals: string[],
  rest: string[],
  api: ApiClient,
  out: (s: string) => void,
): Promise<number> {
  const command = rest.join(' ');
  if (!command) usage('give the command after --');
  const nodes = positionals.flatMap((p) => p.split(',')).filter(Boolean);
  if (!nodes.length && !values.role && !values.tag) usage('name nodes or give --role R or --tag T');
  const timeoutSeconds = intOf('timeout', values.timeout, 1, 86_400);
  const parallel = intOf('parallel', values.parallel, 1, 256);
  let last:
    { runId: number; summary: { ok: number; results: unknown[] }; summaryLines: string[] } | undefined;
  await api.stream(
    'POST',
    '/exec',
    {
      ...(nodes.length ? { nodes } : {}),
      ...(values.role ? { role: values.role } : {}),
      ...(values.tag ? { tag: values.tag } : {}),
      command,
      ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
      ...(parallel !== undefined ? { parallel } : {}),
    },
    (v) => {
      const line = v as { text?: string; runId?: number };
      if (typeof line.text === 'string') out(line.text);
      else if (line.runId !== undefined) last = v as typeof last;
    },
    // The run's own bound, plus a minute for the master to gather and answer.
    ((timeoutSeconds ?? 86_400) + 60) * 1000,
  );
  if (!last) throw new CorralError('INTERNAL', 'the master ended the exec stream without a summary');
  if (values.json) out(JSON.stringify({ runId: last.runId, summary: last.summary }));
  else {
    out('');
    for (const l of last.summaryLines) out(l);
  }
  return last.summary.ok === last.summary.results.length ? 0 : 1;
}

/** The master's config: its file, or defaults around --data-dir (then WoL needs a per-node --address). */
function configOf(
  values: { config?: string | undefined; 'data-dir'?: string | undefined },
  readConfig: ReadConfig,
): FrozenConfig {
  if (values.config) {
    return buildConfig(readConfig(values.config), values['data-dir'] ? { dataDir: values['data-dir'] } : {});
  }
  if (values['data-dir']) return buildConfig({ dataDir: values['data-dir'], address: '127.0.0.1' }, {});
  return usage("give --config FILE or --data-dir DIR (the master's)");
}

function open(config: FrozenConfig): Repos {
  return openRepos({ path: join(config.dataDir, 'corral.db'), logger: createLogger({ level: 'warn' }) });
}

function intOf(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max)
    usage(`--${name} must be a whole number from ${min} to ${max}`);
  return Number(v);
}

function describeBmc(name: string, b: RedfishDetails): string {
  const lines = [
    `${name}: ${[b.manufacturer, b.model].filter(Boolean).join(' ') || 'unknown model'}, serial ${b.serialNumber ?? '?'}, BIOS ${b.biosVersion ?? '?'}; power ${b.powerState ?? '?'}; next boot ${b.bootOverride.enabled === 'Disabled' || !b.bootOverride.target ? 'default' : `${b.bootOverride.target} (${b.bootOverride.enabled})`}`,
    ...b.logEntries.map((e) => `  ${e.created ?? ''} ${e.severity ?? ''} ${e.message} [${e.source}]`),
  ];
  return lines.join('\n');
}

function describe(name: string, p: PublicPowerConfig | undefined): string {
  if (!p) return `${name}: no power driver`;
  const where = p.address ? ` ${p.address}${p.port ? `:${p.port}` : ''}` : '';
  const who = p.username ? ` user ${p.username}${p.hasPassword ? ' (password stored, encrypted)' : ''}` : '';
  const pin = p.tlsPin ? `; certificate pinned sha256 ${p.tlsPin}` : '';
  return `${name}: ${p.driver}${where}${who}; power ${p.state}${p.stateError ? ` (${p.stateError})` : ''}${pin}`;
}

async function runPowerCommand(
  values: Parsed<typeof POWER_OPTIONS>['values'],
  positionals: string[],
  readConfig: ReadConfig,
  out: (s: string) => void,
  stdin: NodeJS.ReadStream,
): Promise<number> {
  const [id, verb, ...extra] = positionals;
  if (!id || !verb || extra.length)
    usage('usage: corral node power NODE on|off|cycle|pxe|uefi-http|disk|status|bmc|show|remove|set ...');
  const config = configOf(values, readConfig);
  const repos = open(config);
  try {
    const node = findNode(repos.nodes, id);
    const power = createPowerControl({
      repos,
      config,
      logger: createLogger({ level: 'warn' }),
      secrets: SecretBox.forDataDir(config.dataDir),
    });
    const print = (o: unknown, text: string): void => out(values.json ? JSON.stringify(o) : text);
    switch (verb) {
      case 'set': {
        const driver = values.driver as DriverChoice | undefined;
        if (!driver || !DRIVER_CHOICES.includes(driver))
          usage(`--driver must be one of ${DRIVER_CHOICES.join(', ')}`);
        const p = power.configure(
          node,
          {
            driver,
            address: values.address,
            port: intOf('port', values.port, 1, 65535),
            username: values.user,
            password: values['password-stdin'] ? await readAllStdin(stdin) : undefined,
            wolMac: values['wol-mac'],
            repin: values.repin,
          },
          'cli',
        );
        print({ node: node.name, power: p }, describe(node.name, p));
        return 0;
      }
      case 'show':
        print(
          { node: node.name, power: power.view(node.mac) ?? null },
          describe(node.name, power.view(node.mac)),
        );
        return 0;
      case 'remove':
        power.remove(node, 'cli');
        print({ node: node.name, removed: true }, `${node.name}: power driver removed`);
        return 0;
      case 'bmc': {
        const bmc = await power.bmcDetails(node);
        if (!bmc) usage(`${node.name}: only the redfish driver reads the BMC's inventory and log`);
        print({ node: node.name, bmc }, describeBmc(node.name, bmc));
        return 0;
      }
      case 'status': {
        const state = await power.refresh(node);
        print({ node: node.name, state }, `${node.name}: power ${state}`);
        return 0;
      }
      default: {
        if (!POWER_ACTIONS.includes(verb as PowerAction))
          usage(
            `unknown power action '${verb}' (${POWER_ACTIONS.join(', ')}, status, bmc, show, remove, set)`,
          );
        const r = await power.act(node, verb as PowerAction, 'cli');
        print(
          { node: node.name, action: verb, ...r },
          `${node.name}: ${r.message}${r.state !== 'unknown' ? `; power now ${r.state}` : ''}`,
        );
        return 0;
      }
    }
  } finally {
    repos.store.close();
  }
}

async function runExecCommand(
  values: Parsed<typeof EXEC_OPTIONS>['values'],
  positionals: string[],
  rest: string[],
  readConfig: ReadConfig,
  out: (s: string) => void,
  actor: string,
): Promise<number> {
  const command = rest.join(' ');
  if (!command) usage('give the command after --');
  const nodes = positionals.flatMap((p) => p.split(',')).filter(Boolean);
  if (!nodes.length && !values.role && !values.tag) usage('name nodes or give --role R or --tag T');
  const config = configOf(values, readConfig);
  const repos = open(config);
  try {
    const { summary, summaryLines, runId } = await execOnNodes(
      { repos, config, privateKeyPath: (await ensureMasterKey(config.dataDir)).privateKeyPath },
      {
        nodes,
        role: values.role,
        tag: values.tag,
        command,
        actor,
        via: 'cli',
        timeoutSeconds: intOf('timeout', values.timeout, 1, 86_400),
        parallel: intOf('parallel', values.parallel, 1, 256),
      },
      { line: (text) => out(text) },
    );
    if (values.json) out(JSON.stringify({ runId, summary }));
    else {
      out('');
      for (const l of summaryLines) out(l);
    }
    return summary.ok === summary.results.length ? 0 : 1;
  } finally {
    repos.store.close();
  }
}
