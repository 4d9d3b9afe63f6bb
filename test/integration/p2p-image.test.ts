/**
 * Peer-to-peer image downloads (issue 19) with real peers: 4 installer clients in their own network
 * namespaces on tc-shaped links run the installer's own p2p functions (corral-install: aria2c), against
 * opentracker under Corral's supervisor and the master's web seed and torrent (test/helpers/p2p-wave.ts).
 * - p2p completes on every client, each file's sha256 is the image's; one client is the wave's web seeder
 *   (P2P_WEB_SEED=1, as the master's p2p.webSeeds names it), the other three take pieces only from their
 *   peers, so the clients served each other bytes (aria2c's uploadLength) and the master's link sent less
 *   than 2 images (every client on the web seed, it sent more: docs/images-p2p.md);
 * - with the tracker down, the web seeder completes from the web seed alone (BEP 19), and the others,
 *   given no byte by any peer, add the web seed back after P2P_WEB_SEED_AFTER and complete too;
 * - with no torrent to fetch, the installer falls back to plain HTTP and completes;
 * - the torrent's info dictionary is byte for byte the one mktorrent writes for the same file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bencode, infoDict, pieceHashes, pieceLength } from '../../master/images/p2p-torrent.js';
import { P2pLab, type WaveResult } from '../helpers/p2p-wave.js';
import { requirePeers, requireRoot } from '../helpers/peers.js';

const N = 4;
const IMAGE_BYTES = 8 * 2 ** 20;

function explain(w: WaveResult): string {
  return w.clients.map((c, i) => `client ${i}: ${c.log.split('\n').slice(-15).join('\n')}`).join('\n---\n');
}

describe('p2p image downloads: 4 installers in namespaces, opentracker, the master as web seed', () => {
  let dir = '';
  let lab: P2pLab | undefined;

  before(async () => {
    requireRoot();
    requirePeers('aria2c', 'opentracker', 'mktorrent', 'busybox', 'tc', 'ip', 'ss');
    dir = await mkdtemp(join(tmpdir(), 'corral-p2p-'));
    // The master's link slower than the clients': what peers give each other shows in the master's bytes.
    lab = await P2pLab.start({ clients: N, imageBytes: IMAGE_BYTES, masterMbit: 40, clientMbit: 200, dir });
  });

  after(async () => {
    await lab?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('p2p, one web seeder: every client completes with the right checksum from its peers; the master sends < 2 images', async (t) => {
    await lab!.startTracker();
    // webSeedAfter well above the wave's time: a client that needs the web seed back fails the test.
    const w = await lab!.wave({
      n: N,
      method: 'p2p',
      seedSeconds: 30,
      webSeeds: 1,
      webSeedAfter: 60,
      timeoutMs: 120_000,
    });
    for (const c of w.clients) {
      assert.ok(c.ok, explain(w));
      assert.equal(c.method, 'p2p', explain(w));
      assert.equal(c.sha256, lab!.sha256);
    }
    for (const c of w.clients.slice(1)) assert.match(c.log, /p2p: taking pieces from peers only/, explain(w));
    const uploaded = w.clients.reduce((s, c) => s + c.uploaded, 0);
    t.diagnostic(
      `p2p: ${w.seconds.toFixed(1)} s; master sent ${w.masterTxBytes} B for ${N} x ${IMAGE_BYTES} B; peers uploaded ${uploaded} B`,
    );
    // The three that are no web seeders got every byte from peers: at least 3 images uploaded.
    assert.ok(uploaded >= (N - 1) * IMAGE_BYTES, `peers uploaded ${uploaded} B\n${explain(w)}`);
    assert.ok(
      w.masterTxBytes < 2 * IMAGE_BYTES,
      `the master sent ${w.masterTxBytes} bytes, not less than 2 images (peers uploaded ${uploaded})`,
    );
  });

  it('tracker down: the web seeder completes from the web seed (BEP 19); the others add it back and complete', async () => {
    await lab!.stopTracker();
    const w = await lab!.wave({
      n: N,
      method: 'p2p',
      seedSeconds: 5,
      webSeeds: 1,
      webSeedAfter: 3,
      timeoutMs: 120_000,
    });
    for (const c of w.clients) {
      assert.ok(c.ok, explain(w));
      assert.equal(c.method, 'p2p', explain(w));
      assert.equal(c.sha256, lab!.sha256);
    }
    for (const c of w.clients.slice(1)) {
      assert.match(
        c.log,
        /p2p: no bytes from peers for \d+s; taking pieces from the master's web seed too/,
        explain(w),
      );
    }
    assert.doesNotMatch(w.clients[0]!.log, /taking pieces from peers only/);
    assert.equal(
      w.clients.reduce((s, c) => s + c.uploaded, 0),
      0,
    );
    assert.ok(w.masterTxBytes >= N * IMAGE_BYTES, `master sent ${w.masterTxBytes}`);
  });

  it('no torrent (p2p unavailable): the installer falls back to plain HTTP and completes', async () => {
    const w = await lab!.wave({
      n: N,
      method: 'p2p',
      torrentUrl: `${lab!.torrentUrl}-missing`,
      timeoutMs: 120_000,
    });
    for (const c of w.clients) {
      assert.ok(c.ok, explain(w));
      assert.equal(c.method, 'http', explain(w));
      assert.equal(c.sha256, lab!.sha256);
      assert.match(c.log, /p2p: cannot fetch .*\n.*p2p: falling back to plain HTTP/);
    }
  });

  it("the torrent's info dictionary is the one mktorrent writes for the same file", async () => {
    const image = join(dir, 'image');
    const piece = pieceLength(IMAGE_BYTES);
    const { pieces, length } = await pieceHashes(image, piece);
    const ours = bencode(
      infoDict({ name: lab!.sha256, length, pieceLength: piece, pieces, announce: '', webSeeds: [] }),
    );
    const out = join(dir, 'mk.torrent');
    execFileSync('mktorrent', [
      '-d',
      '-l',
      String(Math.log2(piece)),
      '-n',
      lab!.sha256,
      '-a',
      'http://10.91.0.1:6969/announce',
      '-o',
      out,
      image,
    ]);
    const theirs = await readFile(out);
    assert.ok(theirs.includes(ours), "mktorrent's info dictionary differs from Corral's");
  });
});
