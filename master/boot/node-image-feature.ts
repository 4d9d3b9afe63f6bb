/**
 * The node environment (Debian kernel + Corral initramfs) as a feature: built, or refreshed, in the
 * background at start (nodeImage.autoBuild); the boot routes serve its files once they exist.
 */
import type { Started } from '../feature.js';
import {
  startNodeImageBuilder,
  type NodeImageBuilder,
  type NodeImageBuilderDeps,
} from './node-image-builder.js';

export function startNodeImage(deps: NodeImageBuilderDeps): Started<{ nodeImage: NodeImageBuilder }> {
  const nodeImage = startNodeImageBuilder(deps);
  return {
    nodeImage,
    health: () => ({ nodeImage: nodeImage.status() }),
    close: () => nodeImage.close(),
  };
}
