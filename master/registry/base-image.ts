/**
 * Corral's base image, `corral/base:<tag>`: the root file system of a registered OS image (by default the
 * debian-12 that `corral image build-debian` makes and nodes install) as one layer, pushed to the master's
 * registry. The engine runs an app's command line in it, so a lab needs nothing from the internet. The
 * same function serves the feature's automatic push and `corral registry push-base`.
 */
import type { Repos } from '../store/repos.js';
import { imagePath } from '../images/registry.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { BASE_REPOSITORY } from './config.js';
import { pushImage, type PushResult } from './push.js';
import { fromRegisteredImage, fromTree } from './sources.js';

export interface PushBaseOptions {
  registry: string;
  tag: string;
  /** A root file system tree to push instead of a registered image (tests: a busybox tree). */
  tree?: string;
  /** The registered OS image's name. */
  image?: string;
  repos?: Pick<Repos, 'images'>;
  dataDir: string;
  cacheDir: string;
  logger: Logger;
  onProgress?: (digest: string, sent: number, size: number) => void;
}

export async function pushBaseImage(o: PushBaseOptions): Promise<PushResult> {
  let built;
  if (o.tree) {
    built = await fromTree(o.tree, o.cacheDir);
  } else {
    const record = o.image ? o.repos?.images.getByName(o.image) : undefined;
    if (!record) {
      throw new CorralError(
        'IMAGE_NOT_FOUND',
        `no registered image named '${o.image ?? ''}' for the base image: run corral image build-debian, or give --tree DIR`,
      );
    }
    built = await fromRegisteredImage(record, imagePath(o.dataDir, record), o.cacheDir, o.logger);
  }
  return pushImage({
    registry: o.registry,
    repository: BASE_REPOSITORY,
    tag: o.tag,
    image: built,
    logger: o.logger,
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
}
