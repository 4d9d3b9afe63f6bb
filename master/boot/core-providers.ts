/**
 * The two boot providers that belong to no optional feature: a deployed node boots its disk, and
 * anything no feature claims runs discovery. See decision.ts for the contract.
 */
import type { BootProvider } from './decision.js';
import { discoverScript, localDiskScript } from './scripts.js';

/** A deployed node boots its local disk; needs nothing from the master, so it is asked first. */
export const diskBootProvider: BootProvider = {
  name: 'disk',
  needsNodeImage: false,
  decide: (f) =>
    f.node?.state === 'deployed' ? localDiskScript(f, f.node.name, `${f.node.name} deployed`) : undefined,
};

/**
 * Everything else runs discovery, whose agent enlists the node and polls the master for what to do:
 * unknown and new nodes, a deploying node whose deployment is missing or ended (failed, superseded), a
 * diskless node whose shared root is not known here. Never declines, so it is the last provider.
 */
export const discoveryBootProvider: BootProvider = {
  name: 'discovery',
  needsNodeImage: true,
  decide: (f) => discoverScript(f, f.node),
};
