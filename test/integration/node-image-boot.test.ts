/**
 * Boots the real node environment in QEMU (no PXE: -kernel/-initrd) on a test bridge and checks that
 * the agent enlists with a correct inventory, then powers the VM off by itself. One boot takes a static
 * address (corral.ip, corral.mac); the other leases one from busybox udhcpd (BOOTIF) and polls on "wait".
 * The default image (generic kernel) must see physical NICs too: QEMU's emulated Intel e1000 and e1000e
 * with an AHCI disk stand in for a server.
 *
 *   srv namespace (10.78.x.1: enlist-recorder on :8080, udhcpd) ── br0 ── tap ── QEMU VM
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes, randomInt } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { silentLogger } from '../../master/util/logger.js';
import { buildNodeImage, kernelCmdline, type NodeImage } from '../../node-images/index.js';
import { TestNet, hasCommand, run, waitFor } from '../helpers/netns.js';

const CACHE_DIR = process.env['CORRAL_CACHE_DIR'] ?? '/var/cache/corral';
const RECORDER = join(dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'enlist-recorder.js');
/** Power-on to power-off under TCG is ~20 s on the lab machines; this bounds a hung boot. */
const BOOT_TIMEOUT_MS = 150_000;
const MEMORY_MIB = 512;
const DISK_SERIAL = 'CORRAL123';

interface EnlistRecord {
  receivedAt: number;
  contentType: string | null;
  body: {
    mac: string;
    mode: string;
    inventory: {
      cpu: { model: string | null; count: number };
      memoryBytes: number;
      firmware: string;
      disks: {
        name: string;
        sizeBytes: number;
        serial: string | null;
        model: string | null;
        rotational: boolean;
      }[];
      nics: { name: string; mac: string; link: string; speedMbps: number | null }[];
      dmi: { vendor: string | null; product: string | null; serial: string | null };
    };
  };
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
  });
}

interface BootOptions {
  /** Lease the address from busybox udhcpd in the server namespace instead of corral.ip. */
  dhcp: boolean;
  /** Name the boot NIC as iPXE does (BOOTIF=01-aa-bb-...) instead of corral.mac. */
  bootif: boolean;
  /** Replies of the recorder, in order (the last repeats). */
  replies?: string[];
  /** QEMU NIC model: virtio (default) or an emulated Intel server NIC (e1000 = 82540EM, e1000e = 82574L). */
  nic?: 'virtio-net-pci' | 'e1000' | 'e1000e';
  /** Disk controller: virtio-blk (default) or AHCI (QEMU's ich9-ahci, as on server boards). */
  disk?: 'virtio' | 'ahci';
}

interface BootResult {
  mac: string;
  subnet: string;
  records: EnlistRecord[];
  started: number;
  console: string;
}

