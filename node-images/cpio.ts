/**
 * A pure encoder for the "newc" cpio format (SVR4 without CRC, magic 070701), the only format the Linux
 * initramfs unpacker accepts (Documentation/driver-api/early-userspace/buffer-format.rst).
 *
 * We write the archive ourselves instead of running `find | cpio` so that nothing from the build host
 * leaks in: entries are sorted by path, inode numbers are their position, every mtime is the one given,
 * owners are 0:0 and device numbers of regular files are 0. The same entries give the same bytes.
 */

export type CpioEntry =
  | { path: string; type: 'dir'; mode: number }
  | { path: string; type: 'file'; mode: number; data: Buffer }
  | { path: string; type: 'symlink'; target: string }
  | { path: string; type: 'char'; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const MAGIC = '070701';
/** 6 bytes of magic + 13 fields of 8 hex digits = 110 bytes. */
const HEADER_SIZE = 110;
const TRAILER = 'TRAILER!!!';

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

/** Pads to the next multiple of 4: newc aligns both the header+name and the file data. */
function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function header(fields: {
  ino: number;
  mode: number;
  nlink: number;
  mtime: number;
  filesize: number;
  rdevmajor: number;
  rdevminor: number;
  namesize: number;
}): Buffer {
  const text =
    MAGIC +
    hex8(fields.ino) +
    hex8(fields.mode) +
    hex8(0) + // uid
    hex8(0) + // gid
    hex8(fields.nlink) +
    hex8(fields.mtime) +
    hex8(fields.filesize) +
    hex8(0) + // devmajor
    hex8(0) + // devminor
    hex8(fields.rdevmajor) +
    hex8(fields.rdevminor) +
    hex8(fields.namesize) +
    hex8(0); // check: always 0 in newc
  return Buffer.from(text, 'ascii');
}

function record(
  name: string,
  fields: Omit<Parameters<typeof header>[0], 'namesize' | 'filesize'>,
  body: Buffer,
): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const head = header({ ...fields, namesize: nameBytes.length, filesize: body.length });
  return [head, nameBytes, pad4(HEADER_SIZE + nameBytes.length), body, pad4(body.length)];
}

function validatePath(path: string): void {
  if (path === '' || path.startsWith('/') || path.endsWith('/') || path.split('/').some((p) => p === '..')) {
    throw new Error(`cpio path must be relative and normalised: '${path}'`);
  }
}

function modeOf(entry: CpioEntry): number {
  switch (entry.type) {
    case 'dir':
      return S_IFDIR | (entry.mode & 0o7777);
    case 'file':
      return S_IFREG | (entry.mode & 0o7777);
    case 'symlink':
      return S_IFLNK | 0o777;
    case 'char':
      return S_IFCHR | (entry.mode & 0o7777);
  }
}

/**
 * Encodes entries as one newc archive. Entries are sorted by path (byte order), which also puts every
 * directory before its contents, as the kernel's unpacker needs; the caller must list every parent.
 */
export function encodeNewc(entries: readonly CpioEntry[], mtime: number): Buffer {
  const sorted = [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const seen = new Set<string>();
  const parts: Buffer[] = [];
  sorted.forEach((entry, index) => {
    validatePath(entry.path);
    if (seen.has(entry.path)) throw new Error(`duplicate cpio entry '${entry.path}'`);
    const slash = entry.path.lastIndexOf('/');
    if (slash > 0 && !seen.has(entry.path.slice(0, slash))) {
      throw new Error(`cpio entry '${entry.path}' has no parent directory entry`);
    }
    seen.add(entry.path);
    const body =
      entry.type === 'file'
        ? entry.data
        : entry.type === 'symlink'
          ? Buffer.from(entry.target, 'utf8')
          : Buffer.alloc(0);
    parts.push(
      ...record(
        entry.path,
        {
          ino: index + 1,
          mode: modeOf(entry),
          nlink: entry.type === 'dir' ? 2 : 1,
          mtime,
          rdevmajor: entry.type === 'char' ? entry.major : 0,
          rdevminor: entry.type === 'char' ? entry.minor : 0,
        },
        body,
      ),
    );
  });
  parts.push(
    ...record(TRAILER, { ino: 0, mode: 0, nlink: 1, mtime: 0, rdevmajor: 0, rdevminor: 0 }, Buffer.alloc(0)),
  );
  return Buffer.concat(parts);
}

/** Decoded view of one newc record, for tests and for inspecting a built image. */
export interface CpioListing {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  data: Buffer;
}

/** Decodes a newc archive (no compression). Checks every length against the buffer before reading it. */
export function decodeNewc(archive: Buffer): CpioListing[] {
  const out: CpioListing[] = [];
  let off = 0;
  const field = (start: number, i: number): number =>
    parseInt(archive.toString('ascii', start + 6 + i * 8, start + 14 + i * 8), 16);
  for (;;) {
    if (off + HEADER_SIZE > archive.length) throw new Error(`truncated cpio header at offset ${off}`);
    if (archive.toString('ascii', off, off + 6) !== MAGIC) throw new Error(`bad cpio magic at offset ${off}`);
    const namesize = field(off, 11);
    const filesize = field(off, 6);
    const nameEnd = off + HEADER_SIZE + namesize;
    const dataStart = nameEnd + ((4 - ((HEADER_SIZE + namesize) % 4)) % 4);
    const dataEnd = dataStart + filesize;
    if (namesize < 1 || dataEnd > archive.length) throw new Error(`truncated cpio entry at offset ${off}`);
    const path = archive.toString('utf8', off + HEADER_SIZE, nameEnd - 1);
    if (path === TRAILER) return out;
    out.push({
      path,
      mode: field(off, 1),
      uid: field(off, 2),
      gid: field(off, 3),
      mtime: field(off, 5),
      size: filesize,
      data: archive.subarray(dataStart, dataEnd),
    });
    off = dataEnd + ((4 - (filesize % 4)) % 4);
  }
}
