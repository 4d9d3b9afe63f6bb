/**
 * Builder of a small real Debian OS image for deployment (issue 5): `debootstrap --variant=minbase` plus
 * Debian's generic kernel (the drivers of physical servers' NICs and storage, issue 22), openssh-server, cloud-init, systemd (networkd for the templated network config), GRUB for BIOS
 * and UEFI (installed onto the disk by the installer from inside the image, as curtin does), and the
 * Corral node agent that reports the first boot from disk. The result is a root filesystem tarball
 * compressed with zstd (the node decompresses zstd several times faster than gzip under emulation).
 *
 * Cached: `CACHE/os-images/<inputs hash>/` holds `rootfs.tar.zst` and `manifest.json`; the manifest is
 * written last, so its presence marks a complete build. The hash covers the suite, mirror, package list,
 * and the agent files; bump FORMAT when this builder changes what it produces.
 */
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CorralError } from '../master/util/errors.js';
import type { Logger } from '../master/util/logger.js';
import { installPath } from '../master/util/paths.js';

const FORMAT = 4;

/**
 * Packages on top of minbase. grub-*-bin, not grub-pc: the installer runs grub-install itself. The kernel
 * is the generic one: linux-image-cloud-amd64 has virtio but no e1000e, igb, ixgbe, i40e, ice, bnxt, tg3
 * or r8169, so a real server deployed with it would come up without network and never report `deployed`.
 */
export const OS_IMAGE_PACKAGES = [
  'linux-image-amd64',
  'initramfs-tools',
  'systemd-sysv',
  'udev',
  'openssh-server',
  'grub2-common',
  'grub-pc-bin',
  'grub-efi-amd64-bin',
  // Secure Boot (issue 18): with these in the image, the installer's grub-install puts Microsoft-signed
  // shim at \EFI\BOOT\BOOTX64.EFI and Debian-signed GRUB beside it, so a deployed node keeps booting with
  // Secure Boot on (shim → signed GRUB → the signed kernel of linux-image-amd64). shim-signed brings mokutil.
  'shim-signed',
  'grub-efi-amd64-signed',
  'e2fsprogs',
  'iproute2',
  'wget',
  'ca-certificates',
  'prometheus-node-exporter',
  // First-boot configuration the ecosystem's way (issue 16): user-data from the master's NoCloud
  // datasource, which the installer points it at (/etc/cloud/cloud.cfg.d/90-corral.cfg).
  'cloud-init',
  // debootstrap resolves no virtual packages: python3-cryptography (oauthlib's, so cloud-init's) needs
  // python3-cffi-backend-api-min/max, which only python3-cffi-backend provides.
  'python3-cffi-backend',
] as const;

/**
 * Image variants: packages on top of OS_IMAGE_PACKAGES. `default` adds none and keeps its cache key (every
 * e2e deploy pays for the default image's size). `engine` is for the apps' engine nodes (issue 21):
 * Debian's docker.io with its dependencies (containerd, runc, tini, iptables), about 255 MB installed
 * (`apt-cache show docker.io containerd runc tini`, Installed-Size, bookworm), so the lab and a site
 * without internet get dockerd from the same mirror as the rest of the image, with nothing to install on
 * first boot. The engine nodes' cloud-init layer (master/apps/engine-layer.ts) then points dockerd at the
 * master's registry.
 */
export const OS_IMAGE_VARIANTS = {
  default: [],
  // apparmor: docker.io only Recommends it (debootstrap installs no Recommends), but Debian's kernel has
  // AppArmor on, so dockerd loads its docker-default profile for every container and, without
  // apparmor_parser, fails each task ("starting container failed: exec: apparmor_parser: executable file
  // not found"; seen on the lab's deployed engine nodes, apps-lab e2e).
  engine: ['docker.io', 'apparmor'],
} as const satisfies Record<string, readonly string[]>;
export type OsImageVariant = keyof typeof OS_IMAGE_VARIANTS;

export function isOsImageVariant(v: string): v is OsImageVariant {
  return Object.hasOwn(OS_IMAGE_VARIANTS, v);
}

