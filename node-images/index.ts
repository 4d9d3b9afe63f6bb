/**
 * Corral's node environment: Debian's kernel plus a small busybox initramfs holding the Corral agent.
 * Every PXE-booted node runs it (discover, install and shared-root modes; see docs/node-images.md).
 *
 * `buildNodeImage` writes `vmlinuz`, `initrd.img` and `manifest.json` into `outDir`. The manifest records
 * a hash of every input (kernel package and version, busybox, the agent scripts, the module list, the
 * builder itself, the timestamp); a build whose inputs hash matches the manifest returns at once.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../master/util/logger.js';
import { CorralError } from '../master/util/errors.js';
import { execText } from './exec.js';
import { busyboxApplets, buildInitramfs, elfIsDynamic, type AgentScripts } from './initramfs.js';
import { ensureKernel, type KernelFlavour } from './kernel.js';
import { indexModules, requestedModules, resolveModules } from './modules.js';

export { kernelCmdline, NODE_MODES, type NodeMode, type KernelCmdlineOptions } from './cmdline.js';
export { ensureKernel, type Kernel, type KernelFlavour } from './kernel.js';
export { INITRD_BUDGET_BYTES } from './initramfs.js';

/** Bump when the image layout changes in a way the builder's own hash would not show. */
const FORMAT = 1;
export const KERNEL_FILE = 'vmlinuz';
export const INITRD_FILE = 'initrd.img';
export const MANIFEST_FILE = 'manifest.json';

export interface BuildNodeImageOptions {
  /** Downloads and unpacked kernels (shared between builds), e.g. DATA_DIR/cache. */
  cacheDir: string;
  /** Where the built kernel, initrd and manifest go, e.g. DATA_DIR/node-image. */
  outDir: string;
  logger: Logger;
  flavour?: KernelFlavour;
  /** mtime of every initramfs entry; the CLI passes SOURCE_DATE_EPOCH. Default 0. */
  sourceDateEpoch?: number;
  /** Must be statically linked (Debian package busybox-static). */
  busyboxPath?: string;
  /** Told at each stage; percent is the stage's nominal share of a build, not a measured time. */
  onProgress?: (p: NodeImageProgress) => void;
}

export type NodeImageStage = 'kernel' | 'inputs' | 'modules' | 'initramfs' | 'writing' | 'done';
export interface NodeImageProgress {
  stage: NodeImageStage;
  percent: number;
}

export interface NodeImage {
  kernelPath: string;
  initrdPath: string;
  kernelVersion: string;
  initrdSha256: string;
  kernelSha256: string;
}

export interface NodeImageManifest {
  format: number;
  inputsHash: string;
  flavour: KernelFlavour;
  kernel: { package: string; version: string; kernelVersion: string };
  busybox: { version: string; sha256: string };
  modules: {
    requested: string[];
    loadOrder: string[];
    skipped: { name: string; reason: string }[];
    /** Firmware files modules in the image may ask for; none is included (docs/node-images.md). */
    firmwareNotIncluded: { module: string; files: string[] }[];
  };
  sourceDateEpoch: number;
  files: {
    kernel: { name: string; sha256: string; size: number };
    initrd: { name: string; sha256: string; size: number };
  };
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The agent scripts live beside the sources; from dist/node-images/ they are two levels up. */
async function readAgentScripts(): Promise<AgentScripts> {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [join(here, 'agent'), join(here, '..', '..', 'node-images', 'agent')]) {
    try {
      return {
        init: await readFile(join(dir, 'init')),
        agent: await readFile(join(dir, 'corral-agent')),
        udhcpcScript: await readFile(join(dir, 'udhcpc.script')),
        sharedroot: await readFile(join(dir, 'corral-sharedroot')),
      };
    } catch {
      // try the next location
    }
  }
  throw new CorralError('NODE_IMAGE_BUILD_FAILED', `node-images/agent scripts not found near ${here}`);
}

/** Hash of this builder's own code, so a change to it invalidates cached images. */
async function builderHash(): Promise<string> {
  const here = dirname(fileURLToPath(import.meta.url));
  const h = createHash('sha256');
  for (const name of (await readdir(here))
    .filter((n) => /\.(js|ts)$/.test(n) && !n.endsWith('.d.ts'))
    .sort()) {
    h.update(name).update(await readFile(join(here, name)));
  }
  return h.digest('hex');
}

