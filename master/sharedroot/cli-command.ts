/**
 * `corral sharedroot ...` and `corral node diskless NODE --root NAME`. Like `corral image`, these open
 * the master's database directly (SQLite WAL, safe beside a running master); the running master's
 * reconcile loop then brings the NFS exports in line within `sharedRoot.reconcileSeconds`. They run on the
 * master's machine (create reads a local directory, edit hands back a path there); cli.ts parses the flags.
 */
import { defineCommand, onMasterFiles, usage, type Parsed } from '../cli/command.js';
import type { ApiClient } from '../cli/api-client.js';
import { join } from 'node:path';
import { buildConfig, type FrozenConfig } from '../config.js';
import { openRepos } from '../store/repos.js';
import { createLogger } from '../util/logger.js';
import { findNode } from '../nodes/service.js';
import { SharedRoots, type SharedRootView } from './service.js';

type ReadConfig = (path: string | undefined) => unknown;

const SHAREDROOT_HELP = `  corral sharedroot create NAME (--from-dir DIR | --from-image IMAGE)
  corral sharedroot list|show NAME [--json]
  corral sharedroot edit NAME | publish NAME [--version N] | rollback NAME [--to N] | delete NAME [--version N]
      Shared roots for diskless nodes, exported read-only over NFS (docs/shared-root.md), on the
      master of the current profile (or --profile NAME); --from-dir is a directory on the master.
      \`edit\` makes a draft copy to change on the master; \`publish\` makes it current for the next
      boots. With --data-dir DIR or --config FILE instead, on the master's machine (its files).
`;

const DISKLESS_HELP = `  corral node diskless NODE --root NAME [--persistent] [--profile NAME]
      Boot a node diskless from a shared root (node → diskless; its agent reboots it), through
      the profile's master; with --data-dir DIR or --config FILE instead, on the master's machine.
`;

const OPTIONS = {
  profile: { type: 'string' },
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  'from-dir': { type: 'string' },
  'from-image': { type: 'string' },
  version: { type: 'string' },
  to: { type: 'string' },
} as const;

const DISKLESS_OPTIONS = {
  profile: { type: 'string' },
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
  run: async ({ values, positionals: [sub, ...positionals] }, ctx) =>
    onMasterFiles(values)
      ? runSharedRootCommand(sub, values, positionals, ctx.readConfigFile)
      : sharedRootViaApi(sub, values, positionals, await ctx.api(values.profile)),
});

export const nodeDisklessCommand = defineCommand({
  path: ['node', 'diskless'],
  help: DISKLESS_HELP,
  options: DISKLESS_OPTIONS,
  run: async ({ values, positionals }, ctx) =>
    onMasterFiles(values)
      ? runDisklessCommand(values, positionals, ctx.readConfigFile)
      : disklessViaApi(values, positionals, await ctx.api(values.profile)),
});

async function sharedRootViaApi(
  sub: string | undefined,
  values: Values,
  positionals: string[],
  api: ApiClient,
): Promise<number> {
  const name = positionals[0];
  const need = (): string => encodeURIComponent(name ?? usage(`usage: corral sharedroot ${sub} NAME`));
  type One = { sharedRoot: SharedRootView };
  // Creating and publishing copy or reconcile file trees on the master: minutes, not seconds.
  const slow = 600_000;
  switch (sub) {
    case 'create': {
      const { sharedRoot: r } = await api.call<One>(
        'POST',
        '/sharedroots',
        {
          name: name ?? usage('usage: corral sharedroot create NAME'),
          ...(values['from-dir'] ? { fromDir: values['from-dir'] } : {}),
          ...(values['from-image'] ? { fromImage: values['from-image'] } : {}),
        },
        slow,
      );
      out(values.json ? JSON.stringify(r, null, 2) : `created ${describe(r)}`);
      return 0;
    }
    case 'list': {
      const { sharedRoots: all } = await api.call<{ sharedRoots: SharedRootView[] }>('GET', '/sharedroots');
      out(values.json ? JSON.stringify(all, null, 2) : all.map(describe).join('\n') || '(no shared roots)');
      return 0;
    }
    case 'show':
      out(JSON.stringify((await api.call<One>('GET', `/sharedroots/${need()}`)).sharedRoot, null, 2));
      return 0;
    case 'edit': {
      const d = await api.call<{ version: number; path: string }>(
        'POST',
        `/sharedroots/${need()}/edit`,
        {},
        slow,
      );
      out(
        `draft version ${d.version} of ${name}: edit ${d.path} on the master, then \`corral sharedroot publish ${name}\``,
      );
      return 0;
    }
    case 'publish': {
      const version = intOpt(values.version, '--version');
      const { sharedRoot: r } = await api.call<One>(
        'POST',
        `/sharedroots/${need()}/publish`,
        version !== undefined ? { version } : {},
        slow,
      );
      out(`published ${describe(r)}`);
      return 0;
    }
    case 'rollback': {
      const to = intOpt(values.to, '--to');
      const { sharedRoot: r } = await api.call<One>(
        'POST',
        `/sharedroots/${need()}/rollback`,
        to !== undefined ? { to } : {},
        slow,
      );
      out(`rolled back ${describe(r)}`);
      return 0;
    }
    case 'delete': {
      const version = intOpt(values.version, '--version');
      await api.call(
        'DELETE',
        `/sharedroots/${need()}${version !== undefined ? `?version=${version}` : ''}`,
        undefined,
        slow,
      );
      out(`deleted ${name}${values.version ? ` version ${values.version}` : ''}`);
      return 0;
    }
    default:
      return usage('usage: corral sharedroot create|list|show|edit|publish|rollback|delete ...');
  }
}

async function disklessViaApi(
  values: Parsed<typeof DISKLESS_OPTIONS>['values'],
  positionals: string[],
  api: ApiClient,
): Promise<number> {
  const id = positionals[0];
  if (!id || !values.root) usage('usage: corral node diskless NODE --root NAME [--persistent]');
  const { node, assignment: a } = await api.call<{
    node: { name: string };
    assignment: { rootName: string; persistent: boolean };
  }>('POST', `/nodes/${encodeURIComponent(id)}/diskless`, {
    root: values.root,
    ...(values.persistent ? { persistent: true } : {}),
  });
  out(
    `${node.name}: diskless from shared root ${a.rootName}${a.persistent ? ' with a persistent directory' : ''}; its agent is told to reboot at its next poll`,
  );
  return 0;
}

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
    const node = findNode(repos.nodes, id);
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
