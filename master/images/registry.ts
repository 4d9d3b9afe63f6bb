/**
 * The image registry: import, catalogue and delete OS images. Files are content-addressed in
 * DATA_DIR/images/<sha256>.<format>; the row in `images` is written last, in one transaction, after the
 * file has been read end to end by the tool that will unpack it on the node. So a corrupt or truncated
 * import fails before anything is registered, and a failed import leaves no file behind.
 *
 * Accepted: root filesystem tarballs (tar, tar.gz, tar.zst, or a directory, packed here as tar.zst) and
 * disk images (raw, raw.gz; qcow2 is converted to raw with qemu-img). Formats are told by content
 * (magic numbers), never by the file name.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Repos } from '../store/repos.js';
import type { ImageFormat, ImageRecord } from '../store/images.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { BeforeRisky } from '../util/before-risky.js';

export function imagesDir(dataDir: string): string {
  return join(dataDir, 'images');
}

export function imagePath(dataDir: string, image: ImageRecord): string {
  return join(imagesDir(dataDir), image.file);
}

/** Root file systems need room beyond their bytes: ext4 metadata, logs, apt, first-boot growth. */
export function minRootBytes(unpackedBytes: number): number {
  return Math.ceil(unpackedBytes * 1.25) + 256 * 2 ** 20;
}

/** `corrupt`: gzip or zstd magic, but not even the first block decompresses. */
type Sniffed = ImageFormat | 'qcow2' | 'zst-raw' | 'corrupt' | 'unknown';

function isTarHeader(block: Buffer): boolean {
  // POSIX ustar (and GNU) headers carry "ustar" at offset 257 (POSIX.1-1988 section 10.1.1).
  return block.length >= 262 && block.subarray(257, 262).toString('latin1') === 'ustar';
}

function isDiskHeader(b: Buffer): boolean {
  const mbr = b.length >= 512 && b[510] === 0x55 && b[511] === 0xaa;
  const gpt = b.length >= 520 && b.subarray(512, 520).toString('latin1') === 'EFI PART';
  return mbr || gpt;
}

/** The format from the first bytes (decompressed where needed). Exported for unit tests. */
export function sniffPlain(head: Buffer): Sniffed {
  if (isTarHeader(head)) return 'tar';
  if (isDiskHeader(head)) return 'raw';
  return 'unknown';
}

async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** First `n` bytes of a command's stdout (the command is killed after that). */
function commandHead(cmd: string, args: string[], n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    let got = 0;
    child.stdout.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= n) child.kill('SIGKILL');
    });
    child.on('close', () => resolve(Buffer.concat(chunks).subarray(0, n)));
    child.on('error', () => resolve(Buffer.alloc(0)));
  });
}

async function gunzipHead(path: string, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  const src = createReadStream(path, { end: 4 * 2 ** 20 });
  const gz = createGunzip();
  await new Promise<void>((resolve) => {
    gz.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= n) {
        src.destroy();
        gz.destroy();
        resolve();
      }
    });
    gz.on('error', () => resolve());
    gz.on('end', () => resolve());
    gz.on('close', () => resolve());
    src.pipe(gz);
  });
  return Buffer.concat(chunks).subarray(0, n);
}

