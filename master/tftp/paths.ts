/**
 * Maps a requested TFTP file name onto a regular file inside the boot root, or refuses it.
 *
 * Rules (docs/tftp.md has the operator's version):
 * - Leading slashes are stripped: "/undionly.kpxe" means ROOT/undionly.kpxe. Many PXE ROMs and DHCP
 *   configurations send the name with a leading '/', and tftpd-hpa's `-s` (chroot) gives it exactly this
 *   meaning, so refusing it would break real clients; an absolute name can still reach nothing outside
 *   the root.
 * - Backslashes are read as '/' (Windows-style clients ask for "\boot\pxeboot.n12"; dnsmasq does the
 *   same), so "..\..\etc\passwd" is caught by the next rule rather than slipping past it.
 * - Any ".." component is refused, even one that would stay inside the root: no legitimate boot file
 *   name needs it, and the rule is simpler to trust than a normalisation.
 * - NUL bytes are refused (the codec cannot produce one; this guards other callers).
 * - Symlinks are followed only if they resolve inside the root: the real path is checked before the
 *   open, and the opened descriptor's own path (/proc/self/fd) after it, so swapping a directory for a
 *   symlink between the two steps gains nothing.
 * - Only regular files are served; directories, devices, FIFOs and sockets are refused before they are
 *   opened (opening some devices has side effects), and the open uses O_NONBLOCK so a FIFO swapped in
 *   at the last moment cannot hang the server.
 */
import { constants } from 'node:fs';
import { lstat, open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { ErrorCode } from './codec.js';

export interface PathRefusal {
  ok: false;
  /** The TFTP error code to send (RFC 1350 appendix): 1 file not found, 2 access violation. */
  code: typeof ErrorCode.FILE_NOT_FOUND | typeof ErrorCode.ACCESS_VIOLATION;
  /** For the log line; the client gets the generic text of the code. */
  reason: string;
}

export interface OpenedFile {
  ok: true;
  handle: FileHandle;
  /** Real path of the opened file. */
  path: string;
  /** The request normalised relative to the root, for logs. */
  relative: string;
  size: number;
}

function refuse(code: PathRefusal['code'], reason: string): PathRefusal {
  return { ok: false, code, reason };
}

/** Pure: turns a requested name into a root-relative path, or refuses it. */
export function normalizeRequestPath(requested: string): { ok: true; relative: string } | PathRefusal {
  if (requested.includes('\0')) return refuse(ErrorCode.ACCESS_VIOLATION, 'NUL byte in file name');
  const parts = requested
    .replace(/\\/g, '/')
    .split('/')
    .filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return refuse(ErrorCode.ACCESS_VIOLATION, "'..' component in file name");
  if (parts.length === 0) return refuse(ErrorCode.FILE_NOT_FOUND, 'no file name');
  return { ok: true, relative: parts.join('/') };
}

function isInside(rootReal: string, candidate: string): boolean {
  const prefix = rootReal.endsWith(sep) ? rootReal : rootReal + sep;
  return candidate.startsWith(prefix);
}

function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function refusalForError(err: unknown, what: string): PathRefusal {
  const code = errnoOf(err);
  if (code === 'ENOENT' || code === 'ENOTDIR') return refuse(ErrorCode.FILE_NOT_FOUND, `${what}: ${code}`);
  return refuse(ErrorCode.ACCESS_VIOLATION, `${what}: ${code ?? String(err)}`);
}

/** Where the kernel says an open descriptor points; null when /proc is not available. */
async function descriptorPath(handle: FileHandle): Promise<string | null> {
  try {
    return await readlink(`/proc/self/fd/${handle.fd}`);
  } catch {
    return null;
  }
}

/**
 * Opens `requested` for reading inside `rootReal`, which must already be a real path (no symlinks);
 * the server resolves it once at start. The caller owns the returned handle.
 */
export async function openInRoot(rootReal: string, requested: string): Promise<OpenedFile | PathRefusal> {
  const normalized = normalizeRequestPath(requested);
  if (!normalized.ok) return normalized;
  const { relative } = normalized;

  let real: string;
  try {
    real = await realpath(join(rootReal, relative));
  } catch (err) {
    return refusalForError(err, 'resolve');
  }
  if (!isInside(rootReal, real))
    return refuse(ErrorCode.ACCESS_VIOLATION, `resolves outside the root: ${real}`);

  try {
    if (!(await lstat(real)).isFile()) return refuse(ErrorCode.ACCESS_VIOLATION, 'not a regular file');
  } catch (err) {
    return refusalForError(err, 'stat');
  }

  let handle: FileHandle;
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    return refusalForError(err, 'open');
  }

  try {
    const opened = await descriptorPath(handle);
    if (opened !== null && !isInside(rootReal, opened)) {
      await handle.close();
      return refuse(ErrorCode.ACCESS_VIOLATION, `opened file is outside the root: ${opened}`);
    }
    const st = await handle.stat();
    if (!st.isFile()) {
      await handle.close();
      return refuse(ErrorCode.ACCESS_VIOLATION, 'not a regular file');
    }
    return { ok: true, handle, path: real, relative, size: st.size };
  } catch (err) {
    await handle.close().catch(() => undefined);
    return refusalForError(err, 'stat');
  }
}
