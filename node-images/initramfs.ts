/**
 * Assembles the node environment's initramfs: busybox-static with its applet links, the kernel modules
 * with a load order, the /init and agent scripts, written as a newc cpio (see cpio.ts) and compressed
 * with `gzip -n` so the same inputs always give the same bytes.
 *
 * Applets are symlinks made at build time (from `busybox --list-full`) rather than `busybox --install -s`
 * at boot: the image then lists exactly what it contains, and /init can use any applet from its first line.
 */
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CorralError } from '../master/util/errors.js';
import { encodeNewc, type CpioEntry } from './cpio.js';
import { execBuffer, execText } from './exec.js';
import type { ModuleTree, ResolvedModules } from './modules.js';

/** Where the image keeps its own files; /init and the agent read them from here. */
export const LOAD_ORDER_PATH = 'etc/corral/modules.load';
export const UDHCPC_SCRIPT_PATH = 'etc/corral/udhcpc.script';
export const AGENT_PATH = 'usr/sbin/corral-agent';

/** The entries of a root filesystem, with parent directories created on demand. */
export class ImageTree {
  private readonly entries = new Map<string, CpioEntry>();

  dir(path: string, mode = 0o755): this {
    const existing = this.entries.get(path);
    if (existing && existing.type !== 'dir') throw new Error(`${path} exists and is not a directory`);
    if (!existing) {
      this.parents(path);
      this.entries.set(path, { path, type: 'dir', mode });
    } else if (existing.mode !== mode) {
      this.entries.set(path, { path, type: 'dir', mode });
    }
    return this;
  }

  file(path: string, data: Buffer, mode = 0o644): this {
    this.claim(path);
    this.entries.set(path, { path, type: 'file', mode, data });
    return this;
  }

  symlink(path: string, target: string): this {
    this.claim(path);
    this.entries.set(path, { path, type: 'symlink', target });
    return this;
  }

  charDevice(path: string, mode: number, major: number, minor: number): this {
    this.claim(path);
    this.entries.set(path, { path, type: 'char', mode, major, minor });
    return this;
  }

  has(path: string): boolean {
    return this.entries.has(path);
  }

  list(): CpioEntry[] {
    return [...this.entries.values()];
  }

  private claim(path: string): void {
    if (this.entries.has(path)) throw new Error(`duplicate image entry ${path}`);
    this.parents(path);
  }

  private parents(path: string): void {
    const parent = dirname(path);
    if (parent !== '.' && !this.entries.has(parent)) this.dir(parent);
  }
}

/** ELF program header type of the dynamic loader path: present only in dynamically linked programs. */
const PT_INTERP = 3;

/**
 * True if `elf` (a 64-bit little-endian ELF) needs a dynamic loader. The initramfs has no libc, so a
 * busybox from the `busybox` package (dynamic) instead of `busybox-static` would fail only at boot.
 */
export function elfIsDynamic(elf: Buffer): boolean {
  // e_ident (16) ... e_phoff at 0x20 (8 bytes), e_phentsize at 0x36, e_phnum at 0x38: header is 64 bytes.
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) {
    throw new Error('not a 64-bit little-endian ELF file');
  }
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  if (phentsize < 4 || phoff + phentsize * phnum > elf.length)
    throw new Error('truncated ELF program headers');
  for (let i = 0; i < phnum; i++) {
    if (elf.readUInt32LE(phoff + i * phentsize) === PT_INTERP) return true;
  }
  return false;
}

export interface AgentScripts {
  init: Buffer;
  agent: Buffer;
  udhcpcScript: Buffer;
  /** Shared-root mode (issue 6), exec'd by /init. */
  sharedroot?: Buffer;
}