export async function sniffFile(path: string): Promise<Sniffed> {
  const head = await readHead(path, 1024);
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const plain = await gunzipHead(path, 1024);
    if (plain.length === 0) return 'corrupt';
    const inner = sniffPlain(plain);
    return inner === 'tar' ? 'tar.gz' : inner === 'raw' ? 'raw.gz' : 'unknown';
  }
  if (head.readUInt32LE(0) === 0xfd2fb528) {
    const plain = await commandHead('zstd', ['-dc', path], 1024);
    if (plain.length === 0) return 'corrupt';
    const inner = sniffPlain(plain);
    return inner === 'tar' ? 'tar.zst' : inner === 'raw' ? 'zst-raw' : 'unknown';
  }
  if (head.subarray(0, 4).toString('latin1') === 'QFI\xfb') return 'qcow2';
  return sniffPlain(head);
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], timeoutMs = 30 * 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      if (stdout.length < 64 * 2 ** 20) stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new CorralError('IMAGE_INVALID', `cannot run ${cmd}: ${err.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

function tarCompressFlag(format: ImageFormat): string[] {
  return format === 'tar.gz' ? ['-z'] : format === 'tar.zst' ? ['--zstd'] : [];
}

/** Reads a tarball end to end (this is what catches truncation and corruption); returns unpacked bytes. */
async function verifyTarball(
  path: string,
  format: ImageFormat,
): Promise<{ unpacked: number; entries: number }> {
  const r = await run('tar', [
    '--list',
    '--verbose',
    '--numeric-owner',
    ...tarCompressFlag(format),
    '-f',
    path,
  ]);
  if (r.code !== 0) {
    throw new CorralError(
      'IMAGE_INVALID',
      `the ${format} archive is corrupt or truncated: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`,
    );
  }
  let unpacked = 0;
  let entries = 0;
  for (const line of r.stdout.split('\n')) {
    // "-rw-r--r-- 0/0   1234 2024-01-01 00:00 ./etc/hostname": the third field is the size.
    const m = /^\S+\s+\S+\s+(\d+)\s/.exec(line);
    if (m) {
      unpacked += Number(m[1]);
      entries++;
    }
  }
  if (entries === 0) throw new CorralError('IMAGE_INVALID', `the ${format} archive is empty`);
  return { unpacked, entries };
}

/** NAME/VERSION_ID from the tarball's os-release (usr/lib/os-release, else etc/os-release). */
async function osRelease(path: string, format: ImageFormat): Promise<{ id?: string; version?: string }> {
  for (const member of ['usr/lib/os-release', 'etc/os-release']) {
    const r = await run('tar', [
      '-xO',
      ...tarCompressFlag(format),
      '-f',
      path,
      '--wildcards',
      '--no-anchored',
      member,
    ]);
    if (r.code === 0 && r.stdout.trim()) {
      const get = (k: string): string | undefined =>
        new RegExp(`^${k}="?([^"\\n]*)"?$`, 'm').exec(r.stdout)?.[1];
      return { id: get('ID'), version: get('VERSION_ID') };
    }
  }
  return {};
}

async function hashAndCopy(src: string, dest: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  const input = createReadStream(src);
  input.on('data', (c) => {
    h.update(c);
    size += c.length;
  });
  await pipeline(input, createWriteStream(dest, { mode: 0o644 }));
  return { sha256: h.digest('hex'), size };
}