/** Boots one VM on a fresh test network; resolves once it powered off, fails with the serial tail. */
async function bootOnce(image: NodeImage, opts: BootOptions): Promise<BootResult> {
  const work = await mkdtemp(join(tmpdir(), 'corral-boot-'));
  const net = new TestNet('nib');
  const serial: Buffer[] = [];
  const serialTail = (): string => Buffer.concat(serial).toString('utf8').split('\n').slice(-40).join('\n');
  try {
    const subnet = `10.78.${randomInt(0, 256)}`;
    const srv = net.addHost('srv', `${subnet}.1/24`);
    const records = join(work, 'enlist.jsonl');
    const recorder = net.spawnIn(srv.ns, [
      process.execPath,
      RECORDER,
      '--host',
      srv.address,
      '--port',
      '8080',
      '--out',
      records,
      ...(opts.replies ?? []).flatMap((r) => ['--reply', r]),
    ]);
    let recorderOut = '';
    recorder.stdout?.on('data', (c: Buffer) => (recorderOut += c.toString()));
    recorder.stderr?.on('data', (c: Buffer) => (recorderOut += c.toString()));
    await waitFor('the enlist recorder to listen', () => recorderOut.includes('listening'), 10_000);

    if (opts.dhcp) {
      const conf = join(work, 'udhcpd.conf');
      await writeFile(
        conf,
        [
          `start ${subnet}.100`,
          `end ${subnet}.150`,
          `interface ${srv.ifname}`,
          `lease_file ${join(work, 'udhcpd.leases')}`,
          `pidfile ${join(work, 'udhcpd.pid')}`,
          'max_leases 50',
          'option subnet 255.255.255.0',
          `option router ${srv.address}`,
          'option lease 600',
          '',
        ].join('\n'),
      );
      net.spawnIn(srv.ns, ['busybox', 'udhcpd', '-f', conf]);
    }

    const tap = net.addTap();
    const disk = join(work, 'disk.qcow2');
    run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '2G']);
    const mac = `52:54:00:${randomBytes(3).toString('hex').match(/../g)?.join(':')}`;
    const extra = ['corral.errdelay=1']; // a failing boot powers off after 1 s instead of 30
    if (!opts.dhcp) extra.push(`corral.ip=${subnet}.10/24`);
    if (opts.bootif) extra.push(`BOOTIF=01-${mac.replace(/:/g, '-')}`);
    const append = kernelCmdline({
      mode: 'discover',
      serverUrl: `http://${srv.address}:8080`,
      ...(opts.bootif ? {} : { mac }),
      extra,
    });

    const started = Date.now();
    const vm = net.spawnIn(
      net.bridgeNs,
      [
        'qemu-system-x86_64',
        '-accel',
        'tcg',
        '-m',
        String(MEMORY_MIB),
        '-nographic',
        '-no-reboot',
        '-kernel',
        image.kernelPath,
        '-initrd',
        image.initrdPath,
        '-append',
        append,
        '-netdev',
        `tap,id=n0,ifname=${tap},script=no,downscript=no`,
        '-device',
        `${opts.nic ?? 'virtio-net-pci'},netdev=n0,mac=${mac}`,
        '-drive',
        `file=${disk},if=none,id=d0,format=qcow2`,
        ...(opts.disk === 'ahci'
          ? ['-device', 'ich9-ahci,id=ahci0', '-device', `ide-hd,drive=d0,bus=ahci0.0,serial=${DISK_SERIAL}`]
          : ['-device', `virtio-blk-pci,drive=d0,serial=${DISK_SERIAL}`]),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    vm.stdout?.on('data', (c: Buffer) => serial.push(c));
    vm.stderr?.on('data', (c: Buffer) => serial.push(c));

    const code = await Promise.race([
      exited(vm),
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), BOOT_TIMEOUT_MS).unref()),
    ]);
    if (code === 'timeout') {
      assert.fail(
        `VM did not power off within ${BOOT_TIMEOUT_MS / 1000} s; serial console tail:\n${serialTail()}`,
      );
    }
    assert.equal(code, 0, `qemu exited with ${code}; serial console tail:\n${serialTail()}`);
    let text = '';
    try {
      text = await readFile(records, 'utf8');
    } catch {
      assert.fail(`the VM powered off without enlisting; serial console tail:\n${serialTail()}`);
    }
    return {
      mac,
      subnet,
      started,
      records: text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as EnlistRecord),
      console: Buffer.concat(serial).toString('utf8'),
    };
  } finally {
    await net.destroy();
    await rm(work, { recursive: true, force: true });
  }
}

function markers(consoleText: string): string[] {
  return consoleText
    .split('\n')
    .filter((l) => l.includes('corral: '))
    .map((l) => l.trim());
}

let image: NodeImage;

before(async () => {
  for (const cmd of ['qemu-system-x86_64', 'qemu-img', 'ip', 'busybox']) {
    assert.ok(
      hasCommand(cmd),
      `${cmd} is required (apt-get install qemu-system-x86 qemu-utils busybox-static)`,
    );
  }
  image = await buildNodeImage({
    cacheDir: CACHE_DIR,
    outDir: join(CACHE_DIR, 'test-node-image'),
    logger: silentLogger(),
  });
});

