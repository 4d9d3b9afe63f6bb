import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseModinfo,
  parseSoftdep,
  requestedModules,
  resolveModules,
  type ModuleDeps,
  type ModuleTree,
} from '../../node-images/modules.js';
import { parseMetaDepends, parseAptVersion } from '../../node-images/kernel.js';

/** A fake module tree: name → [depends, softPre]. */
function fakeTree(
  mods: Record<string, [string[], string[]?]>,
  builtin: string[] = [],
  aliases: Record<string, string[]> = {},
): { tree: ModuleTree; read: (p: string) => Promise<ModuleDeps> } {
  const files = new Map(Object.keys(mods).map((n) => [n, `kernel/x/${n.replace(/_/g, '-')}.ko`]));
  return {
    tree: { modulesDir: '/m', files, builtin: new Set(builtin), aliases: new Map(Object.entries(aliases)) },
    read: async (p) => {
      const name = p
        .slice(p.lastIndexOf('/') + 1)
        .replace('.ko', '')
        .replace(/-/g, '_');
      const m = mods[name];
      if (!m) throw new Error(`no ${name}`);
      return { depends: m[0], softPre: m[1] ?? [] };
    },
  };
}

test('resolveModules puts every dependency before its users, in request order otherwise', async () => {
  const { tree, read } = fakeTree({
    virtio_net: [['virtio_ring', 'virtio', 'net_failover']],
    virtio_pci: [['virtio_ring', 'virtio_pci_modern_dev', 'virtio']],
    virtio_ring: [[]],
    virtio: [[]],
    virtio_pci_modern_dev: [[]],
    net_failover: [['failover']],
    failover: [[]],
  });
  const r = await resolveModules(tree, ['virtio_pci', 'virtio_net'], read);
  assert.deepEqual(r.names, [
    'virtio_ring',
    'virtio_pci_modern_dev',
    'virtio',
    'virtio_pci',
    'failover',
    'net_failover',
    'virtio_net',
  ]);
  assert.equal(r.loadOrder[0], 'kernel/x/virtio-ring.ko');
  assert.deepEqual(r.skipped, []);
});

test('resolveModules skips built-in and absent modules with a reason, and follows softdep pre:', async () => {
  const { tree, read } = fakeTree(
    {
      libcrc32c: [[], ['crc32c', 'crc32c_generic']],
      crc32c_generic: [[]],
      vfat: [['fat']],
      fat: [[]],
    },
    ['ext4'],
  );
  const r = await resolveModules(tree, ['ext4', 'e1000', 'libcrc32c', 'vfat'], read);
  assert.deepEqual(r.names, ['crc32c_generic', 'libcrc32c', 'fat', 'vfat']);
  assert.deepEqual(r.skipped, [
    { name: 'ext4', reason: 'built into the kernel' },
    { name: 'e1000', reason: 'not in this kernel flavour' },
    {
      name: 'crc32c',
      reason: 'soft dependency of libcrc32c: no module provides it (built in, or absent from this flavour)',
    },
  ]);
});

test('resolveModules loads every module providing a softdep alias first (ext4: pre: crypto-crc32c)', async () => {
  const { tree, read } = fakeTree(
    { ext4: [['jbd2'], ['crypto-crc32c']], jbd2: [[]], crc32c_generic: [[]], crc32c_intel: [[]] },
    [],
    { 'crypto-crc32c': ['crc32c_generic', 'crc32c_intel'] },
  );
  const r = await resolveModules(tree, ['ext4'], read);
  assert.deepEqual(r.names, ['crc32c_generic', 'crc32c_intel', 'jbd2', 'ext4']);
  assert.deepEqual(r.skipped, []);
});

test('resolveModules: names with dashes are the same module', async () => {
  const { tree, read } = fakeTree({ nls_iso8859_1: [[]] });
  const r = await resolveModules(tree, ['nls_iso8859-1'], read);
  assert.deepEqual(r.names, ['nls_iso8859_1']);
});

test('resolveModules fails on a missing hard dependency and on a cycle', async () => {
  const missing = fakeTree({ a: [['b']] });
  await assert.rejects(resolveModules(missing.tree, ['a'], missing.read), /a depends on b, which is missing/);
  const cyclic = fakeTree({ a: [['b']], b: [['a']] });
  await assert.rejects(resolveModules(cyclic.tree, ['a'], cyclic.read), /cycle: a -> b -> a/);
});

