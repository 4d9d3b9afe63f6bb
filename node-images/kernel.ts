/**
 * The node environment's kernel: Debian's own, fetched with apt-get and unpacked with dpkg -x into a
 * cache directory (shared/LAB.md, "Kernel for node images").
 *
 * Flavours: `generic` (linux-image-amd64, the default) has the drivers of physical servers (e1000e, igb,
 * ixgbe, i40e, ice, tg3, bnxt_en, mlx4/5, r8169, ...) besides virtio, so it boots real hardware and VMs
 * alike; `cloud` (linux-image-cloud-amd64) is smaller and boots VMs on virtio only. Both resolve through their Debian meta-package, so a point release of Debian
 * moves the cache to the new ABI (6.1.0-N) without any change here.
 */
import { randomBytes, createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../master/util/logger.js';
import { CorralError } from '../master/util/errors.js';
import { execText } from './exec.js';

export type KernelFlavour = 'cloud' | 'generic';

export const KERNEL_META_PACKAGES: Readonly<Record<KernelFlavour, string>> = Object.freeze({
  cloud: 'linux-image-cloud-amd64',
  generic: 'linux-image-amd64',
});

export interface KernelPackage {
  name: string;
  version: string;
}

export interface Kernel {
  flavour: KernelFlavour;
  packageName: string;
  packageVersion: string;
  /** `uname -r` of this kernel, also the name of its lib/modules directory, e.g. 6.1.0-56-cloud-amd64. */
  kernelVersion: string;
  vmlinuzPath: string;
  /** lib/modules/<kernelVersion> inside the unpacked package. */
  modulesDir: string;
  /** True when the cache already held this package and nothing was downloaded. */
  fromCache: boolean;
}

interface KernelRecord {
  flavour: KernelFlavour;
  packageName: string;
  packageVersion: string;
  kernelVersion: string;
  debSha256: string;
}

const RECORD = 'kernel.json';

/**
 * Picks the versioned image package out of `apt-cache show --no-all-versions <meta>`: the meta-package
 * depends on exactly one ABI package, pinned to its own version, e.g.
 * `Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)`.
 */
export function parseMetaDepends(
  text: string,
  flavour: KernelFlavour,
): { name: string; version?: string } | undefined {
  const depends = /^Depends:\s*(.*)$/m.exec(text)?.[1] ?? '';
  const suffix = flavour === 'cloud' ? '-cloud-amd64' : '-amd64';
  for (const alternative of depends.split(/[,|]/)) {
    const m = /^\s*(linux-image-[0-9]\S*)\s*(?:\(\s*=\s*([^)\s]+)\s*\))?\s*$/.exec(alternative);
    const name = m?.[1];
    if (!name || !name.endsWith(suffix)) continue;
    if (flavour === 'generic' && name.endsWith('-cloud-amd64')) continue;
    return m[2] ? { name, version: m[2] } : { name };
  }
  return undefined;
}

/** The candidate version from `apt-cache show --no-all-versions <pkg>`. */
export function parseAptVersion(text: string): string | undefined {
  return /^Version:\s*(\S+)\s*$/m.exec(text)?.[1];
}

/** Resolves the meta-package to its ABI package; apt-cache is slow here (no pkgcache), so one call if we can. */
async function resolvePackage(flavour: KernelFlavour): Promise<KernelPackage | undefined> {
  try {
    const meta = await execText('apt-cache', ['show', '--no-all-versions', KERNEL_META_PACKAGES[flavour]], {
      timeoutMs: 60_000,
    });
    const dep = parseMetaDepends(meta, flavour);
    if (!dep) return undefined;
    if (dep.version) return { name: dep.name, version: dep.version };
    const show = await execText('apt-cache', ['show', '--no-all-versions', dep.name], { timeoutMs: 60_000 });
    const version = parseAptVersion(show);
    return version ? { name: dep.name, version } : undefined;
  } catch {
    // apt-cache exits non-zero for an unknown package: the lists are missing or stale.
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function kernelFromRecord(dir: string, rec: KernelRecord, fromCache: boolean): Kernel {
  const root = join(dir, 'root');
  return {
    flavour: rec.flavour,
    packageName: rec.packageName,
    packageVersion: rec.packageVersion,
    kernelVersion: rec.kernelVersion,
    vmlinuzPath: join(root, 'boot', `vmlinuz-${rec.kernelVersion}`),
    modulesDir: join(root, 'lib', 'modules', rec.kernelVersion),
    fromCache,
  };
}

async function readRecord(dir: string): Promise<KernelRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, RECORD), 'utf8')) as KernelRecord;
  } catch {
    return undefined;
  }
}

/** The newest kernel of this flavour already in the cache: the offline fallback when apt knows nothing. */
async function newestCached(kernelsDir: string, flavour: KernelFlavour): Promise<Kernel | undefined> {
  let names: string[];
  try {
    names = await readdir(kernelsDir);
  } catch {
    return undefined;
  }
  const found: { dir: string; rec: KernelRecord }[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const rec = await readRecord(join(kernelsDir, name));
    if (rec?.flavour === flavour) found.push({ dir: join(kernelsDir, name), rec });
  }
  found.sort((a, b) =>
    `${a.rec.packageName} ${a.rec.packageVersion}`.localeCompare(
      `${b.rec.packageName} ${b.rec.packageVersion}`,
      'en',
      {
        numeric: true,
      },
    ),
  );
  const last = found.at(-1);
  return last ? kernelFromRecord(last.dir, last.rec, true) : undefined;
}

