/**
 * Peer-to-peer images (issue 19), the pure parts: bencoding (BEP 3's own examples), the piece size, the
 * .torrent's bytes and info-hash, and the master's choice of p2p or HTTP for an installer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bencode,
  infoHash,
  pieceHashes,
  pieceLength,
  torrentFile,
  type TorrentInput,
} from '../../master/images/p2p-torrent.js';
import { p2pUrls, stillFetching, useP2p, waveOf, webSeeder } from '../../master/images/p2p.js';
import { trackerArgs } from '../../master/images/p2p-tracker.js';

test('bencode: the examples of BEP 3, keys sorted as raw bytes, lengths in bytes', () => {
  assert.equal(bencode('spam').toString(), '4:spam');
  assert.equal(bencode(3).toString(), 'i3e');
  assert.equal(bencode(-3).toString(), 'i-3e');
  assert.equal(bencode(0).toString(), 'i0e');
  assert.equal(bencode(['spam', 'eggs']).toString(), 'l4:spam4:eggse');
  assert.equal(bencode({ spam: 'eggs', cow: 'moo' }).toString(), 'd3:cow3:moo4:spam4:eggse');
  assert.equal(bencode({ spam: ['a', 'b'] }).toString(), 'd4:spaml1:a1:bee');
  assert.equal(bencode('').toString(), '0:');
  // "piece length" sorts before "pieces" (space 0x20 < 's' 0x73); 'Z' before 'a' (byte order, not locale).
  assert.equal(
    bencode({ pieces: 1, 'piece length': 2, a: 3, Z: 4 }).toString(),
    'd1:Zi4e1:ai3e12:piece lengthi2e6:piecesi1ee',
  );
  assert.equal(bencode('é').toString('latin1'), '2:\u00c3\u00a9');
  assert.throws(() => bencode(1.5), RangeError);
});

test('piece length: 256 KiB up to ~2000 pieces, doubling to at most 4 MiB', () => {
  assert.equal(pieceLength(1), 256 * 1024);
  assert.equal(pieceLength(500 * 2 ** 20), 256 * 1024);
  assert.equal(pieceLength(501 * 2 ** 20), 512 * 1024);
  assert.equal(pieceLength(2 * 2 ** 30), 2 * 2 ** 20);
  assert.equal(pieceLength(64 * 2 ** 30), 4 * 2 ** 20);
});

test('piece hashes: SHA-1 per piece, the short last piece included', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'corral-p2p-unit-'));
  try {
    const data = Buffer.alloc(2.5 * 2 ** 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    await writeFile(join(dir, 'img'), data);
    const piece = 2 ** 20;
    const { pieces, length } = await pieceHashes(join(dir, 'img'), piece);
    assert.equal(length, data.length);
    const want = [0, 1, 2].map((i) =>
      createHash('sha1')
        .update(data.subarray(i * piece, Math.min((i + 1) * piece, data.length)))
        .digest(),
    );
    assert.deepEqual(pieces, Buffer.concat(want));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the .torrent: announce, url-list (BEP 19 web seed), info; no creation date', () => {
  const t: TorrentInput = {
    name: 'abc',
    length: 5,
    pieceLength: 262144,
    pieces: Buffer.alloc(20, 0x61),
    announce: 'http://10.0.0.1:6969/announce',
    webSeeds: ['http://10.0.0.1:8080/boot/images/abc'],
  };
  assert.equal(
    torrentFile(t).toString('latin1'),
    'd8:announce29:http://10.0.0.1:6969/announce10:created by6:corral4:infod6:lengthi5e4:name3:abc' +
      `12:piece lengthi262144e6:pieces20:${'a'.repeat(20)}e8:url-listl36:http://10.0.0.1:8080/boot/images/abcee`,
  );
  const info = `d6:lengthi5e4:name3:abc12:piece lengthi262144e6:pieces20:${'a'.repeat(20)}e`;
  assert.equal(infoHash(t), createHash('sha1').update(info, 'latin1').digest('hex'));
});

test('p2p or HTTP: off never, on always, auto from the wave size; never without a tracker', () => {
  assert.equal(useP2p('off', 2, 1, 10, true), false);
  assert.equal(useP2p('on', 2, 2, 1, true), true);
  assert.equal(useP2p('auto', 2, 1, 1, true), false);
  assert.equal(useP2p('auto', 2, 1, 2, true), true);
  assert.equal(useP2p('auto', 5, 1, 4, true), false);
  assert.equal(useP2p('on', 2, 2, 10, false), false);
  // A wave of web seeders only (the defaults, 2 and 2) gets plain HTTP; one more installer gets p2p.
  assert.equal(useP2p('auto', 2, 2, 2, true), false);
  assert.equal(useP2p('auto', 2, 2, 3, true), true);
});

test('the wave: unfinished deployments of the same image; who still fetches', () => {
  const A = 'a'.repeat(64);
  const B = 'b'.repeat(64);
  const active = [
    { imageSha256: A, status: 'pending' as const, phase: null },
    { imageSha256: A, status: 'installing' as const, phase: 'write' },
    { imageSha256: A, status: 'installing' as const, phase: 'configure' },
    { imageSha256: A, status: 'installed' as const, phase: 'bootloader' },
    { imageSha256: B, status: 'pending' as const, phase: null },
  ];
  assert.equal(waveOf({ imageSha256: A }, active), 3);
  assert.equal(waveOf({ imageSha256: B }, active), 1);
  assert.deepEqual(
    active.map((d) => stillFetching(d)),
    [true, true, false, false, true],
  );
});

test("web seeders: the first webSeeds deployments of the image's wave by id, whatever order plans are fetched in", () => {
  const A = 'a'.repeat(64);
  const B = 'b'.repeat(64);
  const active = [
    { id: 7, imageSha256: A, status: 'installing' as const },
    { id: 3, imageSha256: A, status: 'installed' as const }, // done with its image: not in the wave
    { id: 5, imageSha256: B, status: 'pending' as const }, // another image
    { id: 9, imageSha256: A, status: 'pending' as const },
    { id: 4, imageSha256: A, status: 'pending' as const },
  ];
  const seeders = (k: number): number[] =>
    active
      .filter((d) => d.imageSha256 === A && d.status !== 'installed' && webSeeder(d, active, k))
      .map((d) => d.id);
  assert.deepEqual(seeders(1), [4]);
  assert.deepEqual(seeders(2), [7, 4]);
  assert.deepEqual(seeders(5), [7, 9, 4]);
  assert.equal(webSeeder({ id: 5, imageSha256: B }, active, 1), true);
});

test('URLs: the tracker on the master host over http, torrents and images under /boot', () => {
  const u = p2pUrls('https://corral.example:8443', 6969);
  assert.equal(u.announce, 'http://corral.example:6969/announce');
  assert.equal(u.torrent('ab'), 'https://corral.example:8443/boot/torrents/ab');
  assert.equal(u.image('ab'), 'https://corral.example:8443/boot/images/ab');
  assert.deepEqual(trackerArgs({ bind: '10.0.0.1', port: 6969, dir: '/d' }), [
    '-i',
    '10.0.0.1',
    '-p',
    '6969',
    '-P',
    '6969',
    '-d',
    '/d',
    '-w',
    'whitelist',
  ]);
});
