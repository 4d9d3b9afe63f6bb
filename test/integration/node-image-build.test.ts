/**
 * Builds the real node environment (Debian's generic kernel from apt, busybox-static) and inspects it.
 * The kernel download is cached in CORRAL_CACHE_DIR (default /var/cache/corral), so only the first run
 * on a machine fetches it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { silentLogger } from '../../master/util/logger.js';
import { decodeNewc, type CpioListing } from '../../node-images/cpio.js';
import {
  buildNodeImage,
  ensureKernel,
  INITRD_BUDGET_BYTES,
  MANIFEST_FILE,
  type NodeImage,
  type NodeImageManifest,
} from '../../node-images/index.js';

const CACHE_DIR = process.env['CORRAL_CACHE_DIR'] ?? '/var/cache/corral';

let work: string;
let first: NodeImage;
let entries: Map<string, CpioListing>;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'corral-node-image-'));
  first = await buildNodeImage({ cacheDir: CACHE_DIR, outDir: join(work, 'a'), logger: silentLogger() });
  const archive = gunzipSync(await readFile(first.initrdPath));
  entries = new Map(decodeNewc(archive).map((e) => [e.path, e]));
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

test('the kernel is cached: a second ensureKernel downloads nothing', async () => {
  const k = await ensureKernel({ cacheDir: CACHE_DIR, logger: silentLogger() });
  assert.equal(k.fromCache, true);
  assert.match(k.packageName, /^linux-image-\d+\.\d+\.\d+-\d+-amd64$/);
  assert.equal(k.kernelVersion, first.kernelVersion);
  assert.ok((await stat(k.vmlinuzPath)).size > 1_000_000);
});

test('the initramfs holds busybox with applets, /init, the agent and the udhcpc script', () => {
  const busybox = entries.get('bin/busybox');
  assert.ok(busybox && busybox.size > 500_000);
  assert.equal(busybox.mode, 0o100755);
  for (const applet of ['bin/sh', 'sbin/insmod', 'sbin/udhcpc', 'usr/bin/wget', 'sbin/poweroff']) {
    const e = entries.get(applet);
    assert.ok(e, applet);
    assert.equal(e.data.toString(), '/bin/busybox', applet);
  }
  assert.equal(entries.get('init')?.mode, 0o100755);
  assert.match(entries.get('init')?.data.toString() ?? '', /^#!\/bin\/sh\n/);
  assert.equal(entries.get('usr/sbin/corral-agent')?.mode, 0o100755);
  assert.equal(entries.get('etc/corral/udhcpc.script')?.mode, 0o100755);
  assert.equal(entries.get('dev/console')?.mode, 0o020600);
});

test('every entry is owned by root with mtime 0 (no build-host leakage)', () => {
  for (const e of entries.values()) {
    assert.equal(e.uid, 0, e.path);
    assert.equal(e.gid, 0, e.path);
    assert.equal(e.mtime, 0, e.path);
  }
});

/** Parses modules.dep ("kernel/a.ko: kernel/b.ko kernel/c.ko") as depmod wrote it into the image. */
function modulesDep(text: string): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  for (const line of text.split('\n').filter(Boolean)) {
    const [mod, rest] = line.split(':');
    if (mod) deps.set(mod, (rest ?? '').trim().split(/\s+/).filter(Boolean));
  }
  return deps;
}

test('virtio_net and virtio_pci are present with their dependencies, loaded dependencies first', () => {
  const modRoot = `lib/modules/${first.kernelVersion}`;
  const order = (entries.get('etc/corral/modules.load')?.data.toString() ?? '')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'));
  const virtioNet = order.find((p) => p.endsWith('/virtio_net.ko'));
  assert.ok(virtioNet, 'virtio_net in the load order');
  assert.ok(
    order.some((p) => p.endsWith('/virtio_pci.ko')),
    'virtio_pci in the load order',
  );
  for (const rel of order) assert.ok(entries.has(`${modRoot}/${rel}`), `${rel} in the image`);

  // depmod's view of the same modules, an independent check of the order modinfo gave us.
  const deps = modulesDep(entries.get(`${modRoot}/modules.dep`)?.data.toString() ?? '');
  for (const want of ['virtio_ring', 'virtio', 'net_failover', 'failover']) {
    assert.ok(
      deps.get(virtioNet)?.some((d) => d.endsWith(`/${want}.ko`)),
      `virtio_net needs ${want}`,
    );
  }
  order.forEach((mod, i) => {
    for (const dep of deps.get(mod) ?? []) {
      const at = order.indexOf(dep);
      assert.ok(at >= 0 && at < i, `${dep} must load before ${mod}`);
    }
  });
});

