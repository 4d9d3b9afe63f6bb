import { InventorySchema, type Inventory } from '../master/nodes/inventory.js';
import type { NodeRecord } from '../master/store/nodes.js';
import type { BootActivityEntry } from '../master/store/boot-activity.js';
import { formatSpeed } from './format.js';

type Disk = NonNullable<Inventory['disks']>[number];
type Nic = NonNullable<Inventory['nics']>[number];

export interface DiskView extends Disk {
  /** "SSD" / "HDD" from the kernel's rotational flag; null when the agent could not tell. */
  kind: 'SSD' | 'HDD' | null;
}

export interface NicView extends Nic {
  speed: string;
  /** The interface whose MAC is the node's: the one it PXE-booted from. */
  boot: boolean;
}

/**
 * What the console shows of a node's inventory. The inventory was validated at enlistment, but a row
 * written by an older agent may not match today's schema: then the typed sections stay empty, `valid`
 * is false, and the page still offers the raw JSON, so nothing the agent sent is hidden.
 */
export interface InventoryView {
  valid: boolean;
  cpuModel: string | null;
  cpuCount: number | null;
  memoryBytes: number | null;
  firmware: string | null;
  /** 'enabled' / 'disabled' as the node's agent read it (issue 18); null when it did not say. */
  secureBoot: 'enabled' | 'disabled' | null;
  disks: DiskView[];
  disksTotalBytes: number | null;
  nics: NicView[];
  dmi: { vendor: string | null; product: string | null; serial: string | null };
}

export function inventoryView(node: NodeRecord): InventoryView {
  const parsed = InventorySchema.safeParse(node.inventory);
  const inv: Inventory = parsed.success ? parsed.data : {};
  const disks = inv.disks ?? [];
  return {
    valid: parsed.success,
    cpuModel: inv.cpu?.model ?? null,
    cpuCount: inv.cpu?.count ?? null,
    memoryBytes: inv.memoryBytes ?? null,
    firmware: inv.firmware ?? node.firmware,
    secureBoot: inv.secureBoot === true ? 'enabled' : inv.secureBoot === false ? 'disabled' : null,
    disks: disks.map((d) => ({
      ...d,
      kind: d.rotational === true ? 'HDD' : d.rotational === false ? 'SSD' : null,
    })),
    disksTotalBytes: disks.length ? disks.reduce((sum, d) => sum + d.sizeBytes, 0) : null,
    nics: (inv.nics ?? []).map((n) => ({
      ...n,
      speed: formatSpeed(n.speedMbps),
      boot: (n.mac ?? '').toLowerCase() === node.mac,
    })),
    dmi: {
      vendor: inv.dmi?.vendor ?? null,
      product: inv.dmi?.product ?? null,
      serial: inv.dmi?.serial ?? null,
    },
  };
}

/** "2 × QEMU Virtual CPU", "2 CPUs", or null when the agent said nothing. */
export function cpuSummary(inv: Pick<InventoryView, 'cpuModel' | 'cpuCount'>): string | null {
  if (inv.cpuModel && inv.cpuCount) return `${inv.cpuCount} × ${inv.cpuModel}`;
  if (inv.cpuModel) return inv.cpuModel;
  if (inv.cpuCount) return `${inv.cpuCount} CPU${inv.cpuCount === 1 ? '' : 's'}`;
  return null;
}

/** One row of the node table: the record plus the inventory figures the table shows and sorts by. */
export interface NodeRow {
  node: NodeRecord;
  inventory: InventoryView;
  cpu: string | null;
  href: string;
}

/** Colons are legal in a path segment (RFC 3986 §3.3 pchar), and "/nodes/52:54:00:…" is what admins type. */
export function nodeHref(mac: string): string {
  return `/nodes/${encodeURIComponent(mac).replace(/%3A/gi, ':')}`;
}

export function nodeRow(node: NodeRecord): NodeRow {
  const inventory = inventoryView(node);
  return { node, inventory, cpu: cpuSummary(inventory), href: nodeHref(node.mac) };
}

/** One row of a boot timeline (the node page's Boot activity section and the Boot activity page). */
export interface BootStepRow {
  at: string;
  kind: string;
  summary: string;
  failed: boolean;
  hint: string | null;
}

/**
 * The steps of one MAC, newest first (as the event timeline reads), and the failing step that still
 * stands: the newest failed step, unless a later step of the same kind succeeded (the kernel that was
 * missing is served now). The store's machine list applies the same rule (BootActivityStore.machines).
 */
export function bootTimeline(entries: readonly BootActivityEntry[]): {
  rows: BootStepRow[];
  failure: BootStepRow | null;
} {
  const rows = entries
    .map((e) => ({ at: e.at, kind: e.kind, summary: e.summary, failed: e.failed, hint: e.hint }))
    .reverse();
  const i = rows.findIndex((r) => r.failed);
  const failed = rows[i];
  const resolved = failed && rows.slice(0, i).some((r) => r.kind === failed.kind && !r.failed);
  return { rows, failure: failed && !resolved ? failed : null };
}
