/**
 * The node environment's kernel and initrd, served from memory. Every PXE-booting machine fetches both,
 * and a boot storm fetches them hundreds of times at once: through `send` (send-file.ts) each response is
 * a file stream of 64 KiB reads, each read a fresh buffer, a thread-pool round trip and a callback on the
 * event loop, and the garbage collector then frees them. The boot-storm bench's CPU profile of the master
 * at N=250 (docs/scale.md) put about half of the master's samples there (fs reads 24 %, garbage
 * collection 12 %), while nginx serves the same files with sendfile(2). Here one Buffer per file is
 * read once and each response is one write of a slice of it: the kernel copies it into the socket as
 * the client drains it, with no work on the event loop in between and nothing to collect.
 *
 * What a client sees is what `send` gives it (iPXE, the agent's wget and curl rely on it): Content-Length,
 * Accept-Ranges, the same weak ETag (`W/"size-mtime"`, hex) and Last-Modified, 304 for a matching
 * If-None-Match or If-Modified-Since, one byte range as 206 with Content-Range (RFC 9110 section 14),
 * If-Range (section 13.1.5), 416 with `Content-Range: bytes *\/SIZE` past the end, HEAD without a body;
 * a malformed or multi-range header gets the whole file (as `send` does).
 *
 * A file replaced on disk (a new `corral node-image build` renames new files in) is read again: each
 * request stats the path and compares inode, size and mtime. Bounded: only files up to `maxFileBytes`
 * are held (larger ones go through sendFile), one copy per path, and only the paths the caller serves.
 */
import type { Request, Response } from 'express';
import { readFileSync, statSync, type Stats } from 'node:fs';
import type { Logger } from '../util/logger.js';
import { sendFile } from './send-file.js';

interface Held {
  data: Buffer;
  ino: number;
  size: number;
  mtimeMs: number;
  etag: string;
  lastModified: string;
}

/** Above this a node environment file is streamed from disk (a generic kernel's initrd is ~60-100 MB). */
export const MEMORY_FILE_MAX_BYTES = 256 * 1024 * 1024;

const same = (h: Held, st: Stats): boolean =>
  h.ino === st.ino && h.size === st.size && h.mtimeMs === st.mtimeMs;

export class MemoryFiles {
  private readonly held = new Map<string, Held>();
  /** Reads from disk into memory, for tests and the log: a storm should cost one per file. */
  loads = 0;

  constructor(
    private readonly log: Logger,
    private readonly maxFileBytes = MEMORY_FILE_MAX_BYTES,
  ) {}

  /** Answers `req` with `file` (absolute): from memory when it fits, else through sendFile. */
  serve(req: Request, res: Response, file: string): void {
    const held = this.load(file);
    if (!held) {
      sendFile(res, file, this.log);
      return;
    }
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('ETag', held.etag);
    res.setHeader('Last-Modified', held.lastModified);
    // Express's req.fresh: If-None-Match / If-Modified-Since against the two validators just set.
    if (req.fresh) {
      res.status(304).end();
      return;
    }
    res.setHeader('Content-Type', 'application/octet-stream');
    let start = 0;
    let end = held.size - 1;
    if (req.headers.range && this.rangeApplies(req, held)) {
      const ranges = req.range(held.size, { combine: true });
      if (ranges === -1) {
        res.setHeader('Content-Range', `bytes */${held.size}`);
        res.status(416).end();
        return;
      }
      // -2 (malformed) and several ranges: the whole file, as send does.
      if (Array.isArray(ranges) && ranges.length === 1 && ranges.type === 'bytes' && ranges[0]) {
        start = ranges[0].start;
        end = ranges[0].end;
        res.status(206);
        res.setHeader('Content-Range', `bytes ${start}-${end}/${held.size}`);
      }
    }
    // Set, not implied by end(): the boot timeline (activity.ts watchFetch) reads it back.
    res.setHeader('Content-Length', String(end - start + 1));
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    res.end(held.data.subarray(start, end + 1));
  }

  /** RFC 9110 section 13.1.5: a Range under If-Range holds only if the validator still matches. */
  private rangeApplies(req: Request, held: Held): boolean {
    const ifRange = req.get('if-range');
    if (!ifRange) return true;
    if (ifRange.includes('"')) return ifRange === held.etag;
    const at = Date.parse(ifRange);
    return Number.isFinite(at) && Date.parse(held.lastModified) <= at;
  }

  private load(file: string): Held | undefined {
    let st: Stats;
    try {
      st = statSync(file);
    } catch {
      this.held.delete(file);
      return undefined; // sendFile answers the 404
    }
    const held = this.held.get(file);
    if (held && same(held, st)) return held;
    this.held.delete(file);
    if (!st.isFile() || st.size > this.maxFileBytes) return undefined;
    let data: Buffer;
    try {
      // Synchronous, once per file version: an async read would let a storm's first requests all start it.
      data = readFileSync(file);
    } catch {
      return undefined;
    }
    // Replaced while being read: serve this request from disk, read it again next time.
    if (data.length !== st.size) return undefined;
    const fresh: Held = {
      data,
      ino: st.ino,
      size: st.size,
      mtimeMs: st.mtimeMs,
      // send's ETag (the `etag` module for a Stats): weak, size and mtime in hex. The mtime is Stats'
      // Date, which node rounds from mtimeMs (flooring mtimeMs differed by 1 ms for half of all files).
      etag: `W/"${st.size.toString(16)}-${st.mtime.getTime().toString(16)}"`,
      lastModified: st.mtime.toUTCString(),
    };
    this.held.set(file, fresh);
    this.loads++;
    this.log.info({ file, bytes: st.size }, 'serving node environment file from memory');
    return fresh;
  }
}
