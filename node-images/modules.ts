/**
 * Which kernel modules go into the node environment, and in which order /init loads them.
 *
 * Dependencies come from each .ko itself via `modinfo` (its `depends:` field and the `pre:` part of
 * `softdep:`), resolved recursively; the image's own depmod output is the independent check in the tests.
 * A requested module that is neither a file nor listed in modules.builtin is skipped with a
 * note: the flavour does not have it (e.g. e1000 in the cloud kernel).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { KernelFlavour } from './kernel.js';
import { execText } from './exec.js';

/**
 * NICs of VMs: virtio_net does not depend on the PCI transport, so virtio_pci is listed on its own. QEMU's
 * e1000 is also Intel's PCI/PCI-X server NIC.
 */
const NIC_VIRTUAL = ['virtio_pci', 'virtio_net', 'e1000'];
/**
 * Datacentre NICs (generic flavour only: the cloud kernel has none of these but mlx5). Intel 1/2.5/10/40/
 * 100 GbE, Broadcom NetXtreme (tg3) and NetXtreme-C/E (bnxt_en), Mellanox ConnectX-3 (mlx4) and
 * ConnectX-4 and later (mlx5), Realtek on-board. None needs a firmware file to pass traffic; a few load
 * one when present (docs/node-images.md, "Firmware"). Left out: drivers that cannot open the port
 * without non-free firmware (bnx2x, qed/qede), which Debian's main archive does not carry.
 */
const NIC_PHYSICAL = [
  'e1000e',
  'igb',
  'igc',
  'ixgbe',
  'i40e',
  'ice',
  'bnxt_en',
  'tg3',
  'mlx4_core',
  'mlx4_en',
  'mlx5_core',
  'r8169',
];
const DISK = ['virtio_blk', 'virtio_scsi', 'sd_mod', 'ahci', 'nvme'];
/** Server storage controllers: Broadcom/LSI MegaRAID and SAS HBAs, HPE Smart Array (hpsa, smartpqi). */
const DISK_PHYSICAL = ['megaraid_sas', 'mpt3sas', 'hpsa', 'smartpqi'];
/** For the imaging and shared-root modes: local filesystems, NFS, and the pieces of a squashfs+overlay root. */
const FILESYSTEMS = [
  'ext4',
  'vfat',
  'nls_cp437',
  'nls_ascii',
  'nls_utf8',
  'overlay',
  'nfs',
  'nfsv3',
  'nfsv4',
  'squashfs',
  'loop',
  // EFI variables (a module in Debian's kernels): the installer puts the network entry first in BootOrder
  // (node-images/agent/corral-install keep_network_first, issue 18).
  'efivarfs',
];
/** udhcpc needs packet sockets; built in on Debian, listed so a flavour that makes it a module still works. */
const NET_CORE = ['af_packet'];

/** The modules asked for, per flavour, in the order they should load after their dependencies. */
export function requestedModules(flavour: KernelFlavour): string[] {
  const physical = flavour === 'generic';
  return [
    ...NET_CORE,
    ...NIC_VIRTUAL,
    ...(physical ? NIC_PHYSICAL : []),
    ...DISK,
    ...(physical ? DISK_PHYSICAL : []),
    ...FILESYSTEMS,
  ];
}

/** Module names are the same with `-` or `_` (modprobe treats them as equal). */
export function normaliseModuleName(name: string): string {
  return name.replace(/-/g, '_');
}

const MODULE_FILE = /\.ko(\.xz|\.zst|\.gz)?$/;

export interface ModuleTree {
  /** Absolute path of lib/modules/<kernelVersion>. */
  modulesDir: string;
  /** Normalised module name → path relative to modulesDir. */
  files: Map<string, string>;
  /** Normalised names of built-in modules (from modules.builtin). */
  builtin: Set<string>;
  /** Exact aliases (`crypto-crc32c`) → normalised names of the modules providing them (modules.alias). */
  aliases: Map<string, string[]>;
}

async function walk(dir: string, out: string[]): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await walk(path, out);
    else if (MODULE_FILE.test(entry.name)) out.push(path);
  }
}

export function moduleNameOfPath(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return normaliseModuleName(base.replace(MODULE_FILE, ''));
}

export async function indexModules(modulesDir: string): Promise<ModuleTree> {
  const paths: string[] = [];
  await walk(modulesDir, paths);
  paths.sort();
  const files = new Map<string, string>();
  for (const p of paths) {
    const name = moduleNameOfPath(p);
    if (!files.has(name)) files.set(name, relative(modulesDir, p));
  }
  let builtinText = '';
  try {
    builtinText = await readFile(join(modulesDir, 'modules.builtin'), 'utf8');
  } catch {
    // A kernel without modules.builtin has nothing built in that we could know about.
  }
  const builtin = new Set(
    builtinText
      .split('\n')
      .filter(Boolean)
      .map((line) => moduleNameOfPath(line.trim())),
  );
  return { modulesDir, files, builtin, aliases: await readAliases(modulesDir) };
}

/**
 * modules.alias as depmod writes it ("alias crypto-crc32c crc32c_generic"); kernel.ts runs depmod over
 * the unpacked package. Only plain names matter here (softdeps name them); device patterns are skipped.
 */
