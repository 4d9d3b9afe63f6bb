/**
 * The boot decision: what a node that asked `/boot/ipxe` boots. Pure, like DHCP's `decide()`: the facts
 * of the request and a list of providers in, one script out; the surface (surface.ts) gathers the facts,
 * renders and sends. Each feature owns its part as a BootProvider (its own folder's boot-provider.ts);
 * the order they are asked in is the priority, written once in `bootOrder` (surface.ts) and in
 * docs/boot-surface.md.
 */
import type { NodeRecord } from '../store/nodes.js';
import { askMacScript, fallbackScript, waitScript, type BootScript, type ScriptBase } from './scripts.js';

/** What the master knows when a node asks for its boot script. */
export interface BootFacts extends ScriptBase {
  /** The node record of the MAC, or undefined for a machine Corral has not met. */
  node: NodeRecord | undefined;
  /** Whether the node environment (kernel + initramfs) is built; while not, where its build stands. */
  nodeImage: { ready: boolean; status?: string | undefined };
}

/** A request as it came: the MAC, if it named one (normalised; undefined otherwise). */
export type BootRequestFacts = Omit<BootFacts, 'mac'> & { mac: string | undefined };

export interface BootProvider {
  /** Names the decision in logs and the boot timeline: 'disk', 'deploy', 'sharedroot', 'discovery'. */
  name: string;
  /**
   * Asked only once the node environment is built: its scripts boot that kernel and initramfs. While it
   * is not, a node that reaches such a provider is told to wait (no-image.hbs) and asks again.
   */
  needsNodeImage: boolean;
  /** This feature's script for the node, or undefined to leave it to the next provider. */
  decide(facts: BootFacts): BootScript | undefined;
}

export interface BootDecision extends BootScript {
  /** The provider that chose, or 'ask-mac' / 'fallback' / 'wait' for the decision's own answers. */
  by: string;
}

/**
 * Asks `providers` in order; the first answer wins. The last provider must always answer (discovery
 * does): a node that no provider claims would otherwise get nothing and stop at the firmware.
 */
export function decideBoot(facts: BootRequestFacts, providers: readonly BootProvider[]): BootDecision {
  const { mac } = facts;
  if (!mac) return { by: 'ask-mac', ...askMacScript(facts.baseUrl) };
  const f: BootFacts = { ...facts, mac };
  // A node whose boot failed more often than boot.retries allows gets the operator's fallback (issue 18),
  // whatever its state: asking a provider again would only repeat the failure.
  if (f.failure.onFailure !== 'retry-forever' && f.attempt > f.failure.retries) {
    return { by: 'fallback', ...fallbackScript(f, f.node) };
  }
  for (const p of providers) {
    if (p.needsNodeImage && !f.nodeImage.ready) return { by: 'wait', ...waitScript(f, f.nodeImage.status) };
    const script = p.decide(f);
    if (script) return { by: p.name, ...script };
  }
  throw new Error(`no boot provider answered for ${mac}: the last one (${providers.at(-1)?.name}) must`);
}
