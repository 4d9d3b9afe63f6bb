/**
 * The deploy plan: (node, image, layout, config) → everything the installer on the node needs, rendered
 * on the master so the node-side shell stays dumb. Pure; unit-tested with golden files.
 *
 * The node fetches `plan.env` (shell variables) and the files named in it from /boot/deploy/<mac>/.
 * Partitions are GPT (sfdisk script): a 1 MiB BIOS boot partition for GRUB's core image on BIOS nodes or
 * an EFI system partition on UEFI nodes, optional swap, then root. The root file system UUID is chosen
 * here, so fstab and grub.cfg are complete before the node formats anything.
 */
import type { ImageRecord } from '../store/images.js';
import type { NodeRecord } from '../store/nodes.js';
import { CorralError } from '../util/errors.js';
import { renderTemplate } from '../util/templates.js';
import type { Layout } from './config.js';

const MiB = 2 ** 20;

/** GPT partition type GUIDs (UEFI spec 2.10 table 5-7; Linux ones from the Discoverable Partitions Spec). */
export const GPT_TYPES = {
  biosBoot: '21686148-6449-6E6F-744E-656564454649',
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  swap: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
  linux: '0FC63DAF-8483-4772-8E79-3D69E4779DE4',
} as const;

export interface PartitionPlan {
  script: string;
  /** 1-based partition numbers; 0 = absent. */
  bootPart: number;
  espPart: number;
  swapPart: number;
  rootPart: number;
  /** Bytes the layout needs besides root (boot/ESP, swap, GPT and alignment). */
  overheadBytes: number;
}

export function partitionPlan(layout: Layout, firmware: 'bios' | 'uefi'): PartitionPlan {
  const lines = ['label: gpt'];
  let n = 0;
  let overhead = 2 * MiB; // first-partition alignment and the backup GPT
  let espPart = 0;
  let bootPart = 0;
  let swapPart = 0;
  if (firmware === 'uefi') {
    espPart = ++n;
    lines.push(`size=${layout.espMb}MiB, type=${GPT_TYPES.esp}, name="ESP"`);
    overhead += layout.espMb * MiB;
  } else {
    bootPart = ++n;
    lines.push(`size=1MiB, type=${GPT_TYPES.biosBoot}, name="bios"`);
    overhead += MiB;
  }
  if (layout.swapMb > 0) {
    swapPart = ++n;
    lines.push(`size=${layout.swapMb}MiB, type=${GPT_TYPES.swap}, name="swap"`);
    overhead += layout.swapMb * MiB;
  }
  const rootPart = ++n;
  lines.push(`${layout.rootMb ? `size=${layout.rootMb}MiB, ` : ''}type=${GPT_TYPES.linux}, name="root"`);
  return { script: `${lines.join('\n')}\n`, bootPart, espPart, swapPart, rootPart, overheadBytes: overhead };
}

interface InventoryDisk {
  name: string;
  sizeBytes: number;
}

function inventoryDisks(node: NodeRecord): InventoryDisk[] {
  const disks = (node.inventory as { disks?: unknown }).disks;
  if (!Array.isArray(disks)) return [];
  return disks.filter(
    (d): d is InventoryDisk =>
      typeof d === 'object' &&
      d !== null &&
      typeof (d as InventoryDisk).name === 'string' &&
      /^[a-z0-9]+$/.test((d as InventoryDisk).name) &&
      typeof (d as InventoryDisk).sizeBytes === 'number',
  );
}

/** Bytes a disk must have for this image and layout. */
export function requiredBytes(image: ImageRecord, parts: PartitionPlan): number {
  return image.format.startsWith('raw') ? image.minDiskBytes : image.minDiskBytes + parts.overheadBytes;
}

/**
 * The target disk: the first disk (by name: vda before vdb, nvme0n1 before sda as the kernel names
 * them) big enough for the image. Throws DISK_TOO_SMALL naming the largest when none is.
 */
export function chooseDisk(node: NodeRecord, needBytes: number): InventoryDisk {
  const disks = inventoryDisks(node).sort((a, b) => a.name.localeCompare(b.name));
  if (!disks.length) {
    throw new CorralError('DISK_TOO_SMALL', `${node.name} reported no disks; it cannot be deployed`);
  }
  const fit = disks.find((d) => d.sizeBytes >= needBytes);
  if (!fit) {
    const biggest = Math.max(...disks.map((d) => d.sizeBytes));
    throw new CorralError(
      'DISK_TOO_SMALL',
      `${node.name}'s largest disk has ${biggest} bytes; the image and layout need ${needBytes}`,
      { needBytes, disks },
    );
  }
  return fit;
}

export interface PlanInput {
  node: NodeRecord;
  image: ImageRecord;
  layoutName: string;
  layout: Layout;
  baseUrl: string;
  token: string;
  rootUuid: string;
  sshKeys: readonly string[];
  kernelArgs: string;
  /** The public line of the host key Corral made for the installed system (deploy.ts createDeployHostKey). */
  hostKeyPub?: string | undefined;
}

/**
 * The host key the installer lays into the target's /etc/ssh. The plan holds only its public half; the
 * private half is served from its file (deploy.ts planFile), never stored with the plan.
 */