/** "BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary." → "v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1)" */
async function busyboxVersion(busyboxPath: string): Promise<string> {
  const banner = (await execText(busyboxPath, [])).split('\n')[0] ?? '';
  return /^BusyBox\s+(.*?)\s+multi-call/.exec(banner)?.[1] ?? banner.trim();
}

async function readManifest(outDir: string): Promise<NodeImageManifest | undefined> {
  try {
    return JSON.parse(await readFile(join(outDir, MANIFEST_FILE), 'utf8')) as NodeImageManifest;
  } catch {
    return undefined;
  }
}

/** The cached image if its manifest matches `inputsHash` and the files still have their recorded hashes. */
async function cachedImage(outDir: string, inputsHash: string): Promise<NodeImage | undefined> {
  const m = await readManifest(outDir);
  if (!m || m.inputsHash !== inputsHash) return undefined;
  try {
    const kernelPath = join(outDir, m.files.kernel.name);
    const initrdPath = join(outDir, m.files.initrd.name);
    if (sha256(await readFile(kernelPath)) !== m.files.kernel.sha256) return undefined;
    if (sha256(await readFile(initrdPath)) !== m.files.initrd.sha256) return undefined;
    return {
      kernelPath,
      initrdPath,
      kernelVersion: m.kernel.kernelVersion,
      kernelSha256: m.files.kernel.sha256,
      initrdSha256: m.files.initrd.sha256,
    };
  } catch {
    return undefined;
  }
}

