/**
 * Peer-to-peer images on a real master (issue 19): the master process starts opentracker (Debian's, under
 * its supervisor) on loopback, two enlisted nodes (curl from 127.0.0.2 and .3, as their agents would) are
 * deployed with the same image, and the node-facing side answers as the installer expects:
 * - each installer's plan.env names the torrent (a wave of 2 with p2p.mode auto);
 * - the torrent announces to the master's tracker, names the image's own URL as web seed (BEP 19), and
 *   its pieces are the image's;
 * - the tracker tracks that torrent's info-hash and refuses any other (Debian's whitelisting build);
 * - `wave` counts the other installer still fetching, for the node's credential only;
 * - p2p-tools.img holds aria2c and its libraries (the installer unpacks it; node-images/os-image-tools.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bencode, infoDict, pieceHashes } from '../../master/images/p2p-torrent.js';
import { basic, CLI, startMasterProcess, type MasterProcess } from '../helpers/master-process.js';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { freePort } from '../helpers/ports.js';

const PASSWORD = 'p2p-master-test-password';
const NODES = [
  { mac: '52:54:00:19:0a:01', ip: '127.0.0.2' },
  { mac: '52:54:00:19:0b:01', ip: '127.0.0.3' },
];
const unmet = unmetNeeds({ commands: ['curl', 'opentracker'] });

function curl(args: string[]): { status: number; body: Buffer } {
  const out = execFileSync('curl', ['-sS', '-m', '10', '-o', '-', '-w', '\n%{http_code}', ...args], {
    maxBuffer: 256 * 2 ** 20,
  });
  const cut = out.lastIndexOf('\n');
  return { status: Number(out.subarray(cut + 1).toString()), body: out.subarray(0, cut) };
}

describe('p2p images on a real master: plan, torrent, tracker, wave', () => {
  before(() => failIfUnmet(unmet));
  let m: MasterProcess | undefined;
  let dir = '';
  let trackerPort = 0;
  let sha256 = '';
  const creds: Record<string, string> = {};

  async function api(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; text: string }> {
    const res = await fetch(`${m!.url}/api/v1${path}`, {
      signal: AbortSignal.timeout(10_000),
      method,
      headers: { ...basic('admin', PASSWORD), 'content-type': 'application/json', connection: 'close' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, text: await res.text() };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-p2p-master-'));
    trackerPort = await freePort();
    writeFileSync(
      join(dir, 'corral.json'),
      JSON.stringify({
        console: { https: false },
        // No node environment build: nothing here boots, and its gzip child would outlast the stop.
        nodeImage: { autoBuild: false },
        // Two nodes make the wave: one web seeder, so the other takes pieces from its peer.
        p2p: { trackerPort, webSeeds: 1 },
      }),
    );
    m = await startMasterProcess({
      args: [
        '--config',
        join(dir, 'corral.json'),
        '--data-dir',
        join(dir, 'data'),
        '--address',
        '127.0.0.1',
        '--http-port',
        String(await freePort()),
        '--tftp-port',
        '0',
      ],
      env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
      timeoutMs: 60_000,
    });
  });
  after(async () => {
    const t = Date.now();
    try {
      await m?.stop();
    } catch (err) {
      console.log(
        `# stop after ${Date.now() - t} ms failed; master log tail:\n${m?.logs().split('\n').slice(-12).join('\n')}`,
      );
      throw err;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('two enlisted nodes are deployed with the same image', async () => {
    for (const n of NODES) {
      const inventory = {
        memoryBytes: 2 ** 30,
        cpu: { count: 1 },
        disks: [{ name: 'vda', sizeBytes: 8 * 2 ** 30 }],
      };
      const r = curl([
        '--interface',
        n.ip,
        '-H',
        'content-type: application/json',
        '--data-binary',
        JSON.stringify({ mac: n.mac, inventory }),
        `${m!.url}/api/v1/enlist`,
      ]);
      creds[n.mac] = (JSON.parse(r.body.toString()) as { credential: string }).credential;
      assert.match(creds[n.mac] ?? '', /^[0-9a-f]{64}$/, r.body.toString());
    }
    const root = join(dir, 'root');
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc', 'os-release'), 'ID=tiny\nVERSION_ID=1\n');
    writeFileSync(join(root, 'payload'), Buffer.alloc(3 * 2 ** 20, 7));
    execFileSync('tar', ['-czf', join(dir, 'tiny.tar.gz'), '-C', root, '.']);
    const imported = JSON.parse(
      execFileSync(
        'node',
        [
          CLI,
          'image',
          'import',
          join(dir, 'tiny.tar.gz'),
          '--name',
          'tiny',
          '--data-dir',
          join(dir, 'data'),
          '--json',
        ],
        {
          encoding: 'utf8',
        },
      ),
    ) as { sha256: string };
    sha256 = imported.sha256;
    for (const n of NODES) {
      const r = await api('POST', `/nodes/${n.mac}/deploy`, { image: 'tiny' });
      assert.equal(r.status, 202, r.text);
    }
  });

  it("each installer's plan.env names the torrent (a wave of 2)", () => {
    for (const n of NODES) {
      const r = curl([
        '-H',
        `authorization: Bearer ${creds[n.mac]}`,
        `${m!.url}/boot/deploy/${n.mac}/plan.env`,
      ]);
      assert.equal(r.status, 200, r.body.toString());
      const env = r.body.toString();
      assert.match(env, new RegExp(`^P2P_TORRENT_URL='${m!.url}/boot/torrents/${sha256}'$`, 'm'));
      assert.match(env, /^P2P_SEED_SECONDS='120'$/m);
      assert.match(env, new RegExp(`^IMAGE_SHA256='${sha256}'$`, 'm'));
    }
  });

  it("the torrent: the master's tracker, the image URL as web seed, the image's pieces; the tracker knows only it", async () => {
    const r = curl([`${m!.url}/boot/torrents/${sha256}`]);
    assert.equal(r.status, 200);
    const torrent = r.body;
    const announce = `http://127.0.0.1:${trackerPort}/announce`;
    assert.ok(torrent.includes(`8:announce${announce.length}:${announce}`), torrent.toString('latin1'));
    const seed = `${m!.url}/boot/images/${sha256}`;
    assert.ok(torrent.includes(`8:url-listl${seed.length}:${seed}e`), torrent.toString('latin1'));
    const image = join(dir, 'data', 'images', `${sha256}.tar.gz`);
    const piece = 256 * 1024;
    const { pieces, length } = await pieceHashes(image, piece);
    const info = bencode(
      infoDict({ name: sha256, length, pieceLength: piece, pieces, announce, webSeeds: [] }),
    );
    assert.ok(torrent.includes(info), 'the info dictionary is not the image file hashed');
    // Announce as a peer would (BEP 3): this torrent is tracked, another info-hash is refused.
    const announceFor = (hash: Buffer): string =>
      curl([
        `${announce}?info_hash=${[...hash].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')}&peer_id=-CO0001-000000000000&port=6881&left=0&compact=1`,
      ]).body.toString('latin1');
    const ours = announceFor(createHash('sha1').update(info).digest());
    assert.match(ours, /8:intervali\d+e/, ours);
    const other = announceFor(Buffer.alloc(20, 1));
    assert.match(other, /failure reason/, other);
  });

  it('p2p tools: aria2c and its libraries, for the installer to unpack into its root', () => {
    // Built on the first p2p plan (above): gzip of ~58 MB, slow on a loaded machine.
    const r = curl(['-m', '180', `${m!.url}/boot/installer/p2p-tools.img`]);
    assert.equal(r.status, 200);
    const list = execFileSync('sh', ['-c', 'gzip -dc | cpio -t 2>/dev/null'], {
      input: r.body,
      encoding: 'utf8',
    });
    assert.match(list, /^opt\/corral\/bin\/aria2c$/m);
    assert.match(list, /libaria2\.so/);
  });

  it('wave: the other installer still fetches; only with the node credential', () => {
    const [a] = NODES;
    const ok = curl(['-H', `authorization: Bearer ${creds[a!.mac]}`, `${m!.url}/boot/deploy/${a!.mac}/wave`]);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.toString(), '1\n');
    const refused = curl([`${m!.url}/boot/deploy/${a!.mac}/wave`]);
    assert.equal(refused.status, 401, refused.body.toString());
  });
});
