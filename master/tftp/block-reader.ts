/**
 * Streams a file to a transfer block by block without holding the file in memory.
 *
 * The file is read in chunks of whole blocks (at least 64 KiB, at least one window), with the next chunk
 * read ahead while the current one is sent. A chunk is released once the client has acknowledged every
 * block in it, so a transfer holds at most about three chunks: the one under the window, the one being
 * read ahead, and at a window boundary the previous one. Retransmissions come from memory, never from a
 * second read.
 *
 * Per transfer that is 3 x 45 x 1468 bytes (194 KiB) up to windowsize 45 at blksize 1468, 3 x 64 x 1468
 * bytes (282 KiB) at windowsize 64, and 3 x 64 x 65464 bytes (12 MiB) if the operator raises maxBlksize to
 * 65464 and a client asks for that and windowsize 64.
 */
import type { FileHandle } from 'node:fs/promises';

/** The file behind a transfer. An interface so the state machine can be tested without a disk. */
export interface FileSource {
  /** Size in bytes when the transfer started (what tsize reported). */
  readonly size: number;
  /** Reads up to `buffer.length` bytes at `position`; resolves to the number of bytes read. */
  read(buffer: Buffer, position: number): Promise<number>;
  close(): Promise<void>;
}

export function fileHandleSource(handle: FileHandle, size: number): FileSource {
  return {
    size,
    read: async (buffer, position) => (await handle.read(buffer, 0, buffer.length, position)).bytesRead,
    close: () => handle.close(),
  };
}

/** A file the master generated in memory (a per-node grub.cfg): small, read from the buffer. */
export function bufferSource(data: Buffer): FileSource {
  return {
    size: data.length,
    read: async (buffer, position) =>
      data.copy(buffer, 0, position, Math.min(data.length, position + buffer.length)),
    close: async () => undefined,
  };
}

const READ_AHEAD_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * RFC 1350 section 6: a block shorter than blksize ends the file, so a file takes size/blksize + 1
 * blocks (the last one empty when the size is a multiple of blksize).
 */
export function blockCount(size: number, blksize: number): number {
  return Math.floor(size / blksize) + 1;
}

export class BlockReader {
  readonly lastBlock: number;
  private readonly chunkBlocks: number;
  private readonly chunks = new Map<number, Buffer>();
  private readonly loading = new Map<number, Promise<void>>();
  private failure: Error | null = null;
  private closed = false;

  constructor(
    private readonly source: FileSource,
    private readonly blksize: number,
    windowsize: number,
  ) {
    this.lastBlock = blockCount(source.size, blksize);
    this.chunkBlocks = Math.max(windowsize, Math.ceil(READ_AHEAD_BYTES / blksize));
  }

  get size(): number {
    return this.source.size;
  }

  /** Blocks are numbered from 1 (RFC 1350 section 6); chunk c holds c*chunkBlocks+1 .. (c+1)*chunkBlocks. */
  private chunkOf(block: number): number {
    return Math.floor((block - 1) / this.chunkBlocks);
  }

  /**
   * The payload of `block` if it is in memory, else undefined (call load()). Touching a chunk starts
   * reading the next one, so a steady transfer never waits for the disk.
   */
  peek(block: number): Buffer | undefined {
    const start = (block - 1) * this.blksize;
    // The final block of a file whose size is a multiple of blksize is empty (RFC 1350 section 6).
    if (start >= this.source.size) return EMPTY;
    const c = this.chunkOf(block);
    const chunk = this.chunks.get(c);
    if (!chunk) return undefined;
    this.readAhead(c + 1);
    const offset = start - c * this.chunkBlocks * this.blksize;
    return chunk.subarray(offset, Math.min(offset + this.blksize, chunk.length));
  }

  /** Resolves when `block` can be peeked; rejects if the file could not be read. */
  load(block: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const c = this.chunkOf(block);
    if (this.chunks.has(c)) return Promise.resolve();
    return this.startLoad(c);
  }

  /** Drops the chunks that hold only blocks before `block` (all acknowledged). */
  releaseBefore(block: number): void {
    const keepFrom = this.chunkOf(block);
    for (const c of this.chunks.keys()) if (c < keepFrom) this.chunks.delete(c);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.chunks.clear();
    // A read still in flight must finish before its handle closes.
    await Promise.allSettled(this.loading.values());
    await this.source.close();
  }

  private readAhead(c: number): void {
    if (c * this.chunkBlocks * this.blksize >= this.source.size) return;
    if (this.chunks.has(c) || this.loading.has(c) || this.failure) return;
    // The failure is recorded and reported by the next load(); nothing is left unhandled.
    this.startLoad(c).catch(() => undefined);
  }

  private startLoad(c: number): Promise<void> {
    const pending = this.loading.get(c);
    if (pending) return pending;
    const promise = this.readChunk(c).then(
      (data) => {
        this.loading.delete(c);
        if (!this.closed) this.chunks.set(c, data);
      },
      (err: unknown) => {
        this.loading.delete(c);
        this.failure = err instanceof Error ? err : new Error(String(err));
        throw this.failure;
      },
    );
    this.loading.set(c, promise);
    return promise;
  }

  private async readChunk(c: number): Promise<Buffer> {
    const position = c * this.chunkBlocks * this.blksize;
    const length = Math.max(0, Math.min(this.chunkBlocks * this.blksize, this.source.size - position));
    const buffer = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const n = await this.source.read(buffer.subarray(filled), position + filled);
      // The size was promised to the client in tsize and decides where the file ends; a file that
      // shrinks under us cannot be sent correctly, so the transfer fails instead of sending garbage.
      if (n === 0) throw new Error(`file shrank during the transfer (short read at ${position + filled})`);
      filled += n;
    }
    return buffer;
  }
}
