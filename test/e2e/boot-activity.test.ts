/**
 * The 404 loop, seen in the boot timeline with real firmware: a UEFI VM (OVMF's own PXE stack,
 * `romfile=` empty, so the firmware rather than an iPXE ROM does the first DHCP and TFTP) boots from a
 * master whose node environment is announced but whose kernel file is gone. The VM's timeline must show
 * DHCP (x86-64 UEFI, ipxe.efi offered) → TFTP ipxe.efi → iPXE's own DHCP (user class iPXE, the script URL)
 * → the discover script → kernel 404 marked failing with its hint, all attributed to the VM's MAC. Then a
 * file that is not a kernel: fetched (200), rejected by iPXE, and the script asked again — marked too.
 * And the other way round: a BIOS lab VM that boots the real node environment and enlists leaves a
 * timeline in which nothing is marked failing. That lab is started in `before`, so its VM boots while the
 * UEFI VM loops (CI time, docs/testing.md); the second test awaits it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { TestNet, waitFor, type Host } from '../helpers/netns.js';
import { runIn } from '../helpers/dhcp-harness.js';
import { basic, startMasterProcess, type MasterProcess } from '../helpers/master-process.js';
import { findOvmf } from '../../master/lab/qemu.js';
import { startLab, type Lab } from '../../master/lab/lab.js';
import { silentLogger } from '../../master/util/logger.js';
import type { BootActivityEntry } from '../../master/store/boot-activity.js';

const PASSWORD = 'boot-activity-e2e-pw';
const MAC = '52:54:00:b0:0e:01';
const ovmf = findOvmf();
const unmet = unmetNeeds({
  root: true,
  commands: ['qemu-system-x86_64'],
  files: [ovmf ?? '/usr/share/ovmf/OVMF.fd', '/usr/lib/ipxe/ipxe.efi'],
});

let net: TestNet | undefined;
let master: MasterProcess | undefined;
let dir = '';
let srv: Host;
let kernelPath = '';
const prefix = `10.82.${1 + Math.floor(Math.random() * 250)}`;
const SERVER = `${prefix}.1`;
/** The BIOS test's lab: started in `before`, torn down in `after`. */
let biosLab: Promise<Lab> | undefined;
let labDir = '';

before(async () => {
  failIfUnmet(unmet);
  labDir = mkdtempSync(join(tmpdir(), 'corral-bootact-lab-'));
  biosLab = startLab({
    dir: labDir,
    vms: [{ firmware: 'bios' }],
    logger: silentLogger(),
    memoryMb: 512,
    diskGb: 2,
    subnetPrefix: `10.83.${1 + Math.floor(Math.random() * 250)}`,
    // Polls every 2 s: the test waits for two of them after the enlist.
    masterConfig: { nodes: { discoverAction: 'wait', pollSeconds: 2 } },
  });
  // Awaited by the BIOS test and by `after`: a failure is theirs, not an unhandled rejection.
  biosLab.catch(() => undefined);
  dir = mkdtempSync(join(tmpdir(), 'corral-bootact-e2e-'));
  const data = join(dir, 'data');
  // A node environment the master finds at start (so the script is `discover`), whose kernel then goes
  // missing: the 404 loop of issue 22, whatever its cause.
  mkdirSync(join(data, 'node-image'), { recursive: true });
  writeFileSync(join(data, 'node-image', 'vmlinuz'), 'not a kernel');
  writeFileSync(join(data, 'node-image', 'initrd.img'), 'not an initrd');
  net = new TestNet('bx');
  srv = net.addHost('srv', `${SERVER}/24`);
  // The master would build the node environment itself (nodeImage.autoBuild): this test needs it missing.
  writeFileSync(
    join(dir, 'corral.json'),
    JSON.stringify({
      nodeImage: { autoBuild: false },
      // iPXE's 404 loop is what this test follows: UEFI clients get iPXE, not the signed GRUB chain
      // (whose own retries on a missing kernel are in test/unit/secure-boot.test.ts).
      boot: { uefiChain: 'ipxe' },
      // curl -u from the client's namespace over plain HTTP (not loopback): opted in.
      console: { allowInsecureBasicAuth: true },
    }),
  );
  master = await startMasterProcess({
    args: [
      '--config',
      join(dir, 'corral.json'),
      '--data-dir',
      data,
      '--address',
      SERVER,
      '--interface',
      srv.ifname,
      '--dhcp-range',
      `${prefix}.100-${prefix}.150`,
    ],
    netns: srv.ns,
    host: SERVER,
    env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
    timeoutMs: 60_000,
    logFile: join(dir, 'master.log'),
  }).catch(async (err: unknown) => {
    await net?.destroy();
    throw err;
  });
  kernelPath = join(data, 'node-image', 'vmlinuz');
  rmSync(kernelPath);
});

