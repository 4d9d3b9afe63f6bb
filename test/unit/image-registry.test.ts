/**
 * The image registry against real files: tiny tarballs made here in each accepted compression are
 * imported (format told by content, os-release read, unpacked size), broken ones are refused with a clear
 * IMAGE_INVALID sentence and leave nothing behind (no row, no event, no temp file), and delete is refused
 * (IMAGE_IN_USE) while a node uses the image.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listManifests } from '../../master/snapshots/manifest.js';
import { directBeforeRisky } from '../../master/snapshots/index.js';
import { openRepos, type Repos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';
import { isCorralError } from '../../master/util/errors.js';
import {
  deleteImage,
  findImage,
  imagesDir,
  importImage,
  minRootBytes,
  sniffFile,
} from '../../master/images/registry.js';

let dir = '';
let dataDir = '';
let repos: Repos;
const logger = silentLogger();
const PAYLOAD = 64 * 1024;

/** A root tree with an os-release and an incompressible payload, packed with `compress`. */
function tarball(name: string, compress: string[], payload = PAYLOAD): string {
  const root = join(dir, `${name}-root`);
  mkdirSync(join(root, 'usr', 'lib'), { recursive: true });
  writeFileSync(join(root, 'usr', 'lib', 'os-release'), `ID=tinyos\nVERSION_ID="${name}"\n`);
  writeFileSync(join(root, 'payload.bin'), execFileSync('head', ['-c', String(payload), '/dev/urandom']));
  const out = join(dir, name);
  execFileSync('tar', ['-cf', out, ...compress, '-C', root, '.']);
  return out;
}

function leftovers(): string[] {
  return readdirSync(imagesDir(dataDir)).filter((f) => f.startsWith('.'));
}

async function refused(source: string, name: string, pattern: RegExp): Promise<void> {
  const before = repos.images.list().length;
  const events = repos.events.list({ limit: 100 }).length;
  await assert.rejects(
    importImage({ repos, dataDir, logger, source, name }),
    (err: unknown) => isCorralError(err) && err.code === 'IMAGE_INVALID' && pattern.test(err.message),
  );
  assert.equal(repos.images.list().length, before, 'nothing registered');
  assert.equal(repos.events.list({ limit: 100 }).length, events, 'no event');
  assert.deepEqual(leftovers(), [], 'no temporary file left');
  assert.equal(repos.images.getByName(name), undefined);
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'corral-registry-'));
  dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  repos = openRepos({ path: join(dataDir, 'corral.db'), logger });
});