/** The drivers issue 22 asks for: datacentre NICs and storage controllers, and the VMs' virtio. */
const SERVER_DRIVERS = [
  ...['e1000', 'e1000e', 'igb', 'ixgbe', 'i40e', 'ice', 'bnxt_en', 'tg3', 'mlx4_en', 'mlx4_core'],
  ...['mlx5_core', 'r8169', 'virtio_net', 'ahci', 'nvme', 'megaraid_sas', 'mpt3sas', 'virtio_blk'],
  'virtio_scsi',
];

test('the default (generic) image holds the NIC and storage drivers of servers and VMs', () => {
  const order = (entries.get('etc/corral/modules.load')?.data.toString() ?? '')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((p) =>
      p
        .slice(p.lastIndexOf('/') + 1)
        .replace(/\.ko$/, '')
        .replace(/-/g, '_'),
    );
  for (const m of SERVER_DRIVERS) assert.ok(order.includes(m), `${m} in the load order`);
});

test('the image is within its size budget', async (t) => {
  const size = (await stat(first.initrdPath)).size;
  t.diagnostic(`initrd.img ${size} bytes gzipped (budget ${INITRD_BUDGET_BYTES})`);
  assert.ok(size > 500_000 && size <= INITRD_BUDGET_BYTES, `initrd is ${size} bytes`);
});

test('two builds from scratch give a byte-identical initrd', async () => {
  const second = await buildNodeImage({
    cacheDir: CACHE_DIR,
    outDir: join(work, 'b'),
    logger: silentLogger(),
  });
  assert.equal(second.initrdSha256, first.initrdSha256);
  assert.equal(second.kernelSha256, first.kernelSha256);
  assert.ok((await readFile(second.initrdPath)).equals(await readFile(first.initrdPath)));
});

test('a build whose manifest matches is returned without rebuilding', async () => {
  const before = await stat(first.initrdPath);
  const again = await buildNodeImage({
    cacheDir: CACHE_DIR,
    outDir: join(work, 'a'),
    logger: silentLogger(),
  });
  assert.deepEqual(again, first);
  const afterStat = await stat(first.initrdPath);
  assert.equal(afterStat.mtimeMs, before.mtimeMs);
  assert.equal(afterStat.ino, before.ino);
  const manifest = JSON.parse(await readFile(join(work, 'a', MANIFEST_FILE), 'utf8')) as NodeImageManifest;
  assert.equal(manifest.files.initrd.sha256, first.initrdSha256);
  assert.equal(manifest.flavour, 'generic');
  assert.deepEqual(
    manifest.modules.skipped.filter((s) => SERVER_DRIVERS.includes(s.name)),
    [],
    'the generic kernel has every server driver as a module',
  );
  // modinfo of ice names its DDP package; the image records it as not included instead of failing.
  assert.ok(
    manifest.modules.firmwareNotIncluded.some(
      (f) => f.module === 'ice' && f.files.some((x) => x.startsWith('intel/ice/ddp/')),
    ),
    JSON.stringify(manifest.modules.firmwareNotIncluded),
  );
  assert.ok(!entries.has('lib/firmware'), 'no firmware in the image');
});

test('a different SOURCE_DATE_EPOCH is a different input: rebuilt, and every mtime follows it', async () => {
  const dated = await buildNodeImage({
    cacheDir: CACHE_DIR,
    outDir: join(work, 'c'),
    logger: silentLogger(),
    sourceDateEpoch: 1700000000,
  });
  assert.notEqual(dated.initrdSha256, first.initrdSha256);
  const listed = decodeNewc(gunzipSync(await readFile(dated.initrdPath)));
  assert.ok(listed.every((e) => e.mtime === 1700000000));
  // GNU cpio agrees on the format.
  const names = execFileSync('sh', ['-c', `zcat '${dated.initrdPath}' | cpio -it --quiet`], {
    encoding: 'utf8',
  });
  assert.equal(names.trim().split('\n').length, listed.length);
});

test('the cloud flavour stays selectable: virtio only, no e1000', async (t) => {
  const cloud = await buildNodeImage({
    cacheDir: CACHE_DIR,
    outDir: join(work, 'cloud'),
    logger: silentLogger(),
    flavour: 'cloud',
  });
  assert.match(cloud.kernelVersion, /-cloud-amd64$/);
  const manifest = JSON.parse(
    await readFile(join(work, 'cloud', MANIFEST_FILE), 'utf8'),
  ) as NodeImageManifest;
  assert.equal(manifest.flavour, 'cloud');
  assert.ok(manifest.modules.loadOrder.some((p) => p.endsWith('/virtio_net.ko')));
  assert.ok(
    manifest.modules.skipped.some((s) => s.name === 'e1000' && s.reason === 'not in this kernel flavour'),
    'the cloud kernel has no e1000',
  );
  const generic = (await stat(first.initrdPath)).size;
  t.diagnostic(`initrd.img gzipped: cloud ${manifest.files.initrd.size} bytes, generic ${generic} bytes`);
  assert.ok(manifest.files.initrd.size < generic, 'the virtio-only image is the smaller one');
});
