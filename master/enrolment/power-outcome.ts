/**
 * A rule's power-driver default for BMC drivers (issue 20): the BMC address comes from the machine's own
 * facts through a pattern, since each machine's BMC differs while a site's convention does not — e.g.
 * `10.0.5.{ip4}` (the BMC network mirrors the last octet of the node's address) or `idrac-{serial}` (the
 * default host name of a Dell iDRAC is its service tag). Pure.
 */
import type { NodeRecord } from '../store/nodes.js';
import { labelPart } from './name-pattern.js';

export const BMC_ADDRESS_PLACEHOLDERS = ['ip', 'ip4', 'serial', 'mac'] as const;

/** Host-name and address characters, and the placeholders above. */
export const BMC_ADDRESS_PATTERN = /^(?:[A-Za-z0-9.:-]|\{(?:ip|ip4|serial|mac)\})+$/;

/**
 * The BMC address for a node, or a sentence naming the fact it lacks (a node without an address yet,
 * or without a DMI serial number).
 */
export function bmcAddressFor(
  pattern: string,
  node: Pick<NodeRecord, 'ip' | 'mac' | 'inventory'>,
): { address: string } | { missing: string } {
  const serial = (node.inventory as { dmi?: { serial?: string | null } }).dmi?.serial ?? null;
  const values: Record<string, string | null> = {
    ip: node.ip,
    ip4: node.ip && /^\d+\.\d+\.\d+\.\d+$/.test(node.ip) ? (node.ip.split('.')[3] ?? null) : null,
    serial: serial ? labelPart(serial) || null : null,
    mac: node.mac.replace(/:/g, ''),
  };
  let missing: string | undefined;
  const address = pattern.replace(/\{([a-z0-9]+)\}/g, (_m, key: string) => {
    const v = values[key];
    if (!v) missing ??= `the node has no {${key}} fact for the BMC address pattern ${pattern}`;
    return v ?? '';
  });
  return missing ? { missing } : { address };
}
