/**
 * `corral image import|list|show|delete|build-debian` and `corral node deploy`: the CLI side of issue 5.
 * They declare their flags; cli.ts parses them and hands in its config-file reader. These commands open
 * the master's database directly (SQLite WAL: safe beside a running master, which reads state per
 * request), so they run on the master's own machine, as root.
 */
import { defineCommand, onMasterFiles, usage, type Parsed } from '../cli/command.js';
import type { ApiClient } from '../cli/api-client.js';
import type { NodeRecord } from '../store/nodes.js';
import { join } from 'node:path';
import { buildConfig, type FrozenConfig } from '../config.js';
import { openRepos, type Repos } from '../store/repos.js';
import { createLogger } from '../util/logger.js';
import { deleteImage, findImage, importImage } from './registry.js';
import { buildOsImage, isOsImageVariant, OS_IMAGE_VARIANTS } from '../../node-images/os-image.js';
import { ensureMasterKey } from '../deploy/ssh.js';
import { createDeployer, describeReboot, type RebootPath } from '../deploy/deployer.js';
import { createPowerControl } from '../remote/power.js';
import { SecretBox } from '../remote/secrets.js';
import { findNode } from '../nodes/service.js';
import type { ImageRecord } from '../store/images.js';
import { directBeforeRisky } from '../snapshots/index.js';

type ReadConfig = (path: string | undefined) => unknown;

const IMAGE_HELP = `  corral image list|show NAME|delete NAME [--json] [--profile NAME]
      The master's OS images, through the API of the current profile's master. With --data-dir
      DIR or --config FILE instead, on the master's machine (also while it is stopped).
  corral image import FILE|DIR --name NAME (--data-dir DIR | --config FILE) [--os ID --os-version V]
  corral image build-debian [--name debian-12] [--variant engine] [--cache-dir DIR] (--data-dir DIR | --config FILE)
      Import an OS image already on the master's disk: tar/tar.gz/tar.zst root file systems or
      raw/raw.gz/qcow2 disks (docs/deploy.md); on the master's machine, into its data directory.
`;

const DEPLOY_HELP = `  corral node deploy NODE --image NAME [--layout L] [--json] [--profile NAME]
      Install an image on a node's disk (node → deploying; rebooted by its agent or over SSH),
      by the master of the current profile. With --config FILE [--data-dir DIR] instead, from
      the master's machine with its config file.
`;

