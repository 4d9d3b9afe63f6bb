/**
 * `corral sharedroot ...` and `corral node diskless NODE --root NAME`. Like `corral image`, these open
 * the master's database directly (SQLite WAL, safe beside a running master); the running master's
 * reconcile loop then brings the NFS exports in line within `sharedRoot.reconcileSeconds`. They run on the
 * master's machine (create reads a local directory, edit hands back a path there); cli.ts parses the flags.
 */
import { defineCommand, usage, type Parsed } from '../cli/command.js';
import { join } from 'node:path';
import { buildConfig, type FrozenConfig } from '../config.js';
import { openRepos } from '../store/repos.js';
import { CorralError } from '../util/errors.js';
import { createLogger } from '../util/logger.js';
import { normaliseMac } from '../nodes/inventory.js';
import { SharedRoots, type SharedRootView } from './service.js';

type ReadConfig = (path: string | undefined) => unknown;

const SHAREDROOT_HELP = `  corral sharedroot create NAME (--from-dir DIR | --from-image IMAGE) (--data-dir DIR | --config FILE)
  corral sharedroot list|show NAME (--data-dir DIR | --config FILE) [--json]
  corral sharedroot edit NAME | publish NAME [--version N] | rollback NAME [--to N] | delete NAME [--version N]
      Shared roots for diskless nodes, exported read-only over NFS (docs/shared-root.md). \`edit\`
      makes a draft copy to change on the master; \`publish\` makes it current for the next boots.
      On the master's machine: these open its data directory.
`;

const DISKLESS_HELP = `  corral node diskless NODE --root NAME [--persistent] (--data-dir DIR | --config FILE)
      Boot a node diskless from a shared root (node → diskless; its agent reboots it). On the
      master's machine.
`;

const OPTIONS = {
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  'from-dir': { type: 'string' },
  'from-image': { type: 'string' },
  version: { type: 'string' },
  to: { type: 'string' },
} as const;

const DISKLESS_OPTIONS = {
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  root: { type: 'string' },
  persistent: { type: 'boolean' },
} as const;

type Values = Parsed<typeof OPTIONS>['values'];

export const sharedRootCommand = defineCommand({
  path: ['sharedroot'],
  verbs: ['create', 'list', 'show', 'edit', 'publish', 'rollback', 'delete'],
  help: SHAREDROOT_HELP,
  options: OPTIONS,
  run: ({ values, positionals: [sub, ...positionals] }, ctx) =>
    runSharedRootCommand(sub, values, positionals, ctx.readConfigFile),
});

export const nodeDisklessCommand = defineCommand({
  path: ['node', 'diskless'],
  help: DISKLESS_HELP,
  options: DISKLESS_OPTIONS,
  run: ({ values, positionals }, ctx) => runDisklessCommand(values, positionals, ctx.readConfigFile),
});

function intOpt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) usage(`${flag} takes a version number`);
  return Number(v);
}

/**
 * The master's config (its file, or just the data directory). Without a file the address is not known;
 * these commands do not need it (only boot scripts and identities do), so a placeholder satisfies the schema.
 */
function configOf(
  values: { 'data-dir'?: string | undefined; config?: string | undefined },
  readConfig: ReadConfig,
): FrozenConfig {
  if (values.config) {
    return buildConfig(readConfig(values.config), values['data-dir'] ? { dataDir: values['data-dir'] } : {});
  }
  if (!values['data-dir']) usage("give --data-dir DIR or --config FILE (the master's)");
  return buildConfig({ dataDir: values['data-dir'], address: '127.0.0.1' }, {});
}

const out = (s: string): void => void process.stdout.write(`${s}\n`);

function describe(r: SharedRootView): string {
  const versions = r.versions
    .map(
      (v) =>
        `${v.version}${v.version === r.currentVersion ? '*' : ''}${v.state === 'draft' ? ' (draft)' : ''}`,
    )
    .join(', ');
  return `${r.name}\tversions ${versions}\tnodes ${r.nodes.join(',') || '-'}\t${r.path}`;
}

async function runSharedRootCommand(
  sub: string | undefined,
  values: Values,
  positionals: string[],
  readConfig: ReadConfig,
): Promise<number> {
  const config = configOf(values, readConfig);
  const repos = openRepos({
    path: join(config.dataDir, 'corral.db'),
    logger: createLogger({ level: 'warn' }),
  });
  const roots = new SharedRoots(repos, config);
  try {
    const name = positionals[0];
    const need = (): string => name ?? usage(`usage: corral sharedroot ${sub} NAME`);
    switch (sub) {
      case 'create': {
        const r = await roots.create(need(), {
          ...(values['from-dir'] ? { dir: values['from-dir'] } : {}),
          ...(values['from-image'] ? { image: values['from-image'] } : {}),
        });
        out(values.json ? JSON.stringify(r, null, 2) : `created ${describe(r)}`);
        return 0;
      }
      case 'list': {
        const all = roots.list();
        out(values.json ? JSON.stringify(all, null, 2) : all.map(describe).join('\n') || '(no shared roots)');
        return 0;
      }
      case 'show':
        out(JSON.stringify(roots.get(need()), null, 2));
        return 0;
      case 'edit': {
        const d = await roots.edit(need());
        out(
          `draft version ${d.version} of ${name}: edit ${d.path}, then \`corral sharedroot publish ${name}\``,
        );
        return 0;
      }
      case 'publish':
        out(`published ${describe(roots.publish(need(), intOpt(values.version, '--version')))}`);
        return 0;
      case 'rollback':
        out(`rolled back ${describe(roots.rollback(need(), intOpt(values.to, '--to')))}`);
        return 0;
      case 'delete':
        await roots.remove(need(), intOpt(values.version, '--version'));
        out(`deleted ${name}${values.version ? ` version ${values.version}` : ''}`);
        return 0;
      default:
        return usage('usage: corral sharedroot create|list|show|edit|publish|rollback|delete ...');
    }
  } finally {
    repos.store.close();
  }
}

async function runDisklessCommand(
  values: Parsed<typeof DISKLESS_OPTIONS>['values'],
  positionals: string[],
  readConfig: ReadConfig,
): Promise<number> {
  const id = positionals[0];
  if (!id || !values.root)
    usage('usage: corral node diskless NODE --root NAME [--persistent] (--data-dir DIR | --config FILE)');
  const config = configOf(values, readConfig);
  const repos = openRepos({
    path: join(config.dataDir, 'corral.db'),
    logger: createLogger({ level: 'warn' }),
  });
  try {
    const mac = normaliseMac(id);
    const node = (mac && repos.nodes.get(mac)) || repos.nodes.getByName(id);
    if (!node) throw new CorralError('NODE_NOT_FOUND', `no node with MAC or name '${id}'`);
    const a = new SharedRoots(repos, config).assign(node, values.root, {
      persistent: values.persistent ?? false,
      actor: 'cli',
    });
    out(
      `${node.name}: diskless from shared root ${a.rootName}${a.persistent ? ' with a persistent directory' : ''}; its agent is told to reboot at its next poll`,
    );
    return 0;
  } finally {
    repos.store.close();
  }
}
