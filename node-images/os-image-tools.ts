/**
 * The installer's tools, as a second initrd that iPXE loads after the node environment in install mode
 * (the kernel unpacks both archives into one root). busybox cannot write GPT, make ext4 with Debian's
 * defaults, or read zstd, so the host's own sfdisk, mke2fs, mkfs.vfat, blkid, wipefs, zstd and GNU tar
 * go in, with the shared libraries `ldd` names and the dynamic loader. They live under /opt/corral so
 * they never shadow busybox's applets; the agent puts /opt/corral/bin first on PATH in install mode.
 * The installer (corral-install) and the first-boot reporter it installs (/opt/corral/share) go in too.
 *
 * The master is Debian 12 like the node environment's kernel, so the host's binaries run there.
 * Cached by a hash over the binaries' bytes: the file is rebuilt only when a host package changed.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, realpath, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CorralError } from '../master/util/errors.js';
import { installPath } from '../master/util/paths.js';
import { encodeNewc } from './cpio.js';
import { execText } from './exec.js';
import { ImageTree, gzipReproducible } from './initramfs.js';

export const INSTALLER_TOOLS_FILE = 'installer-tools.img';
export const TOOLS_BIN = 'opt/corral/bin';
export const TOOLS_SHARE = 'opt/corral/share';

/** Tool name in the initramfs → candidates on the host. */
const TOOLS: Record<string, readonly string[]> = {
  sfdisk: ['/usr/sbin/sfdisk', '/sbin/sfdisk'],
  'mkfs.ext4': ['/usr/sbin/mke2fs', '/sbin/mke2fs'],
  'mkfs.vfat': ['/usr/sbin/mkfs.fat', '/sbin/mkfs.fat'],
  blkid: ['/usr/sbin/blkid', '/sbin/blkid'],
  wipefs: ['/usr/sbin/wipefs', '/sbin/wipefs'],
  zstd: ['/usr/bin/zstd'],
  tar: ['/usr/bin/tar', '/bin/tar'],
};

/**
 * The p2p download tool (issue 19: corral-install's p2p_start), in an initrd of its own that only a
 * p2p installer fetches (GET /boot/installer/p2p-tools.img, unpacked into its root). Not in the tools
 * initrd: aria2c's libraries (libxml2 pulls ICU's 31 MB data library) made that 25.6 MB instead of 3.5 MB,
 * paid by every install and every master start; measured 2026-12-06.
 */
export const P2P_TOOLS: Record<string, readonly string[]> = {
  aria2c: ['/usr/bin/aria2c'],
};
export const P2P_TOOLS_FILE = 'p2p-tools.img';

/** The Debian packages that provide TOOLS (scripts/setup.sh installs them). */
export const TOOL_PACKAGES = [
  'fdisk',
  'e2fsprogs',
  'dosfstools',
  'util-linux',
  'zstd',
  'tar',
  'aria2',
] as const;

/** Shared objects a binary needs, from `ldd` (absolute paths, loader included). */
export function parseLdd(text: string): string[] {
  const libs = new Set<string>();
  for (const line of text.split('\n')) {
    const arrow = /=>\s*(\/\S+)/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(0x/.exec(line);
    const path = arrow?.[1] ?? bare?.[1];
    if (path) libs.add(path);
  }
  return [...libs].sort();
}

async function findTool(candidates: readonly string[]): Promise<string> {
  for (const c of candidates) if (existsSync(c)) return c;
  throw new CorralError(
    'NODE_IMAGE_BUILD_FAILED',
    `installer tool ${candidates[0]} not found: install ${TOOL_PACKAGES.join(' ')}`,
  );
}

/** Host binaries with their shared libraries into `tree` (and the hash). */
async function addTools(
  tree: ImageTree,
  hash: ReturnType<typeof createHash>,
  tools: Record<string, readonly string[]>,
): Promise<void> {
  const libs = new Set<string>();
  for (const [name, candidates] of Object.entries(tools).sort()) {
    const host = await findTool(candidates);
    const data = await readFile(await realpath(host));
    hash.update(name).update(data);
    tree.file(`${TOOLS_BIN}/${name}`, data, 0o755);
    for (const lib of parseLdd(await execText('ldd', [host]))) libs.add(lib);
  }
  for (const lib of [...libs].sort()) {
    const data = await readFile(await realpath(lib));
    hash.update(lib).update(data);
    // Keep the path the loader and binaries look for (/lib64/ld-linux..., /lib/x86_64-linux-gnu/...).
    tree.file(lib.replace(/^\//, ''), data, 0o755);
  }
}

/** Writes the gzipped newc archive of `tree` to `outDir/file` unless the same digest was built; its path. */
async function writeToolsImage(
  outDir: string,
  file: string,
  tree: ImageTree,
  digest: string,
): Promise<string> {
  const out = join(outDir, file);
  const stamp = `${out}.sha256`;
  if (existsSync(out) && (await readFile(stamp, 'utf8').catch(() => '')) === digest) return out;
  const image = await gzipReproducible(encodeNewc(tree.list(), 0));
  await mkdir(outDir, { recursive: true });
  await writeFile(`${out}.tmp`, image);
  await rename(`${out}.tmp`, out);
  await writeFile(stamp, digest);
  return out;
}

/** Builds (or reuses) `outDir/p2p-tools.img` (aria2c and its libraries); returns its path. */
export async function buildP2pTools(outDir: string): Promise<string> {
  const tree = new ImageTree();
  const hash = createHash('sha256');
  await addTools(tree, hash, P2P_TOOLS);
  return writeToolsImage(outDir, P2P_TOOLS_FILE, tree, hash.digest('hex'));
}

/** Builds (or reuses) `outDir/installer-tools.img`; returns its path. */
export async function buildInstallerTools(outDir: string): Promise<string> {
  const tree = new ImageTree();
  const hash = createHash('sha256');
  await addTools(tree, hash, TOOLS);
  // The installer script itself (node-images/agent/corral-install) travels with its tools.
  const installer = await readFile(installPath('node-images', 'agent', 'corral-install'));
  hash.update(installer);
  tree.file(`${TOOLS_BIN}/corral-install`, installer, 0o755);
  // The first-boot reporter the installer puts into every image (raw ones and tarballs not built by
  // Corral do not carry it): without it the node never reports and its deploy fails by the watchdog.
  for (const [name, mode] of [
    ['corral-node-report', 0o755],
    ['corral-node-report.service', 0o644],
  ] as const) {
    const data = await readFile(installPath('node-images', 'agent', name));
    hash.update(name).update(data);
    tree.file(`${TOOLS_SHARE}/${name}`, data, mode);
  }
  const mke2fsConf = await readFile('/etc/mke2fs.conf').catch(() => undefined);
  if (mke2fsConf) {
    hash.update(mke2fsConf);
    tree.file('etc/mke2fs.conf', mke2fsConf);
  }
  return writeToolsImage(outDir, INSTALLER_TOOLS_FILE, tree, hash.digest('hex'));
}