async function download(
  pkg: KernelPackage,
  flavour: KernelFlavour,
  kernelsDir: string,
  finalDir: string,
  logger: Logger,
): Promise<Kernel> {
  // Work in a private directory and rename it into place at the end: a concurrent build (two test files,
  // two CLI runs) either sees no cache entry or a complete one, never a half-extracted tree.
  const tmp = join(kernelsDir, `.tmp-${pkg.name}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { recursive: true });
  try {
    const started = Date.now();
    await execText('apt-get', ['download', `${pkg.name}=${pkg.version}`], {
      cwd: tmp,
      timeoutMs: 15 * 60_000,
    });
    const deb = (await readdir(tmp)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new CorralError('NODE_IMAGE_BUILD_FAILED', `apt-get download ${pkg.name} left no .deb`);
    const debPath = join(tmp, deb);
    const debSha256 = createHash('sha256')
      .update(await readFile(debPath))
      .digest('hex');
    await execText('dpkg', ['-x', debPath, join(tmp, 'root')], { timeoutMs: 10 * 60_000 });
    await rm(debPath);
    const versions = await readdir(join(tmp, 'root', 'lib', 'modules'));
    const kernelVersion = versions.length === 1 ? versions[0] : undefined;
    if (!kernelVersion) {
      throw new CorralError(
        'NODE_IMAGE_BUILD_FAILED',
        `${pkg.name} holds ${versions.length} module trees, expected exactly one`,
      );
    }
    const rec: KernelRecord = {
      flavour,
      packageName: pkg.name,
      packageVersion: pkg.version,
      kernelVersion,
      debSha256,
    };
    if (!(await exists(join(tmp, 'root', 'boot', `vmlinuz-${kernelVersion}`)))) {
      throw new CorralError('NODE_IMAGE_BUILD_FAILED', `${pkg.name} has no boot/vmlinuz-${kernelVersion}`);
    }
    await depmodTree(join(tmp, 'root'), kernelVersion);
    await writeFile(join(tmp, RECORD), `${JSON.stringify(rec, null, 2)}\n`);
    try {
      await rename(tmp, finalDir);
    } catch (err) {
      // Another builder finished first; its tree is identical, use it.
      if (!(await readRecord(finalDir))) throw err;
      await rm(tmp, { recursive: true, force: true });
    }
    logger.info(
      { package: pkg.name, version: pkg.version, kernelVersion, ms: Date.now() - started },
      'kernel package downloaded and unpacked',
    );
    return kernelFromRecord(finalDir, rec, false);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Generates modules.dep/modules.alias for the unpacked tree (the package leaves that to its postinst):
 * the builder resolves softdep aliases such as ext4's `crypto-crc32c` through modules.alias. An empty
 * config directory keeps the build host's /etc/depmod.d out of it.
 */
async function depmodTree(root: string, kernelVersion: string): Promise<void> {
  const emptyConfig = await mkdtemp(join(tmpdir(), 'corral-depmod-conf-'));
  try {
    await execText('depmod', ['-C', emptyConfig, '-b', root, kernelVersion], { timeoutMs: 5 * 60_000 });
  } finally {
    await rm(emptyConfig, { recursive: true, force: true });
  }
}

export interface EnsureKernelOptions {
  cacheDir: string;
  logger: Logger;
  flavour?: KernelFlavour;
}

/**
 * Returns the current Debian kernel of the flavour, unpacked under `cacheDir/kernels/<pkg>_<version>/`.
 * Idempotent: with that directory present nothing is downloaded. `apt-get update` runs only when
 * apt-cache knows no such kernel; when even that fails, the newest cached kernel of the flavour is used.
 */
export async function ensureKernel(opts: EnsureKernelOptions): Promise<Kernel> {
  const flavour = opts.flavour ?? 'generic';
  const logger = opts.logger;
  const kernelsDir = join(opts.cacheDir, 'kernels');
  await mkdir(kernelsDir, { recursive: true });

  let pkg = await resolvePackage(flavour);
  if (!pkg) {
    logger.info(
      { meta: KERNEL_META_PACKAGES[flavour] },
      'apt-cache knows no kernel package; running apt-get update',
    );
    try {
      await execText('apt-get', ['update'], { timeoutMs: 10 * 60_000 });
    } catch (err) {
      logger.warn({ err }, 'apt-get update failed');
    }
    pkg = await resolvePackage(flavour);
  }
  if (!pkg) {
    const cached = await newestCached(kernelsDir, flavour);
    if (cached) {
      logger.warn(
        { package: cached.packageName },
        'apt cannot resolve a kernel; using the newest cached one',
      );
      return cached;
    }
    throw new CorralError(
      'NODE_IMAGE_BUILD_FAILED',
      `cannot resolve ${KERNEL_META_PACKAGES[flavour]} with apt-cache, and no kernel is cached in ${kernelsDir}`,
    );
  }

  const finalDir = join(kernelsDir, `${pkg.name}_${pkg.version}`);
  const rec = await readRecord(finalDir);
  if (rec) {
    logger.debug({ package: pkg.name, version: pkg.version }, 'kernel package cached');
    const kernel = kernelFromRecord(finalDir, rec, true);
    // Caches unpacked before depmod was part of the download get their indexes now.
    if (!(await exists(join(kernel.modulesDir, 'modules.alias')))) {
      await depmodTree(join(finalDir, 'root'), rec.kernelVersion);
    }
    return kernel;
  }
  return download(pkg, flavour, kernelsDir, finalDir, logger);
}