after(() => {
  repos.store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('image registry: import', () => {
  for (const [name, compress, format] of [
    ['plain', [], 'tar'],
    ['gz', ['-z'], 'tar.gz'],
    ['zst', ['--zstd'], 'tar.zst'],
  ] as const) {
    it(`imports a ${format} root file system, told by content (file named .bin)`, async () => {
      const src = tarball(`${name}.bin`, [...compress]);
      assert.equal(await sniffFile(src), format);
      const img = await importImage({ repos, dataDir, logger, source: src, name: `tiny-${name}` });
      assert.equal(img.format, format);
      assert.equal(img.osName, 'tinyos');
      assert.equal(img.osVersion, `${name}.bin`);
      assert.equal(img.sizeBytes, statSync(src).size);
      assert.match(img.sha256, /^[0-9a-f]{64}$/);
      assert.equal(img.file, `${img.sha256}.${format}`);
      assert.deepEqual(readFileSync(join(imagesDir(dataDir), img.file)), readFileSync(src));
      // Unpacked bytes (payload + os-release) plus the root file system's headroom.
      assert.ok(img.minDiskBytes >= minRootBytes(PAYLOAD) && img.minDiskBytes < minRootBytes(PAYLOAD + 4096));
      assert.deepEqual(leftovers(), []);
    });
  }

  it('refuses a truncated tar.gz: nothing registered, no temp file', async () => {
    const src = tarball('trunc.tar.gz', ['-z']);
    truncateSync(src, Math.floor(statSync(src).size / 2));
    await refused(src, 'truncated', /tar\.gz archive is corrupt or truncated/);
  });

  it('refuses a corrupt tar.zst (bytes flipped past its first blocks): nothing registered, no temp file', async () => {
    // 512 KiB of payload: several zstd blocks, so the head still decompresses (the format is known) and
    // the damage is found by reading the archive to its end (zstd's frame checksum).
    const src = tarball('bad.tar.zst', ['--zstd'], 512 * 1024);
    const bytes = readFileSync(src);
    for (let i = bytes.length - 4096; i < bytes.length - 16; i += 97) bytes[i] = bytes[i]! ^ 0x5a;
    writeFileSync(src, bytes);
    assert.equal(await sniffFile(src), 'tar.zst');
    await refused(src, 'corrupt', /tar\.zst archive is corrupt or truncated/);
  });

  it('refuses a tar.zst corrupt from its first block: says it does not decompress', async () => {
    const src = tarball('head.tar.zst', ['--zstd']);
    const bytes = readFileSync(src);
    for (let i = 16; i < bytes.length - 16; i += 31) bytes[i] = bytes[i]! ^ 0x5a;
    writeFileSync(src, bytes);
    await refused(
      src,
      'corrupt-head',
      /zstd compressed but does not decompress: the file is corrupt or truncated/,
    );
  });

  it('refuses a file that is no image, and a duplicate under another name', async () => {
    const junk = join(dir, 'junk.tar');
    writeFileSync(junk, 'not an archive at all\n'.repeat(100));
    await refused(junk, 'junk', /neither a tar archive/);
    await assert.rejects(
      importImage({ repos, dataDir, logger, source: join(dir, 'gz.bin'), name: 'again' }),
      (err: unknown) =>
        isCorralError(err) && err.code === 'CONFLICT' && /registered as tiny-gz/.test(err.message),
    );
    assert.deepEqual(leftovers(), []);
  });
});

describe('image registry: list, show, delete', () => {
  it('lists and finds images by name or sha256', () => {
    const names = repos.images
      .list()
      .map((i) => i.name)
      .sort();
    assert.deepEqual(names, ['tiny-gz', 'tiny-plain', 'tiny-zst']);
    const gz = findImage(repos, 'tiny-gz');
    assert.equal(findImage(repos, gz.sha256).name, 'tiny-gz');
    assert.throws(
      () => findImage(repos, 'nope'),
      (err: unknown) => isCorralError(err) && err.code === 'IMAGE_NOT_FOUND',
    );
  });

  it('refuses deleting an image a node uses (IMAGE_IN_USE), then deletes it once unused', async () => {
    const img = findImage(repos, 'tiny-zst');
    repos.store.write((journal) => {
      repos.nodes.insertIn(journal, {
        mac: '52:54:00:00:00:01',
        name: 'n1',
        seqNo: 1,
        state: 'deployed',
        ip: null,
        inventory: {},
      });
      repos.nodes.patchIn(journal, '52:54:00:00:00:01', { image: img.sha256 });
    });
    assert.deepEqual(repos.images.usedBy(img.sha256), ['n1']);
    // The real hook, as `corral image delete --data-dir` wires it: restore points in DATA_DIR/snapshots.
    const beforeRisky = directBeforeRisky({ repos, dataDir, logger });
    const autoPoints = (): string[] => listManifests(join(dataDir, 'snapshots')).map((m) => m.reason);
    await assert.rejects(
      deleteImage(repos, dataDir, 'tiny-zst', 'test', beforeRisky),
      (err: unknown) =>
        isCorralError(err) &&
        err.code === 'IMAGE_IN_USE' &&
        err.message === 'image tiny-zst is used by node(s) n1',
    );
    assert.ok(statSync(join(imagesDir(dataDir), img.file)).isFile(), 'file kept');
    assert.deepEqual(autoPoints(), [], 'a refused delete takes no restore point');
    repos.store.write((journal) => repos.nodes.patchIn(journal, '52:54:00:00:00:01', { image: null }));
    // A deploy that picks the image while the restore point is being written still stops the delete.
    await assert.rejects(
      deleteImage(repos, dataDir, 'tiny-zst', 'test', async (reason, who) => {
        await beforeRisky(reason, who);
        repos.store.write((journal) =>
          repos.nodes.patchIn(journal, '52:54:00:00:00:01', { image: img.sha256 }),
        );
      }),
      (err: unknown) => isCorralError(err) && err.code === 'IMAGE_IN_USE',
    );
    assert.ok(repos.images.getByName('tiny-zst'), 'kept');
    rmSync(join(dataDir, 'snapshots'), { recursive: true });
    repos.store.write((journal) => repos.nodes.patchIn(journal, '52:54:00:00:00:01', { image: null }));
    await deleteImage(repos, dataDir, 'tiny-zst', 'test', beforeRisky);
    assert.deepEqual(autoPoints(), [`before deleting image tiny-zst (sha256 ${img.sha256.slice(0, 12)})`]);
    assert.equal(repos.images.getByName('tiny-zst'), undefined);
    assert.deepEqual(
      readdirSync(imagesDir(dataDir)).filter((f) => f.startsWith(img.sha256)),
      [],
      'file removed',
    );
  });
});
