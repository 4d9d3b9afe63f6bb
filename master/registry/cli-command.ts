/**
 * `corral registry push-base|push`: on the master's machine, with its config file (the registry's
 * address and the data directory come from it). push-base pushes Corral's base image (a registered OS
 * image, or a tree); push sends an operator's `docker save` archive through the same code.
 */
import { join } from 'node:path';
import { defineCommand, usage } from '../cli/command.js';
import { buildConfig } from '../config.js';
import { openRepos } from '../store/repos.js';
import { createLogger } from '../util/logger.js';
import { pushBaseImage } from './base-image.js';
import { pushImage, type PushResult } from './push.js';
import { parseReference } from './reference.js';
import { fromDockerArchive } from './sources.js';

const HELP = `  corral registry push-base --config FILE [--tag debian-12] [--image NAME | --tree DIR]
      Push Corral's base image (corral/base:TAG) to the master's registry: the root file system of
      the registered OS image (registry.baseImage, default debian-12), or of a directory. Blobs the
      registry has are skipped, so pushing again is cheap (docs/registry.md).
  corral registry push ARCHIVE.tar --config FILE [--as NAME:TAG]
      Push an image saved with \`docker save\` (its first image; NAME:TAG defaults to its own tag).
      Both: --registry http://HOST:PORT pushes elsewhere than the config's registry; --data-dir DIR
      overrides the config's; --json prints the result (digests, blobs uploaded or present).
`;

function summary(r: PushResult): string {
  const uploaded = r.blobs.filter((b) => b.uploaded);
  const bytes = uploaded.reduce((n, b) => n + b.size, 0);
  return `pushed ${r.repository}:${r.tag} ${r.manifestDigest}: ${uploaded.length} blob(s) uploaded (${bytes} bytes), ${r.blobs.length - uploaded.length} already present, ${r.ms} ms`;
}

export const registryCommand = defineCommand({
  path: ['registry'],
  verbs: ['push-base', 'push'],
  help: HELP,
  options: {
    config: { type: 'string' },
    'data-dir': { type: 'string' },
    tag: { type: 'string' },
    image: { type: 'string' },
    tree: { type: 'string' },
    as: { type: 'string' },
    registry: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ values, positionals: [verb, ...rest] }, ctx) {
    if (verb !== 'push-base' && verb !== 'push')
      usage('usage: corral registry push-base|push ... --config FILE');
    if (values.config === undefined)
      usage('give --config FILE (the master config: registry address, data directory)');
    const config = buildConfig(ctx.readConfigFile(values.config), {
      ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
    });
    const registry =
      values.registry ?? `http://${config.registry.bind ?? config.address}:${config.registry.port}`;
    const logger = ctx.logger('info');
    const cacheDir = config.nodeImage.cacheDir;
    let result: PushResult;
    if (verb === 'push-base') {
      if (values.image !== undefined && values.tree !== undefined)
        usage('--image and --tree exclude each other');
      const repos = values.tree
        ? undefined
        : openRepos({ path: join(config.dataDir, 'corral.db'), logger: createLogger({ level: 'warn' }) });
      try {
        result = await pushBaseImage({
          registry,
          tag: values.tag ?? config.registry.baseTag,
          ...(values.tree ? { tree: values.tree } : { image: values.image ?? config.registry.baseImage }),
          ...(repos ? { repos } : {}),
          dataDir: config.dataDir,
          cacheDir,
          logger,
        });
      } finally {
        repos?.store.close();
      }
    } else {
      const archive =
        rest[0] ?? usage('usage: corral registry push ARCHIVE.tar --config FILE [--as NAME:TAG]');
      const { image, reference } = await fromDockerArchive(archive, cacheDir);
      const target = values.as ? parseReference(values.as) : reference;
      if (!target) usage(`${archive} names no image tag: give --as NAME:TAG`);
      result = await pushImage({ registry, repository: target.repository, tag: target.tag, image, logger });
    }
    ctx.out(`${values.json ? JSON.stringify(result) : summary(result)}\n`);
    return 0;
  },
});