test('boots with a static address, enlists its inventory and powers off', { timeout: 300_000 }, async (t) => {
  const boot = await bootOnce(image, { dhcp: false, bootif: false });
  assert.equal(boot.records.length, 1, 'exactly one enlist POST');
  const rec = boot.records[0];
  assert.ok(rec);
  t.diagnostic(`power-on to enlist POST: ${((rec.receivedAt - boot.started) / 1000).toFixed(1)} s`);
  for (const line of markers(boot.console)) t.diagnostic(line);

  assert.equal(rec.contentType, 'application/json');
  const { body } = rec;
  assert.equal(body.mac, boot.mac);
  assert.equal(body.mode, 'discover');
  const inv = body.inventory;
  assert.ok(inv.cpu.count >= 1, 'cpu count');
  assert.equal(typeof inv.cpu.model, 'string');
  // The kernel reports MemTotal less what it keeps for itself: a little under the VM's 512 MiB.
  assert.ok(
    inv.memoryBytes > 384 * 1024 * 1024 && inv.memoryBytes <= MEMORY_MIB * 1024 * 1024,
    `memoryBytes ${inv.memoryBytes}`,
  );
  assert.equal(inv.firmware, 'bios');
  assert.equal(inv.disks.length, 1, JSON.stringify(inv.disks));
  const disk = inv.disks[0];
  assert.ok(disk);
  assert.equal(disk.name, 'vda');
  assert.equal(disk.sizeBytes, 2 * 1024 ** 3);
  assert.equal(disk.serial, DISK_SERIAL);
  assert.equal(disk.model, null, 'virtio-blk has no model');
  assert.equal(typeof disk.rotational, 'boolean');
  const nic = inv.nics.find((n) => n.mac === boot.mac);
  assert.ok(nic, `a NIC with MAC ${boot.mac} in ${JSON.stringify(inv.nics)}`);
  assert.equal(nic.link, 'up');
  assert.equal(inv.dmi.vendor, 'QEMU');
  assert.match(boot.console, /corral: enlisted as node-1/);
  assert.match(boot.console, /corral: action poweroff/);
});

test('boots with DHCP and BOOTIF, polls on "wait", then powers off', { timeout: 300_000 }, async (t) => {
  const wait = JSON.stringify({
    action: 'wait',
    pollSeconds: 1,
    node: { name: 'node-7', state: 'discovered' },
  });
  const off = JSON.stringify({ action: 'poweroff', node: { name: 'node-7', state: 'discovered' } });
  const boot = await bootOnce(image, { dhcp: true, bootif: true, replies: [wait, wait, off] });
  for (const line of markers(boot.console)) t.diagnostic(line);
  assert.equal(boot.records.length, 3, 'two polls after "wait", then power off');
  for (const rec of boot.records) assert.equal(rec.body.mac, boot.mac);
  assert.match(
    boot.console,
    new RegExp(`corral: dhcp lease ${boot.subnet.replace(/\./g, '\\.')}\\.1[0-5][0-9]/24`),
  );
  assert.match(boot.console, /corral: action wait/);
  assert.match(boot.console, /corral: action poweroff/);
  assert.equal(boot.console.match(/corral: enlisted as node-7/g)?.length, 1, 'the name is announced once');
});

for (const nic of ['e1000', 'e1000e'] as const) {
  test(
    `an Intel ${nic} NIC and an AHCI disk: the default image enlists over DHCP`,
    { timeout: 300_000 },
    async (t) => {
      const boot = await bootOnce(image, { dhcp: true, bootif: true, nic, disk: 'ahci' });
      for (const line of markers(boot.console)) t.diagnostic(line);
      assert.equal(boot.records.length, 1, 'exactly one enlist POST');
      const rec = boot.records[0];
      assert.ok(rec);
      t.diagnostic(
        `${nic}: power-on to enlist POST ${((rec.receivedAt - boot.started) / 1000).toFixed(1)} s`,
      );
      assert.equal(rec.body.mac, boot.mac);
      const nicRec = rec.body.inventory.nics.find((n) => n.mac === boot.mac);
      assert.ok(nicRec, `a NIC with MAC ${boot.mac} in ${JSON.stringify(rec.body.inventory.nics)}`);
      assert.equal(nicRec.link, 'up');
      // Intel's drivers report the negotiated speed, unlike virtio: QEMU's emulation says 1000 Mb/s.
      assert.equal(nicRec.speedMbps, 1000);
      const disk = rec.body.inventory.disks.find((d) => d.serial === DISK_SERIAL);
      assert.ok(disk, `the AHCI disk in ${JSON.stringify(rec.body.inventory.disks)}`);
      assert.equal(disk.name, 'sda');
      assert.equal(disk.sizeBytes, 2 * 1024 ** 3);
      assert.match(boot.console, /corral: action poweroff/);
    },
  );
}