/** The packages debootstrap installs for a variant (minbase + these). */
export function osImagePackages(variant: OsImageVariant = 'default'): string[] {
  return [...OS_IMAGE_PACKAGES, ...OS_IMAGE_VARIANTS[variant]];
}

/**
 * The build's cache key. The default variant hashes exactly the inputs it hashed before variants existed,
 * so an existing cached default image stays valid; another variant adds its name and extra packages.
 */
export function osImageCacheKey(inputs: {
  suite: string;
  mirror: string;
  variant: OsImageVariant;
  reportSha256: string;
  unitSha256: string;
}): string {
  const extra = OS_IMAGE_VARIANTS[inputs.variant];
  return sha256(
    JSON.stringify({
      FORMAT,
      suite: inputs.suite,
      mirror: inputs.mirror,
      packages: OS_IMAGE_PACKAGES,
      excludes: DPKG_EXCLUDES,
      pruned: PRUNED_MODULE_DIRS,
      report: inputs.reportSha256,
      unit: inputs.unitSha256,
      ...(extra.length > 0 ? { variant: inputs.variant, extra } : {}),
    }),
  ).slice(0, 16);
}

export interface OsImage {
  path: string;
  sha256: string;
  sizeBytes: number;
  format: 'tar.zst';
  osName: string;
  osVersion: string;
  /** Bytes the unpacked tree occupies: the installer's root partition must be larger. */
  unpackedBytes: number;
  kernelVersion: string;
}

export interface BuildOsImageOptions {
  cacheDir: string;
  logger: Logger;
  suite?: string;
  /** Debian mirror; default: the first `URIs:` of /etc/apt/sources.list.d/debian.sources. */
  mirror?: string;
  /** Bounded: debootstrap from a slow mirror must not hang a test forever. */
  timeoutMs?: number;
  /** Extra packages (OS_IMAGE_VARIANTS); default: none. */
  variant?: OsImageVariant;
}

/**
 * Files a node never reads: documentation (copyright notices kept), manual pages, translations. Written to
 * /etc/dpkg/dpkg.cfg.d/ as well, so packages the operator installs later stay as slim (Debian's
 * "minimal" cloud images do the same). About a sixth of the unpacked tree, all of it compressible: bytes
 * every deploy would stream and decompress for nothing.
 */
export const DPKG_EXCLUDES = [
  'path-exclude=/usr/share/doc/*',
  'path-include=/usr/share/doc/*/copyright',
  'path-exclude=/usr/share/man/*',
  'path-exclude=/usr/share/info/*',
  'path-exclude=/usr/share/locale/*',
  'path-include=/usr/share/locale/locale.alias',
  'path-exclude=/usr/share/lintian/*',
] as const;

/**
 * Kernel module trees for hardware and protocols a provisioned cluster node does not use (industrial I/O
 * cards, InfiniBand, SCSI targets, Ceph, TIPC, SMC; and, with the generic kernel, sound, cameras and TV
 * cards, Wi-Fi, Bluetooth, ISDN, CAN bus, staging drivers, and the desktop GPUs' DRM drivers, which need
 * non-free firmware the image does not carry: about 170 of its 367 MB of modules).
 * Every wired NIC (drivers/net/ethernet), storage controller (drivers/scsi, ata, nvme, md), USB/HID for a
 * KVM console, and the DRM core with the BMCs' VGA (ast, mgag200) stays; depmod is re-run after pruning.
 */
export const PRUNED_MODULE_DIRS = [
  'kernel/drivers/comedi',
  'kernel/drivers/infiniband',
  'kernel/drivers/target',
  'kernel/fs/ceph',
  'kernel/net/ceph',
  'kernel/net/tipc',
  'kernel/net/smc',
  'kernel/sound',
  'kernel/drivers/media',
  'kernel/drivers/net/wireless',
  'kernel/net/wireless',
  'kernel/net/mac80211',
  'kernel/drivers/bluetooth',
  'kernel/net/bluetooth',
  'kernel/drivers/isdn',
  'kernel/drivers/net/can',
  'kernel/net/can',
  'kernel/drivers/staging',
  'kernel/drivers/iio',
  'kernel/drivers/gpu/drm/amd',
  'kernel/drivers/gpu/drm/radeon',
  'kernel/drivers/gpu/drm/nouveau',
  'kernel/drivers/gpu/drm/i915',
] as const;

