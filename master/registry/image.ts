/**
 * A container image as the registry stores it (Docker Image Manifest V2, Schema 2; docs/registry.md):
 * gzip'd layer blobs, one config JSON blob, and a manifest naming both by sha256 digest. Built here from
 * a root file system tree (Corral's Debian OS image, the tests' busybox tree) without a container engine.
 *
 * A layer has two hashes: its digest (sha256 of the gzip bytes the registry stores) and its diff ID (sha256
 * of the uncompressed tar, which the config's rootfs.diff_ids lists and the engine checks after it
 * unpacks). Both are taken in one pass while the tar streams through gzip into the cache, so a 450 MB
 * tree is read once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { CorralError } from '../util/errors.js';
import type { ImageFormat } from '../store/images.js';

export const MEDIA = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
  layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Blob {
  /** `sha256:<hex>`. */
  digest: string;
  size: number;
  mediaType: string;
  /** Where the bytes are: a file, or bytes in memory (config, manifest). */
  path?: string;
  bytes?: Buffer;
}

export interface Layer extends Blob {
  path: string;
  /** `sha256:<hex>` of the uncompressed tar. */
  diffId: string;
}

export interface BuiltImage {
  layers: Layer[];
  config: Blob & { bytes: Buffer };
  manifest: Buffer;
  /** sha256 of the manifest bytes: what a pull by digest names, and what Docker-Content-Digest returns. */
  manifestDigest: string;
}

export const sha256 = (b: Buffer | string): string =>
  `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A pass-through that hashes and counts the bytes that cross it. */
function hashing(): { stream: Transform; digest(): string; size(): number } {
  const h = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      h.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  return { stream, digest: () => `sha256:${h.digest('hex')}`, size: () => size };
}

/**
 * Gzips a tar stream into `dir/<hex>.tar.gz` (content-addressed: the same tar gives the same file, as
 * Node's gzip writes no time stamp). Written to a temp name and renamed, so a killed build leaves no
 * half blob under a digest's name.
 */
export async function writeLayer(tar: Readable, dir: string): Promise<Layer> {
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.layer-${process.pid}-${Date.now()}.tmp`);
  const raw = hashing();
  const packed = hashing();
  try {
    await pipeline(tar, raw.stream, createGzip({ level: 6 }), packed.stream, createWriteStream(tmp));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const digest = packed.digest();
  const path = join(dir, `${digest.slice('sha256:'.length)}.tar.gz`);
  await rename(tmp, path);
  return { digest, size: packed.size(), diffId: raw.digest(), path, mediaType: MEDIA.layer };
}

/** Output of a child process as a stream that fails when the child exits non-zero. */
function childOutput(
  child: ChildProcess,
  what: string,
  ok: (stderr: string) => boolean = () => false,
): Readable {
  const out = new PassThrough();
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  child.on('error', (err) =>
    out.destroy(new CorralError('REGISTRY_SOURCE_INVALID', `cannot run ${what}: ${err.message}`)),
  );
  child.stdout?.pipe(out, { end: false });
  child.on('close', (code) => {
    if (code === 0 || ok(stderr)) out.end();
    else
      out.destroy(
        new CorralError('REGISTRY_SOURCE_INVALID', `${what} failed (exit ${code}): ${stderr.trim()}`),
      );
  });
  return out;
}

/**
 * What a container does not use from a node's OS tree: the kernel, its initrd and modules (the container
 * runs on its host's kernel). 266 of the 564 MB of the Debian 12 image; left out of the base layer.
 */
export const KERNEL_PATHS = ['./boot/*', './usr/lib/modules/*', './lib/modules/*'];

