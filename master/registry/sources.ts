/**
 * Where an image's bytes come from, all into the same BuiltImage the push takes:
 * - a root file system tree (a directory): one layer, Corral's config (Cmd, Env);
 * - a registered OS image (tar, tar.gz, tar.zst; `corral image build-debian` makes debian-12): the same
 *   Debian tree the nodes install, one layer; cached by the image's sha256, so the gzip of a 450 MB tree
 *   is made once per image version;
 * - an operator's `docker save` archive (manifest.json + config + one tar per layer): its layers gzip'd,
 *   its own config kept byte for byte, each layer's diff ID checked against the config's.
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { ImageRecord } from '../store/images.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { assemble, imageTar, treeTar, writeLayer, type BuiltImage, type Layer } from './image.js';
import { parseReference, type ImageReference } from './reference.js';

/** Layers are cached here (content-addressed files, plus `by-image/<sha256>.json` for registered images). */
export const layerDir = (cacheDir: string): string => join(cacheDir, 'registry', 'layers');

export async function fromTree(dir: string, cacheDir: string): Promise<BuiltImage> {
  const layer = await writeLayer(await treeTar(dir), layerDir(cacheDir));
  return assemble([layer]);
}

export async function fromRegisteredImage(
  image: ImageRecord,
  path: string,
  cacheDir: string,
  logger: Logger,
): Promise<BuiltImage> {
  const dir = layerDir(cacheDir);
  // `.slim`: layers made before KERNEL_PATHS were left out are not reused.
  const memo = join(dir, 'by-image', `${image.sha256}.slim.json`);
  const known = existsSync(memo) ? (JSON.parse(await readFile(memo, 'utf8')) as Layer) : undefined;
  if (known && existsSync(known.path)) return assemble([known]);
  const t0 = Date.now();
  logger.info(
    { image: image.name, sha256: image.sha256 },
    'registry: building the base layer from the OS image',
  );
  const layer = await writeLayer(imageTar(path, image.format), dir);
  await mkdir(join(dir, 'by-image'), { recursive: true });
  await writeFile(memo, JSON.stringify(layer));
  logger.info(
    { image: image.name, digest: layer.digest, size: layer.size, ms: Date.now() - t0 },
    'registry: base layer built',
  );
  return assemble([layer]);
}

interface SaveManifestEntry {
  Config?: unknown;
  RepoTags?: unknown;
  Layers?: unknown;
}

/** A path named inside the archive, refused when it leaves the unpacked directory (`../x`, `/etc/x`). */
function inside(root: string, name: unknown): string {
  if (typeof name !== 'string' || !name) throw invalidArchive('names a file with no path');
  const p = resolve(root, name);
  if (!p.startsWith(root + sep)) throw invalidArchive(`names ${JSON.stringify(name)}, outside the archive`);
  return p;
}

const invalidArchive = (why: string): CorralError =>
  new CorralError('REGISTRY_SOURCE_INVALID', `not a docker save archive: manifest.json ${why}`);

async function isGzip(path: string): Promise<boolean> {
  const f = await open(path, 'r');
  try {
    const head = Buffer.alloc(2);
    await f.read(head, 0, 2, 0);
    return head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await f.close();
  }
}

export interface ArchiveImage {
  image: BuiltImage;
  /** The archive's first RepoTag, when it has one (`busybox:latest`). */
  reference?: ImageReference;
}

/** The first image of a `docker save` archive (Docker's format: manifest.json at the top). */
export async function fromDockerArchive(file: string, cacheDir: string): Promise<ArchiveImage> {
  if (!existsSync(file)) throw new CorralError('REGISTRY_SOURCE_INVALID', `${file} does not exist`);
  await mkdir(join(cacheDir, 'registry'), { recursive: true });
  const root = await mkdtemp(join(cacheDir, 'registry', 'archive-'));
  try {
    // GNU tar refuses members with `..` and strips leading `/`, so nothing lands outside `root`.
    await new Promise<void>((res, rej) => {
      const child = spawn('tar', ['-xf', file, '-C', root, '--no-same-owner'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', rej);
      child.on('close', (code) =>
        code === 0
          ? res()
          : rej(
              new CorralError(
                'REGISTRY_SOURCE_INVALID',
                `${file} is not a tar archive: ${err.trim().slice(0, 300)}`,
              ),
            ),
      );
    });
    const manifestPath = join(root, 'manifest.json');
    if (!existsSync(manifestPath)) throw invalidArchive('is missing');
    let entries: unknown;
    try {
      entries = JSON.parse(await readFile(manifestPath, 'utf8'));
    } catch {
      throw invalidArchive('is not JSON');
    }
    const first = (Array.isArray(entries) ? entries[0] : undefined) as SaveManifestEntry | undefined;
    if (!first || !Array.isArray(first.Layers) || first.Layers.length === 0)
      throw invalidArchive('lists no layers');
    const configBytes = await readFile(inside(root, first.Config));
    const diffIds = (JSON.parse(configBytes.toString('utf8')) as { rootfs?: { diff_ids?: unknown } }).rootfs
      ?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== first.Layers.length) {
      throw invalidArchive('and the image config disagree on the number of layers');
    }
    const layers: Layer[] = [];
    for (const [i, name] of first.Layers.entries()) {
      const path = inside(root, name);
      const tar: Readable = (await isGzip(path))
        ? createReadStream(path).pipe(createGunzip())
        : createReadStream(path);
      const layer = await writeLayer(tar, layerDir(cacheDir));
      if (layer.diffId !== diffIds[i]) {
        throw new CorralError(
          'REGISTRY_SOURCE_INVALID',
          `layer ${i} (${String(name)}) hashes to ${layer.diffId}, but the image config says ${String(diffIds[i])}`,
        );
      }
      layers.push(layer);
    }
    const tags = Array.isArray(first.RepoTags) ? first.RepoTags : [];
    const tag = typeof tags[0] === 'string' ? tags[0] : undefined;
    return {
      image: assemble(layers, configBytes),
      ...(tag ? { reference: parseReference(tag, { dropHost: true }) } : {}),
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
