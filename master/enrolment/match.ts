/**
 * The enrolment matcher (issue 16): inventory facts in, the first rule that catches the machine out.
 * Pure: no store, no clock; the service (service.ts) feeds it rules, facts and counts, and the dry run
 * feeds it the same with simulated counts. A fact the node did not report never matches a test on it
 * (a rule asking for ≥ 64 GiB does not catch a machine whose memory is unknown).
 */
import type { Inventory } from '../nodes/inventory.js';
import { isIPv4 } from 'node:net';
import { compilePattern } from './pattern.js';
import { PATTERN_FIELDS, type RuleMatch } from './rule.js';

const GiB = 2 ** 30;

export interface NodeFacts {
  /** The boot MAC first, then every NIC's. */
  macs: string[];
  vendor: string | null;
  product: string | null;
  serial: string | null;
  cpuModel: string | null;
  cpuCount: number | null;
  memoryGiB: number | null;
  diskCount: number;
  /** The largest disk. */
  diskGiB: number | null;
  nicCount: number;
  /** The fastest NIC's reported link speed. */
  nicSpeedMbps: number | null;
  firmware: 'bios' | 'uefi' | null;
  /** The node's recorded address (its lease in DHCP server mode). */
  ip: string | null;
  tags: readonly string[];
}

/** What a node record holds that the facts come from. */
export interface FactSource {
  mac: string;
  ip: string | null;
  firmware: string | null;
  inventory: Record<string, unknown>;
  tags?: readonly string[];
}

export function factsOf(node: FactSource): NodeFacts {
  // The inventory was validated by InventorySchema at enlistment; a row from an older agent may lack fields.
  const inv = node.inventory as Inventory;
  const disks = inv.disks ?? [];
  const nics = inv.nics ?? [];
  const speeds = nics.map((n) => n.speedMbps).filter((s): s is number => typeof s === 'number');
  const firmware = inv.firmware ?? node.firmware;
  return {
    macs: [node.mac, ...nics.map((n) => (n.mac ?? '').toLowerCase()).filter((m) => m && m !== node.mac)],
    vendor: inv.dmi?.vendor ?? null,
    product: inv.dmi?.product ?? null,
    serial: inv.dmi?.serial ?? null,
    cpuModel: inv.cpu?.model ?? null,
    cpuCount: inv.cpu?.count ?? null,
    memoryGiB: typeof inv.memoryBytes === 'number' ? inv.memoryBytes / GiB : null,
    diskCount: disks.length,
    diskGiB: disks.length ? Math.max(...disks.map((d) => d.sizeBytes)) / GiB : null,
    nicCount: nics.length,
    nicSpeedMbps: speeds.length ? Math.max(...speeds) : null,
    firmware: firmware === 'bios' || firmware === 'uefi' ? firmware : null,
    ip: node.ip,
    tags: node.tags ?? [],
  };
}

/** Dotted quad → 32-bit number, or undefined for anything else. */
function ipv4ToInt(ip: string): number | undefined {
  return isIPv4(ip) ? ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0) : undefined;
}

function inSubnet(ip: string, cidr: string): boolean {
  const [net = '', bitsText = '32'] = cidr.split('/');
  const bits = Number(bitsText);
  const a = ipv4ToInt(ip);
  const n = ipv4ToInt(net);
  if (a === undefined || n === undefined) return false;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (a & mask) >>> 0 === (n & mask) >>> 0;
}

const RANGE_FIELDS = [
  'cpuCount',
  'memoryGiB',
  'diskCount',
  'diskGiB',
  'nicCount',
  'nicSpeedMbps',
] as const satisfies readonly (keyof RuleMatch & keyof NodeFacts)[];

/** Why `match` does not catch the machine, or null when it does (the dry run shows the reason). */
export function mismatch(match: RuleMatch, facts: NodeFacts): string | null {
  if (match.mac && !facts.macs.some((m) => match.mac!.some((p) => m.startsWith(p)))) {
    return `no MAC starts with ${match.mac.join(' or ')}`;
  }
  for (const f of PATTERN_FIELDS) {
    const p = match[f];
    if (p === undefined) continue;
    const v = facts[f];
    if (v === null) return `${f} unknown`;
    if (!compilePattern(p, `match.${f}`)(v)) return `${f} '${v}' is not ${p}`;
  }
  for (const f of RANGE_FIELDS) {
    const r = match[f];
    if (!r) continue;
    const v = facts[f];
    if (v === null) return `${f} unknown`;
    if (r.min !== undefined && v < r.min) return `${f} ${round(v)} < ${r.min}`;
    if (r.max !== undefined && v > r.max) return `${f} ${round(v)} > ${r.max}`;
  }
  if (match.firmware && facts.firmware !== match.firmware) {
    return `firmware ${facts.firmware ?? 'unknown'}, not ${match.firmware}`;
  }
  const missing = match.tags?.find((t) => !facts.tags.includes(t));
  if (missing) return `no tag ${missing}`;
  if (match.subnet) {
    if (!facts.ip) return 'no recorded address';
    if (!match.subnet.some((s) => inSubnet(facts.ip!, s)))
      return `${facts.ip} not in ${match.subnet.join(', ')}`;
  }
  return null;
}

const round = (v: number): number => Math.round(v * 100) / 100;

/** What the matcher needs of a rule. */
export interface MatchableRule {
  id: number;
  enabled: boolean;
  /** null: no limit. */
  limit: number | null;
  match: RuleMatch;
}

/**
 * The first enabled rule, in order, that matches and has caught fewer than its limit. `counts` holds how
 * many machines each rule (by id) has caught; a rule absent from it has caught none.
 */
export function firstMatchingRule<R extends MatchableRule>(
  rules: readonly R[],
  facts: NodeFacts,
  counts: ReadonlyMap<number, number>,
): R | undefined {
  return rules.find(
    (r) =>
      r.enabled &&
      (r.limit === null || (counts.get(r.id) ?? 0) < r.limit) &&
      mismatch(r.match, facts) === null,
  );
}