async function readAliases(modulesDir: string): Promise<Map<string, string[]>> {
  const aliases = new Map<string, string[]>();
  let text = '';
  try {
    text = await readFile(join(modulesDir, 'modules.alias'), 'utf8');
  } catch {
    return aliases;
  }
  for (const line of text.split('\n')) {
    const [kw, alias, mod] = line.trim().split(/\s+/);
    if (kw !== 'alias' || !alias || !mod || /[*?[:]/.test(alias)) continue;
    const list = aliases.get(alias) ?? [];
    const name = normaliseModuleName(mod);
    if (!list.includes(name)) list.push(name);
    aliases.set(alias, list);
  }
  for (const list of aliases.values()) list.sort();
  return aliases;
}

export interface ModuleDeps {
  depends: string[];
  /** Soft dependencies to load first (`softdep pre:`), as written: module names or aliases. */
  softPre: string[];
  /** Firmware files the module may ask for (`firmware:` fields); none is put in the image. */
  firmware?: string[];
}

/** Parses `modinfo -F softdep` output: lines like "pre: crc32c post: foo". */
export function parseSoftdep(text: string): string[] {
  const pre: string[] = [];
  for (const line of text.split('\n')) {
    let inPre = false;
    for (const word of line.trim().split(/\s+/).filter(Boolean)) {
      if (word === 'pre:') inPre = true;
      else if (word === 'post:') inPre = false;
      else if (inPre) pre.push(word);
    }
  }
  return pre;
}

/**
 * The fields the builder needs from plain `modinfo FILE` output ("depends:        dca,i2c-algo-bit",
 * "softdep:        pre: crc32c", one "firmware:       intel/ice/ddp/ice.pkg" line per file). One call
 * per module instead of one per field: a generic build reads about a hundred modules.
 */
export function parseModinfo(text: string): Required<ModuleDeps> {
  const field = (name: string): string[] =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}:`))
      .map((l) => l.slice(name.length + 1).trim());
  return {
    depends: field('depends')
      .flatMap((v) => v.split(/[,\s]+/))
      .filter(Boolean)
      .map(normaliseModuleName),
    softPre: parseSoftdep(field('softdep').join('\n')),
    firmware: field('firmware').filter(Boolean),
  };
}

export type ModuleDepsReader = (absPath: string) => Promise<ModuleDeps>;

/** Reads dependencies straight from a .ko with kmod's modinfo (no modules.dep needed). */
export const modinfoDeps: ModuleDepsReader = async (absPath) =>
  parseModinfo(await execText('modinfo', [absPath]));

export interface ResolvedModules {
  /** Paths relative to the modules dir, dependencies before their users. */
  loadOrder: string[];
  /** Normalised names in the same order. */
  names: string[];
  /** Requested or soft-dependency modules left out, and why. */
  skipped: { name: string; reason: string }[];
  /** Modules in the image that may ask for firmware files, which the image does not carry. */
  firmware: { module: string; files: string[] }[];
}

/**
 * Resolves `requested` plus their dependencies into a load order: a depth-first post-order walk, so each
 * module comes after everything it depends on, and otherwise in the order requested (deterministic).
 */
export async function resolveModules(
  tree: ModuleTree,
  requested: readonly string[],
  readDeps: ModuleDepsReader = modinfoDeps,
): Promise<ResolvedModules> {
  const names: string[] = [];
  const done = new Set<string>();
  const inProgress = new Set<string>();
  const skipped: { name: string; reason: string }[] = [];
  const firmware: { module: string; files: string[] }[] = [];
  const noted = new Set<string>();
  const skip = (name: string, reason: string): void => {
    if (noted.has(name)) return;
    noted.add(name);
    skipped.push({ name, reason });
  };

  /** A softdep names a module or an alias (ext4: `pre: crypto-crc32c`); an alias brings all its providers. */
  const softProviders = (soft: string): string[] => {
    const name = normaliseModuleName(soft);
    if (tree.files.has(name) || tree.builtin.has(name)) return [name];
    return tree.aliases.get(soft) ?? [];
  };

  const visit = async (
    name: string,
    via: 'requested' | 'depends' | 'softdep',
    chain: string[],
  ): Promise<void> => {
    if (done.has(name)) return;
    if (inProgress.has(name)) throw new Error(`module dependency cycle: ${[...chain, name].join(' -> ')}`);
    const rel = tree.files.get(name);
    if (!rel) {
      if (tree.builtin.has(name)) skip(name, 'built into the kernel');
      else if (via === 'depends')
        throw new Error(`module ${chain.at(-1)} depends on ${name}, which is missing`);
      else skip(name, 'not in this kernel flavour');
      return;
    }
    inProgress.add(name);
    const deps = await readDeps(join(tree.modulesDir, rel));
    for (const soft of deps.softPre) {
      const providers = softProviders(soft);
      if (providers.length === 0) {
        skip(
          soft,
          `soft dependency of ${name}: no module provides it (built in, or absent from this flavour)`,
        );
      }
      for (const p of providers) await visit(p, 'softdep', [...chain, name]);
    }
    for (const dep of deps.depends) await visit(dep, 'depends', [...chain, name]);
    inProgress.delete(name);
    done.add(name);
    names.push(name);
    if (deps.firmware?.length) firmware.push({ module: name, files: [...deps.firmware].sort() });
  };

  for (const name of requested) await visit(normaliseModuleName(name), 'requested', []);
  return {
    loadOrder: names.map((n) => {
      const rel = tree.files.get(n);
      if (!rel) throw new Error(`unreachable: ${n} has no file`);
      return rel.replace(MODULE_FILE, '.ko');
    }),
    names,
    skipped,
    firmware,
  };
}
