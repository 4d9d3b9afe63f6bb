/**
 * BitTorrent metainfo for an image (issue 19): a single-file torrent (BEP 3) whose announce URL is the
 * master's tracker and whose `url-list` is the image's own HTTP URL, so the master is a web seed (BEP 19,
 * GetRight style): a peer with no other peer still gets every piece from the master over plain HTTP.
 * Written here, not by `mktorrent`: hashing 256 MiB took the same time in-process (0.16 s) as mktorrent
 * (0.15 s), and the master then runs no child process and writes no temp file (docs/decisions.md).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export type Bencodable = number | string | Buffer | Bencodable[] | { [key: string]: Bencodable };

/**
 * Bencoding (BEP 3): integers `i<n>e`, byte strings `<len>:<bytes>`, lists `l…e`, dictionaries `d…e`
 * with keys sorted as raw byte strings. Lengths count bytes, not characters.
 */
export function bencode(value: Bencodable): Buffer {
  const parts: Buffer[] = [];
  const put = (v: Bencodable): void => {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new RangeError(`bencode: ${v} is not an integer`);
      parts.push(Buffer.from(`i${v}e`));
    } else if (typeof v === 'string' || Buffer.isBuffer(v)) {
      const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
      parts.push(Buffer.from(`${bytes.length}:`), bytes);
    } else if (Array.isArray(v)) {
      parts.push(Buffer.from('l'));
      v.forEach(put);
      parts.push(Buffer.from('e'));
    } else {
      parts.push(Buffer.from('d'));
      const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      for (const k of keys) {
        put(k);
        put(v[k] as Bencodable);
      }
      parts.push(Buffer.from('e'));
    }
  };
  put(value);
  return Buffer.concat(parts);
}

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Piece length for an image: about 1000 to 2000 pieces, between 256 KiB and 4 MiB. Small pieces spread
 * sooner among peers; too many make the metainfo (20 bytes per piece) and the peers' bitfields large.
 */
export function pieceLength(sizeBytes: number): number {
  let p = 256 * KiB;
  while (p < 4 * MiB && sizeBytes / p > 2000) p *= 2;
  return p;
}

/** SHA-1 of every piece of a file, concatenated (BEP 3 `pieces`). */
export async function pieceHashes(path: string, piece: number): Promise<{ pieces: Buffer; length: number }> {
  const out: Buffer[] = [];
  let hash = createHash('sha1');
  let fill = 0;
  let length = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: MiB }) as AsyncIterable<Buffer>) {
    length += chunk.length;
    let o = 0;
    while (o < chunk.length) {
      const take = Math.min(piece - fill, chunk.length - o);
      hash.update(chunk.subarray(o, o + take));
      fill += take;
      o += take;
      if (fill === piece) {
        out.push(hash.digest());
        hash = createHash('sha1');
        fill = 0;
      }
    }
  }
  if (fill > 0) out.push(hash.digest());
  return { pieces: Buffer.concat(out), length };
}

export interface TorrentInput {
  /** The file's name inside the torrent: the installer saves it under this name. */
  name: string;
  length: number;
  pieceLength: number;
  pieces: Buffer;
  announce: string;
  /** Web seeds (BEP 19): the image's HTTP URL on the master. */
  webSeeds: readonly string[];
}

/** The `info` dictionary: what the info-hash (SHA-1 of its bencoding) identifies. */
export function infoDict(t: TorrentInput): Bencodable {
  return { length: t.length, name: t.name, 'piece length': t.pieceLength, pieces: t.pieces };
}

export function infoHash(t: TorrentInput): string {
  return createHash('sha1')
    .update(bencode(infoDict(t)))
    .digest('hex');
}

/** The .torrent file. No creation date: the same image and master give the same bytes. */
export function torrentFile(t: TorrentInput): Buffer {
  return bencode({
    announce: t.announce,
    'created by': 'corral',
    info: infoDict(t),
    'url-list': [...t.webSeeds],
  });
}
