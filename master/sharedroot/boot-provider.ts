/**
 * Shared root's part of the boot decision (boot/decision.ts): a diskless node whose shared root is
 * known here boots the node environment mounting it over NFS (the parameters come from
 * SharedRoots.bootFor). A diskless node without one is left to discovery.
 */
import type { BootProvider } from '../boot/decision.js';
import { sharedRootScript } from '../boot/scripts.js';
import type { NodeRecord } from '../store/nodes.js';
import type { DisklessBoot } from './service.js';

export function sharedRootBootProvider(roots: {
  bootFor(node: NodeRecord): DisklessBoot | undefined;
}): BootProvider {
  return {
    name: 'sharedroot',
    needsNodeImage: true,
    decide: (f) => {
      if (f.node?.state !== 'diskless') return undefined;
      const sr = roots.bootFor(f.node);
      return sr ? sharedRootScript(f, f.node.name, sr) : undefined;
    },
  };
}