/** `tar --delete` as a filter: the stream without KERNEL_PATHS (the directories themselves stay, empty). */
function withoutKernel(tar: Readable, what: string): Readable {
  const child = spawn('tar', ['--delete', '-f', '-', '--wildcards', ...KERNEL_PATHS], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // GNU tar exits 2 when a pattern matched nothing (a tree without /lib/modules): the output is whole.
  const onlyNotFound = (stderr: string): boolean =>
    stderr
      .trim()
      .split('\n')
      .every((l) => /Not found in archive|Exiting with failure status due to previous errors/.test(l));
  const out = childOutput(child, `tar --delete (${what})`, onlyNotFound);
  // A failed source (zstd, a read error) fails the layer, whatever tar makes of the cut input.
  tar.on('error', (err) => {
    child.stdin?.destroy();
    out.destroy(err);
  });
  child.stdin?.on('error', () => undefined); // tar exiting early: reported by its exit status
  tar.pipe(child.stdin!);
  return out;
}

/**
 * A tree as one tar stream, without KERNEL_PATHS: sorted names and numeric owners, so an unchanged tree gives the same bytes
 * (and the same digests: a re-push finds every blob present). GNU tar keeps modes, owners, devices,
 * hard and symbolic links as the engine needs them to unpack a root file system.
 */
export async function treeTar(dir: string): Promise<Readable> {
  const s = await stat(dir).catch(() => undefined);
  if (!s?.isDirectory()) throw new CorralError('REGISTRY_SOURCE_INVALID', `${dir} is not a directory`);
  const excludes = KERNEL_PATHS.map((p) => `--exclude=${p}`);
  const child = spawn('tar', ['-C', dir, '--sort=name', '--numeric-owner', ...excludes, '-cf', '-', '.'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return childOutput(child, `tar -c ${dir}`);
}

/**
 * A registered OS image's root file system as an uncompressed tar stream (tar, tar.gz, tar.zst only),
 * without KERNEL_PATHS.
 */
export function imageTar(path: string, format: ImageFormat): Readable {
  return withoutKernel(rawImageTar(path, format), path);
}

function rawImageTar(path: string, format: ImageFormat): Readable {
  switch (format) {
    case 'tar':
      return createReadStream(path);
    case 'tar.gz':
      return createReadStream(path).pipe(createGunzip());
    case 'tar.zst':
      return childOutput(
        spawn('zstd', ['-dc', path], { stdio: ['ignore', 'pipe', 'pipe'] }),
        `zstd -dc ${path}`,
      );
    default:
      throw new CorralError(
        'REGISTRY_SOURCE_INVALID',
        `a ${format} image is a disk, not a root file system tree: the base image needs a tar image`,
      );
  }
}

export interface BaseImageSettings {
  /** The command a container runs when none is given (`docker run IMAGE` with no command). */
  cmd: string[];
  env: string[];
  architecture?: string;
}

export const BASE_IMAGE_DEFAULTS: BaseImageSettings = {
  cmd: ['/bin/sh'],
  env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
  architecture: 'amd64',
};

/**
 * The image config (Docker Image Spec v1.2): no `created` time, so the same layers give the same config
 * digest and a re-push of an unchanged tree changes nothing in the registry.
 */
export function imageConfig(diffIds: readonly string[], s: BaseImageSettings = BASE_IMAGE_DEFAULTS): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: s.architecture ?? 'amd64',
      os: 'linux',
      config: { Env: s.env, Cmd: s.cmd },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map(() => ({ created_by: 'corral registry push-base' })),
    }),
  );
}

export function manifestOf(config: Blob, layers: readonly Blob[]): Buffer {
  const ref = (b: Blob): { mediaType: string; size: number; digest: string } => ({
    mediaType: b.mediaType,
    size: b.size,
    digest: b.digest,
  });
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.manifest,
      config: ref(config),
      layers: layers.map(ref),
    }),
  );
}

/** Layers plus their config (given as bytes, e.g. from a `docker save` archive, or made here). */
export function assemble(layers: Layer[], configBytes?: Buffer, settings?: BaseImageSettings): BuiltImage {
  const bytes =
    configBytes ??
    imageConfig(
      layers.map((l) => l.diffId),
      settings,
    );
  const config = { digest: sha256(bytes), size: bytes.length, mediaType: MEDIA.config, bytes };
  const manifest = manifestOf(config, layers);
  return { layers, config, manifest, manifestDigest: sha256(manifest) };
}