test('requested modules: virtio for both flavours, physical NICs and RAID/HBA only in generic', () => {
  const cloud = requestedModules('cloud');
  const generic = requestedModules('generic');
  for (const m of [
    'virtio_pci',
    'virtio_net',
    'virtio_blk',
    'ext4',
    'nfsv4',
    'squashfs',
    'overlay',
    'loop',
  ]) {
    assert.ok(cloud.includes(m), m);
    assert.ok(generic.includes(m), m);
  }
  assert.ok(!cloud.includes('igb') && !cloud.includes('megaraid_sas'));
  for (const m of ['e1000e', 'igb', 'ixgbe', 'i40e', 'ice', 'bnxt_en', 'tg3', 'mlx5_core', 'mpt3sas']) {
    assert.ok(generic.includes(m), m);
  }
});

test('parseSoftdep keeps only the pre: modules', () => {
  assert.deepEqual(parseSoftdep('pre: crc32c\n'), ['crc32c']);
  assert.deepEqual(parseSoftdep('pre: a b post: c\npre: d\n'), ['a', 'b', 'd']);
  assert.deepEqual(parseSoftdep('\n'), []);
});

test('apt-cache output parsing picks the versioned kernel package of the flavour', () => {
  const cloud =
    'Package: linux-image-cloud-amd64\nVersion: 6.1.192-2\nDepends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)\n';
  assert.deepEqual(parseMetaDepends(cloud, 'cloud'), {
    name: 'linux-image-6.1.0-56-cloud-amd64',
    version: '6.1.192-2',
  });
  assert.equal(parseMetaDepends(cloud, 'generic'), undefined);
  const generic = 'Package: linux-image-amd64\nDepends: linux-image-6.1.0-56-amd64, firmware-x | other\n';
  assert.deepEqual(parseMetaDepends(generic, 'generic'), { name: 'linux-image-6.1.0-56-amd64' });
  assert.equal(parseMetaDepends('', 'cloud'), undefined);
  assert.equal(parseAptVersion('Package: x\nVersion: 6.1.192-2\nArchitecture: amd64\n'), '6.1.192-2');
});

test('parseModinfo reads depends, softdep pre: and every firmware line of plain modinfo output', () => {
  const text = [
    'filename:       /lib/modules/6.1.0-57-amd64/kernel/drivers/net/ethernet/intel/ice/ice.ko',
    'firmware:       intel/ice/ddp/ice.pkg',
    'firmware:       intel/ice/ddp/ice-1.3.30.0.pkg',
    'license:        GPL v2',
    'softdep:        pre: crc32c post: foo',
    'depends:        dca,i2c-algo-bit',
    'parm:           debug:netif level (0=none,...,16=all) (int)',
    '',
  ].join('\n');
  assert.deepEqual(parseModinfo(text), {
    depends: ['dca', 'i2c_algo_bit'],
    softPre: ['crc32c'],
    firmware: ['intel/ice/ddp/ice.pkg', 'intel/ice/ddp/ice-1.3.30.0.pkg'],
  });
  assert.deepEqual(parseModinfo('filename: x.ko\ndepends:        \n'), {
    depends: [],
    softPre: [],
    firmware: [],
  });
});

test('resolveModules records the firmware modules in the image may ask for, sorted', async () => {
  const files = new Map([
    ['ice', 'kernel/ice.ko'],
    ['tg3', 'kernel/tg3.ko'],
    ['libphy', 'kernel/libphy.ko'],
  ]);
  const tree: ModuleTree = { modulesDir: '/m', files, builtin: new Set(), aliases: new Map() };
  const deps: Record<string, ModuleDeps> = {
    '/m/kernel/ice.ko': { depends: [], softPre: [], firmware: ['intel/ice/ddp/ice.pkg'] },
    '/m/kernel/tg3.ko': {
      depends: ['libphy'],
      softPre: [],
      firmware: ['tigon/tg3_tso.bin', 'tigon/tg3.bin'],
    },
    '/m/kernel/libphy.ko': { depends: [], softPre: [] },
  };
  const r = await resolveModules(tree, ['tg3', 'ice', 'absent'], async (p) => deps[p] ?? assert.fail(p));
  assert.deepEqual(r.firmware, [
    { module: 'tg3', files: ['tigon/tg3.bin', 'tigon/tg3_tso.bin'] },
    { module: 'ice', files: ['intel/ice/ddp/ice.pkg'] },
  ]);
});
