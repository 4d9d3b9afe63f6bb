/**
 * The archives on the master: their checksum, and the list of files a tar archive holds (for the console's
 * diff of two snapshots, files and sizes). The tar reader knows the formats the node's tools write: POSIX
 * ustar (pg_basebackup), GNU long names (`L` entries, GNU tar) and pax extended headers (`x`), and sizes in
 * octal or GNU base-256 (files over 8 GiB).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

export interface ArchiveFile {
  path: string;
  size: number;
}

export interface ArchiveListing {
  files: ArchiveFile[];
  /** Bytes after decompression. */
  rawBytes: number;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** A tar header's numeric field: octal text, or base-256 when the first byte's high bit is set. */
export function tarNumber(field: Buffer): number {
  if (field.length && (field[0]! & 0x80) !== 0) {
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text ? parseInt(text, 8) : 0;
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
}

/** Normalises `./a/b` and `a/b/` to `a/b`. */
function clean(path: string): string {
  return path.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

/** Reads a tar stream incrementally: headers (512 bytes, POSIX.1-1988 ustar layout), data skipped. */
export class TarLister extends Writable {
  readonly files: ArchiveFile[] = [];
  private header = Buffer.alloc(0);
  /** Bytes of the current entry's data (rounded to 512) still to pass. */
  private skip = 0;
  /** Data of a long-name (L) or pax (x) entry being collected. */
  private collect: { type: 'L' | 'x'; size: number; chunks: Buffer[]; got: number } | undefined;
  private nextName: string | undefined;
  private ended = false;

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    try {
      this.consume(chunk);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  private consume(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off);
        if (this.collect && this.collect.got < this.collect.size) {
          const want = Math.min(n, this.collect.size - this.collect.got);
          this.collect.chunks.push(chunk.subarray(off, off + want));
          this.collect.got += want;
        }
        this.skip -= n;
        off += n;
        if (this.skip === 0 && this.collect) this.finishCollect();
        continue;
      }
      const need = 512 - this.header.length;
      const take = chunk.subarray(off, off + need);
      this.header = this.header.length ? Buffer.concat([this.header, take]) : Buffer.from(take);
      off += take.length;
      if (this.header.length === 512) {
        const h = this.header;
        this.header = Buffer.alloc(0);
        this.onHeader(h);
      }
    }
  }

  private onHeader(h: Buffer): void {
    if (h.every((b) => b === 0)) return; // end-of-archive blocks (two of them), or padding
    const size = tarNumber(h.subarray(124, 136));
    const type = String.fromCharCode(h[156] ?? 0);
    const magic = h.subarray(257, 262).toString('latin1');
    const prefix = magic === 'ustar' ? cString(h.subarray(345, 500)) : '';
    const name = cString(h.subarray(0, 100));
    const padded = Math.ceil(size / 512) * 512;
    if (type === 'L' || type === 'x') {
      this.collect = { type, size, chunks: [], got: 0 };
      this.skip = padded;
      if (padded === 0) this.finishCollect();
      return;
    }
    const path = clean(this.nextName ?? (prefix ? `${prefix}/${name}` : name));
    this.nextName = undefined;
    if (type === '0' || type === '\0' || type === '7') this.files.push({ path, size });
    this.skip = type === '5' || type === '2' || type === '1' ? 0 : padded;
  }

  private finishCollect(): void {
    const c = this.collect;
    this.collect = undefined;
    if (!c) return;
    const data = Buffer.concat(c.chunks);
    if (c.type === 'L') this.nextName = cString(data);
    else {
      // pax records: "LEN key=value\n" (POSIX.1-2001, pax Extended Header)
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      if (m?.[1]) this.nextName = m[1];
    }
  }
}

/** Lists a gzip-compressed tar archive; decompressing it all also proves the gzip stream whole (CRC-32). */
export async function listTarGz(path: string): Promise<ArchiveListing> {
  let rawBytes = 0;
  const lister = new TarLister();
  const gunzip = createGunzip();
  gunzip.on('data', (c: Buffer) => (rawBytes += c.length));
  await pipeline(createReadStream(path), gunzip, lister);
  return { files: lister.files, rawBytes };
}

/** A gzip-compressed single file (a SQL dump): its decompressed size. */
export async function gzSize(path: string): Promise<number> {
  let rawBytes = 0;
  await pipeline(
    createReadStream(path),
    createGunzip(),
    new Writable({
      write(c: Buffer, _e, done) {
        rawBytes += c.length;
        done();
      },
    }),
  );
  return rawBytes;
}

export interface ArchiveDiff {
  added: ArchiveFile[];
  removed: ArchiveFile[];
  changed: { path: string; from: number; to: number }[];
  same: number;
}

/** Files and sizes: what `to` has that `from` has not, what it lacks, and what changed size. */
export function diffListings(from: readonly ArchiveFile[], to: readonly ArchiveFile[]): ArchiveDiff {
  const a = new Map(from.map((f) => [f.path, f.size]));
  const b = new Map(to.map((f) => [f.path, f.size]));
  const diff: ArchiveDiff = { added: [], removed: [], changed: [], same: 0 };
  for (const [path, size] of b) {
    const was = a.get(path);
    if (was === undefined) diff.added.push({ path, size });
    else if (was !== size) diff.changed.push({ path, from: was, to: size });
    else diff.same++;
  }
  for (const [path, size] of a) if (!b.has(path)) diff.removed.push({ path, size });
  for (const list of [diff.added, diff.removed, diff.changed])
    list.sort((x, y) => (x.path < y.path ? -1 : 1));
  return diff;
}