/** Shell that deletes what DPKG_EXCLUDES would have kept out of `root`. */
export function slimScript(root: string, kernelVersion: string): string {
  const mods = `${root}/usr/lib/modules/${kernelVersion}`;
  return [
    `find ${root}/usr/share/doc -mindepth 1 ! -name copyright ! -type d -delete`,
    `find ${root}/usr/share/doc -mindepth 1 -type d -empty -delete`,
    `rm -rf ${root}/usr/share/man/* ${root}/usr/share/info/* ${root}/usr/share/lintian`,
    `find ${root}/usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +`,
    `rm -f ${root}/var/cache/debconf/*-old ${root}/var/lib/dpkg/*-old`,
    ...PRUNED_MODULE_DIRS.map((d) => `rm -rf ${mods}/${d}`),
  ].join('; ');
}

const MANIFEST = 'manifest.json';
const TARBALL = 'rootfs.tar.zst';

export async function defaultMirror(): Promise<string> {
  for (const f of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    const text = await readFile(f, 'utf8').catch(() => '');
    const deb822 = /^URIs:\s*(\S+)/m.exec(text);
    if (deb822?.[1]) return deb822[1];
    const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/m.exec(text);
    if (oneLine?.[1]) return oneLine[1];
  }
  return 'http://deb.debian.org/debian';
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** Runs a command with its output appended to `logPath`; rejects with the log tail on failure. */
function runLogged(cmd: string, args: string[], logPath: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(logPath, { flags: 'a' });
    out.write(`\n$ ${cmd} ${args.join(' ')}\n`);
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' },
    });
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new CorralError('NODE_IMAGE_BUILD_FAILED', `${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      out.end(() => {
        if (code === 0) return resolve();
        void readFile(logPath, 'utf8').then((text) =>
          reject(
            new CorralError(
              'NODE_IMAGE_BUILD_FAILED',
              `${cmd} failed (${signal ?? `exit ${code}`}); log ${logPath}: ${text.trim().split('\n').slice(-3).join(' | ')}`,
            ),
          ),
        );
      });
    });
  });
}

async function agentFiles(): Promise<{ report: Buffer; unit: Buffer }> {
  return {
    report: await readFile(installPath('node-images', 'agent', 'corral-node-report')),
    unit: await readFile(installPath('node-images', 'agent', 'corral-node-report.service')),
  };
}

/** Builds (or returns the cached) Debian image. Needs root, debootstrap and zstd. */
export async function buildOsImage(opts: BuildOsImageOptions): Promise<OsImage> {
  const log = opts.logger.child({ module: 'os-image' });
  const suite = opts.suite ?? 'bookworm';
  const mirror = opts.mirror ?? (await defaultMirror());
  const agent = await agentFiles();
  const variant = opts.variant ?? 'default';
  const packages = osImagePackages(variant);
  const key = osImageCacheKey({
    suite,
    mirror,
    variant,
    reportSha256: sha256(agent.report),
    unitSha256: sha256(agent.unit),
  });
  const outDir = join(
    opts.cacheDir,
    'os-images',
    `debian-${suite}${variant === 'default' ? '' : `-${variant}`}-${key}`,
  );
  const manifestPath = join(outDir, MANIFEST);
  if (existsSync(manifestPath)) {
    const m = JSON.parse(await readFile(manifestPath, 'utf8')) as Omit<OsImage, 'path'>;
    const path = join(outDir, TARBALL);
    const st = await stat(path).catch(() => undefined);
    if (st?.size === m.sizeBytes) {
      log.info({ path }, 'OS image up to date');
      return { ...m, path };
    }
  }

  const started = Date.now();
  const work = join(opts.cacheDir, 'os-images', `.build-${key}-${randomBytes(4).toString('hex')}`);
  const root = join(work, 'root');
  const logPath = join(work, 'build.log');
  const timeoutMs = opts.timeoutMs ?? 30 * 60_000;
  await mkdir(root, { recursive: true });
  const debs = join(opts.cacheDir, 'debootstrap-debs');
  await mkdir(debs, { recursive: true });
  log.info({ suite, mirror, log: logPath }, 'building the Debian OS image (debootstrap)');
  try {
    await runLogged(
      'debootstrap',
      ['--variant=minbase', `--include=${packages.join(',')}`, `--cache-dir=${debs}`, suite, root, mirror],
      logPath,
      timeoutMs,
    );
    // The node agent that reports the first boot from disk, enabled for multi-user.target.
    await copyFile(
      installPath('node-images', 'agent', 'corral-node-report'),
      join(root, 'usr/local/sbin/corral-node-report'),
    );
    await chmod(join(root, 'usr/local/sbin/corral-node-report'), 0o755);
    await writeFile(join(root, 'etc/systemd/system/corral-node-report.service'), agent.unit);
    // cloud-init's default locale is en_US.UTF-8, which this image does not generate (Debian's locale-gen
    // ignores the name cloud-init passes it), so its locale module failed and `cloud-init status` said
    // error on every first boot. C.UTF-8 is built into glibc; user-data may still set another.
    await writeFile(
      join(root, 'etc/cloud/cloud.cfg.d/01-corral-image.cfg'),
      '# Corral image: the one locale it has (user-data may set another and install it).\nlocale: C.UTF-8\n',
    );
    await runLogged(
      'chroot',
      [root, 'systemctl', 'enable', 'corral-node-report.service', 'systemd-networkd.service'],
      logPath,
      60_000,
    );
    // Every deployed node gets its own host keys: the installer makes them (ssh-keygen -A).
    await runLogged('sh', ['-c', `rm -f ${root}/etc/ssh/ssh_host_*`], logPath, 10_000);
    await runLogged(
      'sh',
      [
        '-c',
        `rm -rf ${root}/var/lib/apt/lists/* ${root}/var/cache/apt/*.bin ${root}/var/cache/apt/archives/*.deb; ` +
          `: > ${root}/etc/machine-id; echo corral-image > ${root}/etc/hostname`,
      ],
      logPath,
      10_000,
    );
    const kernelVersion = (await runCapture('sh', ['-c', `ls ${root}/lib/modules | head -n 1`])).trim();
    await writeFile(join(root, 'etc/dpkg/dpkg.cfg.d/01-corral-slim'), `${DPKG_EXCLUDES.join('\n')}\n`);
    await runLogged('sh', ['-c', slimScript(root, kernelVersion)], logPath, 60_000);
    await runLogged('chroot', [root, 'depmod', '-a', kernelVersion], logPath, 120_000);
    const osVersion = (await readFile(join(root, 'etc/debian_version'), 'utf8')).trim();
    const unpacked = Number((await runCapture('du', ['-sb', '--apparent-size', root])).split(/\s/)[0] ?? 0);
    const tmpTar = join(work, TARBALL);
    await runLogged(
      'sh',
      ['-c', `tar --numeric-owner --xattrs --sort=name -C ${root} -cf - . | zstd -q -T0 -6 -o ${tmpTar}`],
      logPath,
      timeoutMs,
    );
    const st = await stat(tmpTar);
    const image: Omit<OsImage, 'path'> = {
      sha256: await sha256File(tmpTar),
      sizeBytes: st.size,
      format: 'tar.zst',
      osName: 'debian',
      osVersion,
      unpackedBytes: unpacked,
      kernelVersion,
    };
    await mkdir(outDir, { recursive: true });
    await rename(tmpTar, join(outDir, TARBALL));
    await writeFile(`${manifestPath}.tmp`, `${JSON.stringify(image, null, 2)}\n`);
    await rename(`${manifestPath}.tmp`, manifestPath);
    log.info({ outDir, bytes: st.size, ms: Date.now() - started }, 'OS image built');
    await rm(work, { recursive: true, force: true });
    return { ...image, path: join(outDir, TARBALL) };
  } catch (err) {
    log.error({ log: logPath, err: (err as Error).message }, 'OS image build failed (work dir kept)');
    await rm(root, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

function runCapture(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(out)
        : reject(new CorralError('NODE_IMAGE_BUILD_FAILED', `${cmd} ${args.join(' ')}: exit ${code}`)),
    );
  });
}
