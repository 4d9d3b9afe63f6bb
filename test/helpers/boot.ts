import type { NodeRecord } from '../../master/store/nodes.js';
import type { DisklessBoot } from '../../master/sharedroot/service.js';
import { decideBoot, type BootDecision } from '../../master/boot/decision.js';
import { bootOrder } from '../../master/boot/surface.js';
import { BOOT_FAILURE_DEFAULTS, type BootFailurePolicy } from '../../master/boot/config.js';

/** One boot request's facts, with the features' answers given in place of the store's. */
export interface BootCase {
  mac: string;
  node: NodeRecord | undefined;
  baseUrl: string;
  kernelArgs: string;
  nodeImageReady: boolean;
  nodeImageStatus?: string;
  /** The node's latest deployment, as deploy's provider would read it. */
  deployment?: { id: number; status: string };
  /** The node's shared root, as shared root's provider would read it. */
  sharedRoot?: DisklessBoot | Omit<DisklessBoot, 'rootId'>;
  /** The request's `attempt` (0: from DHCP). */
  attempt?: number;
  /** boot.onFailure and friends; the defaults when not given. */
  failure?: BootFailurePolicy;
}

/** The master's decision (decideBoot over the real providers, in the real order) for one case. */
export function decide(c: BootCase): BootDecision {
  const providers = bootOrder({
    deployments: { latestDeployment: () => c.deployment },
    sharedRoots: { bootFor: () => (c.sharedRoot ? { rootId: 'r', ...c.sharedRoot } : undefined) },
  });
  return decideBoot(
    {
      mac: c.mac,
      node: c.node,
      baseUrl: c.baseUrl,
      kernelArgs: c.kernelArgs,
      nodeImage: { ready: c.nodeImageReady, status: c.nodeImageStatus },
      attempt: c.attempt ?? 0,
      failure: c.failure ?? BOOT_FAILURE_DEFAULTS,
    },
    providers,
  );
}