after(async () => {
  await master?.stop('SIGTERM', 10_000).catch(() => master?.stop('SIGKILL'));
  await net?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
  // startLab tears down what it made if it fails, so only a lab that started is destroyed here.
  await (await biosLab?.catch(() => undefined))?.destroy();
  if (labDir) rmSync(labDir, { recursive: true, force: true });
});

async function timeline(): Promise<BootActivityEntry[]> {
  const r = await runIn(
    net!,
    srv.ns,
    ['curl', '-sS', '-f', '-u', `admin:${PASSWORD}`, `http://${SERVER}/api/v1/boot-activity?mac=${MAC}`],
    15_000,
  );
  if (r.code !== 0) return [];
  return (JSON.parse(r.stdout) as { entries: BootActivityEntry[] }).entries;
}

test(
  'a UEFI VM looping on a missing kernel: its timeline shows DHCP → TFTP → iPXE → script → kernel 404 (failing)',
  { timeout: 360_000 },
  async (t) => {
    const n = net!;
    const tap = n.addTap();
    const vmLog = join(dir, 'vm.log');
    const vm = n.spawnIn(
      n.bridgeNs,
      [
        'qemu-system-x86_64',
        '-accel',
        'tcg',
        '-m',
        '512',
        '-display',
        'none',
        '-monitor',
        'none',
        '-serial',
        `file:${vmLog}`,
        '-no-reboot',
        '-bios',
        ovmf!,
        '-fw_cfg',
        'name=opt/org.tianocore/IPv6Support,string=no',
        '-netdev',
        `tap,id=n0,ifname=${tap},script=no,downscript=no`,
        '-device',
        `virtio-net-pci,netdev=n0,mac=${MAC},bootindex=1,romfile=`,
      ],
      { stdio: 'ignore' },
    );
    try {
      const steps = await waitFor(
        'a kernel 404 in the VM timeline',
        async () => {
          const t = await timeline();
          return t.some((e) => e.kind === 'http' && e.detail['status'] === 404) ? t : undefined;
        },
        300_000,
        1000,
      ).catch((err: unknown) => {
        const serial = existsSync(vmLog) ? readFileSync(vmLog, 'utf8').slice(-2000) : '';
        throw new Error(
          `${String(err)}\nVM serial tail:\n${serial}\nmaster log tail:\n${master?.logs().slice(-3000)}`,
        );
      });
      for (const e of steps) t.diagnostic(`${e.at} ${e.failed ? 'FAILED ' : ''}${e.kind}: ${e.summary}`);
      const kinds = steps.map((e) => e.kind);
      const firmwareDhcp = steps.find((e) => e.kind === 'dhcp' && e.detail['reply'] === 'DHCPACK');
      assert.equal(firmwareDhcp?.detail['arch'], 7, `x86-64 UEFI: ${JSON.stringify(firmwareDhcp)}`);
      assert.equal(firmwareDhcp?.detail['bootFile'], 'ipxe.efi');
      assert.equal(firmwareDhcp?.detail['userClass'], null, "the firmware's own DHCP");
      // OVMF first asks the size (tsize) and ends that transfer with ERROR 8, then fetches the file.
      const tftp = steps.findIndex(
        (e) => e.kind === 'tftp' && e.detail['file'] === 'ipxe.efi' && e.detail['ok'],
      );
      const tftpSteps = steps.filter((e) => e.kind === 'tftp');
      assert.deepEqual(
        tftpSteps.filter((e) => e.failed).map((e) => e.summary),
        [],
        'no TFTP step of a working chain is marked failing',
      );
      assert.ok(tftp > steps.indexOf(firmwareDhcp!), `order: ${kinds.join(' ')}`);
      assert.equal(steps[tftp]?.failed, false, steps[tftp]?.summary);
      const ipxeDhcp = steps.findIndex(
        (e, i) =>
          i > tftp &&
          e.kind === 'dhcp' &&
          e.detail['userClass'] === 'iPXE' &&
          e.detail['reply'] === 'DHCPACK',
      );
      assert.ok(ipxeDhcp > tftp, `order: ${kinds.join(' ')}`);
      assert.match(
        String(steps[ipxeDhcp]?.detail['bootFile']),
        new RegExp(`/boot/ipxe\\?mac=${MAC}&platform=\\$\\{platform\\}$`),
      );
      const script = steps.findIndex((e, i) => i > ipxeDhcp && e.kind === 'script');
      assert.equal(steps[script]?.detail['template'], 'ipxe/discover.hbs');
      const kernel = steps.findIndex((e, i) => i > script && e.kind === 'http');
      assert.equal(steps[kernel]?.detail['path'], '/boot/node/vmlinuz');
      assert.equal(steps[kernel]?.failed, true);
      assert.match(steps[kernel]?.hint ?? '', /^kernel missing: the node environment is not built/);

      // A kernel file is back, but not a kernel: iPXE's retry (10 s) fetches it, cannot load it, and asks
      // for the script again without fetching the initrd. That loop is marked too.
      const KERNEL_BYTES = 4321;
      writeFileSync(kernelPath, Buffer.alloc(KERNEL_BYTES, 0x41));
      const after = await waitFor(
        'the retried kernel fetch and the script asked again',
        async () => {
          const t = await timeline();
          const i = t.findIndex((e) => e.kind === 'http' && e.detail['status'] === 200);
          return i >= 0 && t.slice(i + 1).some((e) => e.kind === 'script') ? t.slice(i) : undefined;
        },
        120_000,
        1000,
      );
      for (const e of after) t.diagnostic(`${e.at} ${e.failed ? 'FAILED ' : ''}${e.kind}: ${e.summary}`);
      assert.equal(after[0]?.detail['path'], '/boot/node/vmlinuz');
      assert.equal(after[0]?.detail['bytes'], KERNEL_BYTES);
      assert.equal(after[0]?.failed, false);
      assert.equal(after[1]?.kind, 'script', 'no initrd fetch: iPXE rejected the kernel');
      assert.equal(after[1]?.failed, true);
      assert.match(after[1]?.hint ?? '', /iPXE fetched the kernel but could not load it/);
      const list = await runIn(
        n,
        srv.ns,
        [
          'curl',
          '-sS',
          '-f',
          '-u',
          `admin:${PASSWORD}`,
          `http://${SERVER}/api/v1/boot-activity?unenlisted=1`,
        ],
        15_000,
      );
      const me = (
        JSON.parse(list.stdout) as {
          machines: { mac: string; failure: { summary: string } | null; node: unknown }[];
        }
      ).machines.find((m) => m.mac === MAC);
      assert.equal(me?.node, null);
      assert.match(
        me?.failure?.summary ?? '',
        /iPXE did not boot it/,
        'the standing failure is the newest one',
      );
    } finally {
      vm.kill('SIGKILL');
    }
  },
);

