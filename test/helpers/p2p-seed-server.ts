/**
 * The master's side of a p2p image wave for test/integration/p2p-image.test.ts and
 * test/bench/p2p-image-bench.ts, run inside the master's network namespace (`ip netns exec NS node
 * p2p-seed-server.js DIR BIND PORT TRACKER_PORT`): the image over HTTP by sha256 with Range (the master's
 * own sendFile, the web seed), its .torrent (the master's own writer: tracker and web seed), and the
 * wave's count (`/boot/deploy/<mac>/wave`): clients not yet marked done (DIR/done/<mac>, written by the
 * client script when it has every piece) out of DIR/wave-size stand in for the master's deployments still fetching the image.
 * Prints one JSON line {sha256, size} once it listens.
 */
import express from 'express';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { sendFile } from '../../master/boot/send-file.js';
import { infoHash, pieceHashes, pieceLength, torrentFile } from '../../master/images/p2p-torrent.js';
import { p2pUrls } from '../../master/images/p2p.js';
import { silentLogger } from '../../master/util/logger.js';

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file) as AsyncIterable<Buffer>) h.update(c);
  return h.digest('hex');
}

async function main(): Promise<void> {
  const [dirArg, bind, port, trackerPort] = process.argv.slice(2);
  if (!dirArg || !bind || !port || !trackerPort) throw new Error('usage: DIR BIND PORT TRACKER_PORT');
  const dir = resolve(dirArg);
  const image = join(dir, 'image');
  const size = (await stat(image)).size;
  const sha256 = await sha256Of(image);
  const urls = p2pUrls(`http://${bind}:${port}`, Number(trackerPort));
  const piece = pieceLength(size);
  const { pieces, length } = await pieceHashes(image, piece);
  const t = {
    name: sha256,
    length,
    pieceLength: piece,
    pieces,
    announce: urls.announce,
    webSeeds: [urls.image(sha256)],
  };
  const torrent = torrentFile(t);
  const log = silentLogger();
  const app = express();
  app.get(`/boot/images/${sha256}`, (_req, res) => sendFile(res, image, log));
  app.get(`/boot/torrents/${sha256}`, (_req, res) => {
    res.type('application/x-bittorrent').send(torrent);
  });
  app.get('/boot/deploy/:mac/wave', (_req, res, next) => {
    Promise.all([readFile(join(dir, 'wave-size'), 'utf8'), readdir(join(dir, 'done'))])
      .then(([n, done]) => res.type('text/plain').send(`${Math.max(0, Number(n) - done.length)}\n`))
      .catch(next);
  });
  app.listen(Number(port), bind, () => console.log(JSON.stringify({ sha256, size, infoHash: infoHash(t) })));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