const COMMON = {
  profile: { type: 'string' },
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const IMAGE_OPTIONS = {
  ...COMMON,
  name: { type: 'string' },
  variant: { type: 'string' },
  os: { type: 'string' },
  'os-version': { type: 'string' },
  'cache-dir': { type: 'string', default: '/var/cache/corral' },
} as const;

const DEPLOY_OPTIONS = { ...COMMON, image: { type: 'string' }, layout: { type: 'string' } } as const;

function dataDirOf(values: Record<string, unknown>, readConfig: ReadConfig): string {
  if (typeof values['data-dir'] === 'string') return values['data-dir'];
  const file = readConfig(typeof values['config'] === 'string' ? values['config'] : undefined) as
    { dataDir?: unknown } | undefined;
  if (file && typeof file.dataDir === 'string') return file.dataDir;
  return usage("give --data-dir DIR or --config FILE (the master's)");
}

function open(dataDir: string): Repos {
  return openRepos({ path: join(dataDir, 'corral.db'), logger: createLogger({ level: 'warn' }) });
}

function line(i: ImageRecord, usedBy: string[]): string {
  const mib = (i.sizeBytes / 2 ** 20).toFixed(1);
  return `${i.name.padEnd(24)} ${i.format.padEnd(8)} ${`${mib} MiB`.padStart(11)}  ${`${i.osName ?? '-'} ${i.osVersion ?? ''}`.padEnd(16)} ${i.sha256.slice(0, 12)}  ${usedBy.join(',') || '-'}`;
}

const out = (s: string): void => void process.stdout.write(`${s}\n`);

export const imageCommand = defineCommand({
  path: ['image'],
  verbs: ['import', 'list', 'show', 'delete', 'build-debian'],
  help: IMAGE_HELP,
  options: IMAGE_OPTIONS,
  run: async ({ values, positionals: [sub, ...positionals] }, ctx) =>
    onMasterFiles(values) || sub === 'import' || sub === 'build-debian'
      ? runImage(sub, values, positionals, ctx.readConfigFile)
      : imageViaApi(sub, values, positionals, await ctx.api(values.profile)),
});

export const nodeDeployCommand = defineCommand({
  path: ['node', 'deploy'],
  help: DEPLOY_HELP,
  options: DEPLOY_OPTIONS,
  run: async ({ values, positionals }, ctx) =>
    onMasterFiles(values)
      ? runNodeDeploy(values, positionals, ctx.readConfigFile)
      : deployViaApi(values, positionals, await ctx.api(values.profile)),
});

type ImageView = ImageRecord & { usedBy: string[] };

async function imageViaApi(
  sub: string | undefined,
  values: Parsed<typeof IMAGE_OPTIONS>['values'],
  positionals: string[],
  api: ApiClient,
): Promise<number> {
  const named = (): string => encodeURIComponent(positionals[0] ?? usage(`usage: corral image ${sub} NAME`));
  switch (sub) {
    case 'list': {
      const { images } = await api.call<{ images: ImageView[] }>('GET', '/images');
      if (values.json) out(JSON.stringify(images));
      else {
        out(
          `${'NAME'.padEnd(24)} ${'FORMAT'.padEnd(8)} ${'SIZE'.padStart(11)}  ${'OS'.padEnd(16)} SHA256        USED BY`,
        );
        for (const i of images) out(line(i, i.usedBy));
      }
      return 0;
    }
    case 'show': {
      const { image } = await api.call<{ image: ImageView }>('GET', `/images/${named()}`);
      out(JSON.stringify(image, null, 2));
      return 0;
    }
    case 'delete': {
      // The master takes its automatic restore point first (snapshots.beforeRisky): allow for it.
      await api.call('DELETE', `/images/${named()}`, undefined, 600_000);
      out(`deleted ${positionals[0]}`);
      return 0;
    }
    default:
      return usage('usage: corral image list|show|delete ... (import and build-debian: --data-dir DIR)');
  }
}

async function deployViaApi(
  values: Parsed<typeof DEPLOY_OPTIONS>['values'],
  positionals: string[],
  api: ApiClient,
): Promise<number> {
  const id = positionals[0];
  if (!id || !values.image) usage('usage: corral node deploy NODE --image NAME [--layout L]');
  const r = await api.call<{ deployment: { id: number }; reboot: RebootPath; node: NodeRecord }>(
    'POST',
    `/nodes/${encodeURIComponent(id)}/deploy`,
    { image: values.image, ...(values.layout ? { layout: values.layout } : {}) },
    120_000,
  );
  out(
    values.json
      ? JSON.stringify(r)
      : `${r.node.name}: deploying ${values.image} (deployment ${r.deployment.id}); ${describeReboot(r.reboot)}`,
  );
  return 0;
}

async function runImage(
  sub: string | undefined,
  values: Parsed<typeof IMAGE_OPTIONS>['values'],
  positionals: string[],
  readConfig: ReadConfig,
): Promise<number> {
  const dataDir = dataDirOf(values, readConfig);
  const repos = open(dataDir);
  try {
    switch (sub) {
      case 'import': {
        const source = positionals[0];
        if (!source || !values.name) usage('usage: corral image import FILE|DIR --name NAME --data-dir DIR');
        const img = await importImage({
          repos,
          dataDir,
          logger: createLogger({ level: 'warn' }),
          source,
          name: values.name,
          ...(values.os ? { osName: values.os } : {}),
          ...(values['os-version'] ? { osVersion: values['os-version'] } : {}),
        });
        out(
          values.json
            ? JSON.stringify(img)
            : `imported ${img.name}: ${img.format}, ${img.sizeBytes} bytes, sha256 ${img.sha256}`,
        );
        return 0;
      }
      case 'build-debian': {
        // Builds (cached) the small Debian image and imports it (once) under --name (default debian-12).
        // --variant engine adds docker.io for the apps' engine nodes (docs/apps.md).
        const variant = values.variant ?? 'default';
        if (!isOsImageVariant(variant))
          return usage(`--variant: one of ${Object.keys(OS_IMAGE_VARIANTS).join(', ')}`);
        const name = values.name ?? (variant === 'default' ? 'debian-12' : `debian-12-${variant}`);
        const built = await buildOsImage({
          cacheDir: values['cache-dir'] ?? '/var/cache/corral',
          logger: createLogger({ level: 'warn' }),
          variant,
        });
        const existing = repos.images.get(built.sha256);
        const img =
          existing ??
          (await importImage({
            repos,
            dataDir,
            logger: createLogger({ level: 'warn' }),
            source: built.path,
            name,
          }));
        out(
          values.json
            ? JSON.stringify(img)
            : `${existing ? 'already registered' : 'imported'} ${img.name}: sha256 ${img.sha256}`,
        );
        return 0;
      }
      case 'list': {
        const images = repos.images.list();
        if (values.json)
          out(JSON.stringify(images.map((i) => ({ ...i, usedBy: repos.images.usedBy(i.sha256) }))));
        else {
          out(
            `${'NAME'.padEnd(24)} ${'FORMAT'.padEnd(8)} ${'SIZE'.padStart(11)}  ${'OS'.padEnd(16)} SHA256        USED BY`,
          );
          for (const i of images) out(line(i, repos.images.usedBy(i.sha256)));
        }
        return 0;
      }
      case 'show': {
        const img = findImage(repos, positionals[0] ?? usage('usage: corral image show NAME'));
        out(JSON.stringify({ ...img, usedBy: repos.images.usedBy(img.sha256) }, null, 2));
        return 0;
      }
      case 'delete': {
        const name = positionals[0] ?? usage('usage: corral image delete NAME');
        // With the master's config file its snapshots settings apply (beforeRisky, dir).
        const config =
          typeof values.config === 'string' ? buildConfig(readConfig(values.config), { dataDir }) : undefined;
        const beforeRisky = directBeforeRisky({
          repos,
          dataDir,
          ...(config ? { config } : {}),
          logger: createLogger({ level: 'warn' }),
        });
        const img = await deleteImage(repos, dataDir, name, 'cli', beforeRisky);
        out(`deleted ${img.name}`);
        return 0;
      }
      default:
        return usage('usage: corral image import|build-debian|list|show|delete ...');
    }
  } finally {
    repos.store.close();
  }
}

async function runNodeDeploy(
  values: Parsed<typeof DEPLOY_OPTIONS>['values'],
  positionals: string[],
  readConfig: ReadConfig,
): Promise<number> {
  const id = positionals[0];
  if (!id || !values.image) usage('usage: corral node deploy NODE --image NAME [--layout L] --config FILE');
  // The plan needs the master's address and layouts: its config file.
  const config: FrozenConfig = buildConfig(readConfig(values.config), {
    ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
  });
  const repos = open(config.dataDir);
  try {
    const node = findNode(repos.nodes, id);
    const logger = createLogger({ level: 'warn' });
    // Like `corral node power`, the CLI drives the node's BMC from this machine.
    const power = createPowerControl({
      repos,
      config,
      logger,
      secrets: SecretBox.forDataDir(config.dataDir),
    });
    const deployer = createDeployer({
      repos,
      config,
      logger,
      key: await ensureMasterKey(config.dataDir),
      power,
    });
    const { deployment, reboot } = await deployer.deploy(node, {
      image: values.image,
      layout: values.layout,
      actor: 'cli',
    });
    out(`${node.name}: deploying ${values.image} (deployment ${deployment.id}); ${describeReboot(reboot)}`);
    return 0;
  } finally {
    repos.store.close();
  }
}