export const HOST_KEY_FILE = 'ssh_host_ed25519_key';

export interface DeployPlan {
  env: Record<string, string>;
  files: Record<string, string>;
  /**
   * The master's base URL the env and files were rendered with (http.publicUrl). Kept so that a node
   * that asks over the other family gets them rebased (planForArrival); absent in plans made before.
   */
  baseUrl?: string;
}

/**
 * The systemd-networkd file of a node deployed over IPv6 (issue 18), served under the name `network` to
 * an installer that fetched its plan over IPv6. Kept beside the IPv4 one so a node's family is decided
 * by the request, not at deploy time.
 */
export const NETWORK6_FILE = 'network.ipv6';

/** `from` followed by the end of a URL's host and port: so http://10.0.0.1 never matches http://10.0.0.10. */
function baseUrlPattern(from: string): RegExp {
  const literal = from.replace(/[.*+?^$()|[\]{}\\]/g, '\\$&');
  return new RegExp(`${literal}(?![\\w.:-])`, 'g');
}

/** Every occurrence of the base URL `from` in `text` replaced by `to` (both without a trailing slash). */
export function rebaseUrls(text: string, from: string, to: string): string {
  return from === to ? text : text.replace(baseUrlPattern(from), to);
}

/**
 * A plan file as a node sees it, given the family its request came in on (issue 18): the master's URLs
 * (IMAGE_URL, node.conf's CORRAL_SERVER, the p2p torrent...) name the master in that family, as the boot
 * script already does (http-bind.ts baseUrlFor), and a node that came over IPv6 gets the DHCPv6 network
 * file, since the installed system will find the same IPv6-only link. `text` is the stored file (plan.env
 * with anything appended at request time); a plan without a recorded base URL is served as stored.
 */
export function planForArrival(
  plan: Pick<DeployPlan, 'baseUrl' | 'files'>,
  name: string,
  text: string,
  arrival: { baseUrl: string; ipv6: boolean },
): string {
  const chosen = name === 'network' && arrival.ipv6 ? (plan.files[NETWORK6_FILE] ?? text) : text;
  return plan.baseUrl ? rebaseUrls(chosen, plan.baseUrl, arrival.baseUrl) : chosen;
}

/** Shell single quotes; the env file is sourced by busybox ash. */
export function shellQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

export function renderEnv(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `${k}=${shellQuote(v)}\n`)
    .join('');
}

export function buildPlan(p: PlanInput): DeployPlan {
  const firmware = p.node.firmware === 'uefi' ? 'uefi' : 'bios';
  const parts = partitionPlan(p.layout, firmware);
  const need = requiredBytes(p.image, parts);
  const disk = chooseDisk(p.node, need);
  const hostname = p.node.name;
  const vars = {
    hostname,
    mac: p.node.mac,
    rootUuid: p.rootUuid,
    esp: parts.espPart > 0,
    swap: parts.swapPart > 0,
    osName: p.image.osName ?? p.image.name,
    osVersion: p.image.osVersion ?? '',
    kernelArgs: p.kernelArgs,
    server: p.baseUrl,
    token: p.token,
  };
  const env: Record<string, string> = {
    DEPLOY_HOSTNAME: hostname,
    IMAGE_NAME: p.image.name,
    IMAGE_URL: `${p.baseUrl}/boot/images/${p.image.sha256}`,
    IMAGE_SHA256: p.image.sha256,
    IMAGE_FORMAT: p.image.format,
    IMAGE_SIZE: String(p.image.sizeBytes),
    DISK: disk.name,
    NEED_BYTES: String(need),
    FIRMWARE: firmware,
    LAYOUT: p.layoutName,
    BOOT_PART: String(parts.bootPart),
    ESP_PART: String(parts.espPart),
    SWAP_PART: String(parts.swapPart),
    ROOT_PART: String(parts.rootPart),
    ROOT_UUID: p.rootUuid,
  };
  const files: Record<string, string> = {
    'partitions.sfdisk': parts.script,
    hostname: `${hostname}\n`,
    hosts: renderTemplate('node/hosts.hbs', vars),
    network: renderTemplate('node/network.hbs', vars),
    [NETWORK6_FILE]: renderTemplate('node/network-ipv6.hbs', vars),
    // networkd's DUID for DHCPv6 (its default is DUID-EN from the machine id): see the template.
    'networkd.conf': renderTemplate('node/networkd.conf.hbs', vars),
    fstab: renderTemplate('node/fstab.hbs', vars),
    'grub.cfg': renderTemplate('node/grub.cfg.hbs', vars),
    authorized_keys: p.sshKeys.map((k) => `${k.trim()}\n`).join(''),
    'node.conf': renderTemplate('node/node.conf.hbs', vars),
  };
  if (p.hostKeyPub) {
    env['HOST_KEY'] = HOST_KEY_FILE;
    files[`${HOST_KEY_FILE}.pub`] = p.hostKeyPub.endsWith('\n') ? p.hostKeyPub : `${p.hostKeyPub}\n`;
  }
  env['NETWORKD_CONF'] = 'networkd.conf';
  return { env, files, baseUrl: p.baseUrl };
}