export interface InitramfsInputs {
  kernelVersion: string;
  tree: ModuleTree;
  modules: ResolvedModules;
  busybox: Buffer;
  /** Output of `busybox --list-full` for that binary: applet paths like `usr/bin/wget`. */
  busyboxApplets: string[];
  scripts: AgentScripts;
  /** Every entry's mtime (SOURCE_DATE_EPOCH or 0). */
  mtime: number;
  /** Free-form key=value lines written to /etc/corral/release. */
  release: Record<string, string>;
}

async function readModule(absPath: string): Promise<Buffer> {
  if (absPath.endsWith('.ko')) return readFile(absPath);
  if (absPath.endsWith('.ko.gz')) return gunzipSync(await readFile(absPath));
  if (absPath.endsWith('.ko.xz')) return execBuffer('xz', ['-dc', absPath]);
  if (absPath.endsWith('.ko.zst')) return execBuffer('zstd', ['-dc', absPath]);
  throw new Error(`unknown module file type: ${absPath}`);
}

/**
 * Runs depmod over just the chosen modules so busybox modprobe works on the node (the kernel's
 * request_module and later agent modes can use it). Returns the generated index files by name.
 */
async function depmodIndexes(
  kernelVersion: string,
  modules: Map<string, Buffer>,
  builtin: Buffer,
): Promise<Map<string, Buffer>> {
  const base = await mkdtemp(join(tmpdir(), 'corral-depmod-'));
  try {
    const modDir = join(base, 'lib', 'modules', kernelVersion);
    for (const [rel, data] of modules) {
      await mkdir(dirname(join(modDir, rel)), { recursive: true });
      await writeFile(join(modDir, rel), data);
    }
    await writeFile(join(modDir, 'modules.builtin'), builtin);
    await writeFile(join(modDir, 'modules.order'), [...modules.keys()].map((r) => `${r}\n`).join(''));
    // An empty config directory: the build host's /etc/depmod.d must not change the result.
    const emptyConfig = join(base, 'depmod.d');
    await mkdir(emptyConfig);
    await execText('depmod', ['-C', emptyConfig, '-b', base, kernelVersion]);
    const out = new Map<string, Buffer>();
    for (const name of (await readdir(modDir)).sort()) {
      if (name.startsWith('modules.')) out.set(name, await readFile(join(modDir, name)));
    }
    return out;
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/** The root filesystem of the node environment, before it is archived. */
export async function assembleImageTree(inputs: InitramfsInputs): Promise<ImageTree> {
  const t = new ImageTree();
  for (const d of [
    'bin',
    'sbin',
    'usr/bin',
    'usr/sbin',
    'proc',
    'sys',
    'dev',
    'run',
    'etc/corral',
    'root',
    'mnt',
  ]) {
    t.dir(d);
  }
  t.dir('tmp', 0o1777);
  // The kernel opens /dev/console for init before /init can mount devtmpfs: without this node the early
  // output of /init would go nowhere.
  t.charDevice('dev/console', 0o600, 5, 1);
  t.charDevice('dev/null', 0o666, 1, 3);

  t.file('bin/busybox', inputs.busybox, 0o755);
  for (const applet of inputs.busyboxApplets) {
    if (applet === 'bin/busybox' || t.has(applet)) continue;
    t.symlink(applet, '/bin/busybox');
  }

  t.file('init', inputs.scripts.init, 0o755);
  t.file(AGENT_PATH, inputs.scripts.agent, 0o755);
  t.file(UDHCPC_SCRIPT_PATH, inputs.scripts.udhcpcScript, 0o755);
  if (inputs.scripts.sharedroot) t.file('usr/sbin/corral-sharedroot', inputs.scripts.sharedroot, 0o755);
  t.file('etc/resolv.conf', Buffer.alloc(0));
  t.file(
    'etc/corral/release',
    Buffer.from(
      Object.entries(inputs.release)
        .map(([k, v]) => `${k}=${v}\n`)
        .join(''),
    ),
  );

  const modRoot = `lib/modules/${inputs.kernelVersion}`;
  const moduleData = new Map<string, Buffer>();
  for (const [i, name] of inputs.modules.names.entries()) {
    const src = inputs.tree.files.get(name);
    const rel = inputs.modules.loadOrder[i];
    if (!src || !rel) throw new Error(`module ${name} has no file`);
    moduleData.set(rel, await readModule(join(inputs.tree.modulesDir, src)));
  }
  for (const [rel, data] of moduleData) t.file(`${modRoot}/${rel}`, data);
  let builtin = Buffer.alloc(0);
  try {
    builtin = await readFile(join(inputs.tree.modulesDir, 'modules.builtin'));
  } catch {
    // no built-in list: modprobe simply knows no built-in modules
  }
  for (const [name, data] of await depmodIndexes(inputs.kernelVersion, moduleData, builtin)) {
    t.file(`${modRoot}/${name}`, data);
  }
  t.file(
    LOAD_ORDER_PATH,
    Buffer.from(
      '# Kernel modules in load order (dependencies first), relative to /lib/modules/$(uname -r).\n' +
        inputs.modules.loadOrder.map((r) => `${r}\n`).join(''),
    ),
  );
  return t;
}

/** Compresses with gzip -n (no name, no timestamp in the header) at level 9. */
export async function gzipReproducible(data: Buffer): Promise<Buffer> {
  return execBuffer('gzip', ['-n', '-9', '-c'], { input: data });
}

/**
 * The most the node environment's initrd.img may weigh, gzipped (docs/node-images.md, "Size budget").
 * Every PXE boot downloads it through iPXE and unpacks it into RAM before the agent runs, and it grows by
 * a driver at a time: the budget makes that growth a decision instead of a drift. Measured 2026-12-06
 * (kernel 6.1.0-57): generic 7.8 MB, cloud 2.8 MB; 16 MiB leaves room for about as many drivers again.
 */
export const INITRD_BUDGET_BYTES = 16 * 1024 * 1024;

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * Fails the build when the compressed image is over `budgetBytes`, naming the largest files (uncompressed)
 * so the operator sees what to drop from node-images/modules.ts.
 */
export function checkInitrdBudget(
  compressedBytes: number,
  entries: readonly CpioEntry[],
  budgetBytes: number = INITRD_BUDGET_BYTES,
): void {
  if (compressedBytes <= budgetBytes) return;
  const largest = entries
    .flatMap((e) => (e.type === 'file' ? [{ path: e.path, size: e.data.length }] : []))
    .sort((a, b) => b.size - a.size || a.path.localeCompare(b.path))
    .slice(0, 5)
    .map((f) => `${f.path} ${mib(f.size)}`);
  throw new CorralError(
    'NODE_IMAGE_TOO_LARGE',
    `the node environment's initrd.img is ${compressedBytes} bytes (${mib(compressedBytes)}) gzipped, ` +
      `over its budget of ${budgetBytes} bytes (${mib(budgetBytes)}; docs/node-images.md, "Size budget"); ` +
      `largest files: ${largest.join(', ')}`,
  );
}

/** Builds the compressed initramfs image; fails over INITRD_BUDGET_BYTES. */
export async function buildInitramfs(inputs: InitramfsInputs): Promise<Buffer> {
  const tree = await assembleImageTree(inputs);
  const entries = tree.list();
  const image = await gzipReproducible(encodeNewc(entries, inputs.mtime));
  checkInitrdBudget(image.length, entries);
  return image;
}

/** Reads the applet list of a busybox binary (run on the build host: it is the same static program). */
export async function busyboxApplets(busyboxPath: string): Promise<string[]> {
  const text = await execText(busyboxPath, ['--list-full']);
  const applets = text
    .split('\n')
    .map((l) => l.trim().replace(/^\/+/, ''))
    .filter(Boolean);
  if (!applets.includes('bin/sh')) {
    throw new CorralError('NODE_IMAGE_BUILD_FAILED', `${busyboxPath} --list-full has no bin/sh applet`);
  }
  return applets.sort();
}