export interface ImportOptions {
  repos: Repos;
  dataDir: string;
  logger: Logger;
  /** A file (any accepted format) or a directory holding a root file system. */
  source: string;
  name: string;
  osName?: string;
  osVersion?: string;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export async function importImage(opts: ImportOptions): Promise<ImageRecord> {
  const log = opts.logger.child({ module: 'images' });
  if (!NAME.test(opts.name)) {
    throw new CorralError(
      'BODY_INVALID',
      `image name '${opts.name}' must be 1-64 lower-case letters, digits, '.', '-' or '_'`,
    );
  }
  if (opts.repos.images.getByName(opts.name)) {
    throw new CorralError('CONFLICT', `an image named ${opts.name} exists; delete it or choose another name`);
  }
  const st = await stat(opts.source).catch(() => undefined);
  if (!st) throw new CorralError('IMAGE_INVALID', `${opts.source} does not exist`);
  const dir = imagesDir(opts.dataDir);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.import-${randomBytes(6).toString('hex')}`);
  const started = Date.now();
  try {
    let format: ImageFormat;
    let sourceFile = opts.source;
    if (st.isDirectory()) {
      const r = await run('sh', [
        '-c',
        'tar --numeric-owner --xattrs --sort=name -C "$1" -cf - . | zstd -q -T0 -6 -o "$2"',
        'pack',
        opts.source,
        `${tmp}.pack`,
      ]);
      if (r.code !== 0)
        throw new CorralError('IMAGE_INVALID', `cannot pack ${opts.source}: ${r.stderr.trim()}`);
      sourceFile = `${tmp}.pack`;
      format = 'tar.zst';
    } else {
      const sniffed = await sniffFile(opts.source);
      if (sniffed === 'corrupt') {
        throw new CorralError(
          'IMAGE_INVALID',
          `${opts.source} is gzip or zstd compressed but does not decompress: the file is corrupt or truncated`,
        );
      }
      if (sniffed === 'unknown' || sniffed === 'zst-raw') {
        throw new CorralError(
          'IMAGE_INVALID',
          `${opts.source} is neither a tar archive (plain, gzip or zstd) nor a disk image (raw with an MBR/GPT, raw.gz, qcow2)`,
        );
      }
      if (sniffed === 'qcow2') {
        const check = await run('qemu-img', ['check', '-f', 'qcow2', opts.source]);
        if (check.code !== 0) {
          throw new CorralError(
            'IMAGE_INVALID',
            `qcow2 image is corrupt: ${check.stderr.trim() || check.stdout.trim()}`,
          );
        }
        const conv = await run('qemu-img', [
          'convert',
          '-f',
          'qcow2',
          '-O',
          'raw',
          opts.source,
          `${tmp}.raw`,
        ]);
        if (conv.code !== 0)
          throw new CorralError('IMAGE_INVALID', `qemu-img convert failed: ${conv.stderr.trim()}`);
        sourceFile = `${tmp}.raw`;
        format = 'raw';
      } else {
        format = sniffed;
      }
    }

    let minDisk: number;
    let os: { id?: string; version?: string } = {};
    if (format.startsWith('tar')) {
      const v = await verifyTarball(sourceFile, format);
      minDisk = minRootBytes(v.unpacked);
      os = await osRelease(sourceFile, format);
    } else if (format === 'raw.gz') {
      const r = await run('sh', ['-c', 'gzip -dc "$1" | wc -c', 'size', sourceFile]);
      const t = await run('gzip', ['-t', sourceFile]);
      if (t.code !== 0 || r.code !== 0) {
        throw new CorralError(
          'IMAGE_INVALID',
          `the raw.gz image is corrupt or truncated: ${t.stderr.trim()}`,
        );
      }
      minDisk = Number(r.stdout.trim());
    } else {
      minDisk = (await stat(sourceFile)).size;
      if (minDisk % 512 !== 0) {
        throw new CorralError(
          'IMAGE_INVALID',
          `raw image size ${minDisk} is not a whole number of 512-byte sectors (truncated?)`,
        );
      }
    }

    const { sha256, size } = await hashAndCopy(sourceFile, tmp);
    const existing = opts.repos.images.get(sha256);
    if (existing) {
      throw new CorralError(
        'CONFLICT',
        `the same image (sha256 ${sha256.slice(0, 12)}…) is registered as ${existing.name}`,
      );
    }
    const file = `${sha256}.${format}`;
    await rename(tmp, join(dir, file));
    try {
      const image = opts.repos.store.write((journal) => {
        const img = opts.repos.images.insertIn(journal, {
          sha256,
          name: opts.name,
          format,
          sizeBytes: size,
          osName: opts.osName ?? os.id ?? null,
          osVersion: opts.osVersion ?? os.version ?? null,
          minDiskBytes: minDisk,
          file,
        });
        opts.repos.events.appendIn(journal, {
          kind: 'image.imported',
          message: `image ${img.name} imported (${format}, ${size} bytes, sha256 ${sha256.slice(0, 12)}…)`,
          actor: 'cli',
          data: { sha256, format, size },
        });
        return img;
      });
      log.info({ name: image.name, sha256, format, size, ms: Date.now() - started }, 'image imported');
      return image;
    } catch (err) {
      await rm(join(dir, file), { force: true });
      throw err;
    }
  } finally {
    for (const f of [tmp, `${tmp}.pack`, `${tmp}.raw`]) if (existsSync(f)) await rm(f, { force: true });
  }
}

/**
 * Deletes an image and its file; refuses while a node uses it (IMAGE_IN_USE). `beforeRisky` (an
 * automatic restore point, when snapshots.beforeRisky is on) runs once the delete is known to be
 * allowed and before anything is removed; if it throws, nothing is.
 */
export async function deleteImage(
  repos: Repos,
  dataDir: string,
  name: string,
  actor: string | null,
  beforeRisky?: BeforeRisky,
): Promise<ImageRecord> {
  const image = findImage(repos, name);
  refuseInUse(repos, image, name);
  if (beforeRisky) {
    await beforeRisky(`before deleting image ${image.name} (sha256 ${image.sha256.slice(0, 12)})`, actor);
    // A deploy may have chosen the image while the restore point was written; nothing is awaited from
    // here to the write, so this answer holds for it.
    refuseInUse(repos, image, name);
  }
  repos.store.write((journal) => {
    repos.images.deleteIn(journal, image.sha256);
    repos.events.appendIn(journal, {
      kind: 'image.deleted',
      message: `image ${name} deleted`,
      actor,
      data: { sha256: image.sha256 },
    });
  });
  await rm(imagePath(dataDir, image), { force: true });
  return image;
}

function refuseInUse(repos: Repos, image: ImageRecord, name: string): void {
  const users = repos.images.usedBy(image.sha256);
  if (users.length) {
    throw new CorralError('IMAGE_IN_USE', `image ${name} is used by node(s) ${users.join(', ')}`, {
      nodes: users,
    });
  }
}

export function findImage(repos: Repos, nameOrSha: string): ImageRecord {
  const image =
    repos.images.getByName(nameOrSha) ??
    (/^[0-9a-f]{64}$/.test(nameOrSha) ? repos.images.get(nameOrSha) : undefined);
  if (!image) throw new CorralError('IMAGE_NOT_FOUND', `no image named '${nameOrSha}'`);
  return image;
}