/** Writes via a temporary name and rename, so a reader (or a concurrent build) never sees half a file. */
async function writeAtomic(path: string, data: Buffer | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function copyAtomic(src: string, dest: string): Promise<void> {
  const tmp = `${dest}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await copyFile(src, tmp);
    await rename(tmp, dest);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Built images are also kept in the cache directory by their inputs' hash, so a second data directory on
 * the same machine (a clone, a test, a reinstall) copies the result instead of re-resolving ~80 modules and
 * re-compressing the initramfs (about 35 s of CPU for the generic kernel). The newest few are kept.
 */
const SHARED_CACHE_KEEP = 4;

function sharedCacheDir(cacheDir: string, inputsHash: string): string {
  return join(cacheDir, 'node-image', inputsHash);
}

/** Copies a complete image between directories, the manifest last (it marks the copy complete). */
async function copyImage(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const name of [KERNEL_FILE, INITRD_FILE, MANIFEST_FILE])
    await copyAtomic(join(from, name), join(to, name));
}

async function pruneSharedCache(cacheDir: string, logger: Logger): Promise<void> {
  const root = join(cacheDir, 'node-image');
  const entries = await readdir(root, { withFileTypes: true });
  const dirs = await Promise.all(
    entries
      .filter((e) => e.isDirectory() && /^[0-9a-f]{64}$/.test(e.name))
      .map(async (e) => ({ path: join(root, e.name), mtime: (await stat(join(root, e.name))).mtimeMs })),
  );
  for (const d of dirs.sort((a, b) => b.mtime - a.mtime).slice(SHARED_CACHE_KEEP)) {
    await rm(d.path, { recursive: true, force: true });
    logger.info({ dir: d.path }, 'old node image removed from the cache');
  }
}

/** Builds (or returns the cached) node environment in `outDir`. */
export async function buildNodeImage(opts: BuildNodeImageOptions): Promise<NodeImage> {
  const logger = opts.logger.child({ module: 'node-images' });
  const flavour = opts.flavour ?? 'generic';
  const mtime = opts.sourceDateEpoch ?? 0;
  const busyboxPath = opts.busyboxPath ?? '/bin/busybox';
  const started = Date.now();
  const progress = (stage: NodeImageStage, percent: number): void => opts.onProgress?.({ stage, percent });

  progress('kernel', 0);
  const kernel = await ensureKernel({ cacheDir: opts.cacheDir, logger, flavour });
  let busybox: Buffer;
  try {
    busybox = await readFile(busyboxPath);
  } catch {
    throw new CorralError('NODE_IMAGE_BUILD_FAILED', `${busyboxPath} not found: install busybox-static`);
  }
  if (elfIsDynamic(busybox)) {
    throw new CorralError(
      'NODE_IMAGE_BUILD_FAILED',
      `${busyboxPath} is dynamically linked and cannot run in the initramfs: install busybox-static`,
    );
  }
  progress('inputs', 40);
  const scripts = await readAgentScripts();
  const requested = requestedModules(flavour);
  const bbVersion = await busyboxVersion(busyboxPath);
  const bbSha = sha256(busybox);

  const inputsHash = sha256(
    JSON.stringify({
      format: FORMAT,
      flavour,
      kernelPackage: kernel.packageName,
      kernelPackageVersion: kernel.packageVersion,
      busybox: bbSha,
      scripts: {
        init: sha256(scripts.init),
        agent: sha256(scripts.agent),
        udhcpc: sha256(scripts.udhcpcScript),
        sharedroot: sha256(scripts.sharedroot ?? ''),
      },
      requested,
      mtime,
      builder: await builderHash(),
    }),
  );

  const cached = await cachedImage(opts.outDir, inputsHash);
  if (cached) {
    logger.info({ outDir: opts.outDir, kernelVersion: cached.kernelVersion }, 'node image up to date');
    progress('done', 100);
    return cached;
  }
  const shared = sharedCacheDir(opts.cacheDir, inputsHash);
  if (await cachedImage(shared, inputsHash)) {
    progress('writing', 90);
    await copyImage(shared, opts.outDir);
    const copied = await cachedImage(opts.outDir, inputsHash);
    if (copied) {
      logger.info(
        { outDir: opts.outDir, from: shared, ms: Date.now() - started },
        'node image copied from the cache',
      );
      progress('done', 100);
      return copied;
    }
  }

  progress('modules', 50);
  const tree = await indexModules(kernel.modulesDir);
  const modules = await resolveModules(tree, requested);
  for (const s of modules.skipped) logger.info({ module: s.name, reason: s.reason }, 'module skipped');
  progress('initramfs', 65);
  const initrd = await buildInitramfs({
    kernelVersion: kernel.kernelVersion,
    tree,
    modules,
    busybox,
    busyboxApplets: await busyboxApplets(busyboxPath),
    scripts,
    mtime,
    release: {
      CORRAL_IMAGE_FORMAT: String(FORMAT),
      KERNEL_PACKAGE: `${kernel.packageName}=${kernel.packageVersion}`,
      KERNEL_FLAVOUR: flavour,
      BUSYBOX: bbVersion,
      INPUTS_SHA256: inputsHash,
    },
  });

  progress('writing', 90);
  await mkdir(opts.outDir, { recursive: true });
  const kernelPath = join(opts.outDir, KERNEL_FILE);
  const initrdPath = join(opts.outDir, INITRD_FILE);
  await copyAtomic(kernel.vmlinuzPath, kernelPath);
  const kernelBytes = await readFile(kernelPath);
  await writeAtomic(initrdPath, initrd);
  const manifest: NodeImageManifest = {
    format: FORMAT,
    inputsHash,
    flavour,
    kernel: {
      package: kernel.packageName,
      version: kernel.packageVersion,
      kernelVersion: kernel.kernelVersion,
    },
    busybox: { version: bbVersion, sha256: bbSha },
    modules: {
      requested,
      loadOrder: modules.loadOrder,
      skipped: modules.skipped,
      firmwareNotIncluded: modules.firmware,
    },
    sourceDateEpoch: mtime,
    files: {
      kernel: { name: KERNEL_FILE, sha256: sha256(kernelBytes), size: kernelBytes.length },
      initrd: { name: INITRD_FILE, sha256: sha256(initrd), size: initrd.length },
    },
  };
  // The manifest goes last: its presence with a matching hash is what marks the build complete.
  await writeAtomic(join(opts.outDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  // Best effort: a cache that cannot be written only costs the next data directory a build.
  await copyImage(opts.outDir, shared)
    .then(() => pruneSharedCache(opts.cacheDir, logger))
    .catch((err: unknown) => logger.warn({ err, dir: shared }, 'node image not kept in the cache'));
  logger.info(
    {
      outDir: opts.outDir,
      kernel: `${kernel.packageName}=${kernel.packageVersion}`,
      modules: modules.names.length,
      initrdBytes: initrd.length,
      ms: Date.now() - started,
    },
    'node image built',
  );
  progress('done', 100);
  return {
    kernelPath,
    initrdPath,
    kernelVersion: kernel.kernelVersion,
    kernelSha256: manifest.files.kernel.sha256,
    initrdSha256: manifest.files.initrd.sha256,
  };
}