test(
  'a BIOS VM that boots and enlists leaves a timeline with no failing step: script → kernel → initrd → OS DHCP → enlist',
  { timeout: 480_000 },
  async (t) => {
    const lab = await biosLab!;
    const mac = lab.vms[0]!.spec.mac;
    const get = async (): Promise<BootActivityEntry[]> => {
      const r = await fetch(`${lab.hostUrl}/api/v1/boot-activity?mac=${mac}`, {
        headers: basic('admin', lab.adminPassword),
      });
      return r.ok ? ((await r.json()) as { entries: BootActivityEntry[] }).entries : [];
    };
    await waitFor(
      'the VM enlisted',
      async () => ((await get()).some((e) => e.kind === 'enlist') ? true : undefined),
      400_000,
      1000,
    );
    // Two more agent polls (each re-enlists: a node.enlisted event): they must not add steps.
    await waitFor(
      'two agent polls after the enlist',
      async () => {
        const r = await fetch(`${lab.hostUrl}/api/v1/events?node=${mac}&kind=node.enlisted`, {
          headers: basic('admin', lab.adminPassword),
        });
        const events = r.ok ? ((await r.json()) as { events: unknown[] }).events : [];
        return events.length >= 2 ? true : undefined;
      },
      60_000,
      1000,
    );
    const steps = await get();
    for (const e of steps) t.diagnostic(`${e.at} ${e.failed ? 'FAILED ' : ''}${e.kind}: ${e.summary}`);
    assert.deepEqual(
      steps.filter((e) => e.failed).map((e) => e.summary),
      [],
    );
    const seq = steps
      .filter((e) => e.kind !== 'dhcp' || e.detail['reply'] === 'DHCPACK')
      .map((e) =>
        e.kind === 'http'
          ? String(e.detail['path'])
          : e.kind === 'dhcp'
            ? `dhcp${e.detail['pxe'] ? ' iPXE' : ' OS'}`
            : e.kind,
      );
    assert.deepEqual(seq, [
      'dhcp iPXE',
      'script',
      '/boot/node/vmlinuz',
      '/boot/node/initrd.img',
      'dhcp OS',
      'enlist',
    ]);
    const kernel = steps.find((e) => e.detail['path'] === '/boot/node/vmlinuz');
    assert.ok(Number(kernel?.detail['bytes']) > 1_000_000, 'a real kernel was served');
  },
);
