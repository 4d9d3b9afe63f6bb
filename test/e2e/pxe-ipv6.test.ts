/**
 * End to end, IPv6-only (issue 18): an OVMF VM (its own network stack, no iPXE option ROM, IPv6 on) on a
 * provisioning link with no IPv4 at all. Corral's radvd sends the RA the firmware waits for, Corral's
 * DHCPv6 answers "PXE over IPv6" with an IA_NA address and option 59 `tftp://[fd00:5a::1]/ipxe.efi`, and
 * Corral's TFTP server (bound to ::) sends ipxe.efi, which starts.
 *
 * What it does not show: discovery over IPv6. After ipxe.efi starts, the chain needs the master's HTTP
 * listener on IPv6 (http.bind is IPv4 today) and Debian's iPXE build doing DHCPv6 itself; neither is
 * there yet (docs/ipv6.md, "Not done").
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { TestNet, waitFor, type Host } from '../helpers/netns.js';
import { installPath } from '../../master/util/paths.js';
import { findOvmf } from '../../master/lab/qemu.js';

const SERVER = 'fd00:5a::1';
const MAC = '52:54:00:5a:00:01';

let net: TestNet | undefined;
let dir = '';
let serial = '';
let poweredOnAt = 0;
let srv: Host;
let serverOut = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'corral-e2e-pxe6-'));
  const root = join(dir, 'tftp');
  mkdirSync(root);
  copyFileSync('/usr/lib/ipxe/ipxe.efi', join(root, 'ipxe.efi'));
  net = new TestNet('p6');
  srv = net.addHost('srv', null);
  net.nsExec(srv.ns, ['ip', '-6', 'addr', 'add', `${SERVER}/64`, 'dev', srv.ifname, 'nodad']);
  await waitFor(
    'server link-local',
    () =>
      net!.nsExec(srv.ns, ['ip', '-6', 'addr', 'show', 'dev', srv.ifname, 'tentative']).trim() === ''
        ? true
        : undefined,
    10_000,
  );
  const server = net.spawnIn(srv.ns, [
    process.execPath,
    installPath('dist', 'test', 'helpers', 'dhcp6-serve.js'),
    '--data-dir',
    dir,
    '--iface',
    srv.ifname,
    '--address',
    SERVER,
    '--prefix',
    'fd00:5a::/64',
    '--range',
    'fd00:5a::100-fd00:5a::1ff',
    '--tftp-root',
    root,
  ]);
  server.stdout?.on('data', (b: Buffer) => (serverOut += b.toString()));
  let err = '';
  server.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  await waitFor('dhcp6-serve READY', () => (serverOut.includes('READY') ? true : undefined), 20_000).catch(
    (e: Error) => {
      throw new Error(`${e.message}: ${err.slice(-1500)}`);
    },
  );
  const ovmf = findOvmf();
  assert.ok(ovmf, 'OVMF is not installed (Debian package ovmf)');
  const tap = net.addTap();
  const vm: ChildProcess = net.spawnIn(net.bridgeNs, [
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
    'stdio',
    '-no-reboot',
    '-bios',
    ovmf,
    '-netdev',
    `tap,id=n0,ifname=${tap},script=no,downscript=no`,
    // romfile= (none): OVMF's own PXE stack, which does PXE over IPv6 (QEMU's iPXE ROM would take over).
    '-device',
    `virtio-net-pci,netdev=n0,mac=${MAC},bootindex=1,romfile=`,
  ]);
  vm.stdout?.on('data', (b: Buffer) => (serial = (serial + b.toString('latin1')).slice(-200_000)));
  poweredOnAt = Date.now();
});

after(async () => {
  await net?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('OVMF PXE over IPv6: RA, DHCPv6 address and option 59 from Corral, ipxe.efi over TFTP/IPv6 starts', async () => {
  // OVMF prints these lines on its serial console (PxeBcDxe); escape sequences in between are ignored.
  const ESC = String.fromCharCode(27);
  const plain = (): string => serial.replace(new RegExp(`${ESC}\\[[0-9;=]*[A-Za-z]`, 'g'), '');
  try {
    await waitFor(
      'iPXE started from PXE over IPv6',
      () => (/iPXE/.test(plain().split('NBP filename')[1] ?? '') ? true : undefined),
      420_000,
      2000,
    );
  } catch (err) {
    assert.fail(`${(err as Error).message}\n--- serial (last 3000):\n${plain().slice(-3000)}`);
  }
  const text = plain();
  assert.match(text, /Start PXE over IPv6/);
  // OVMF prints the address uncompressed: FD00:5A:0:0:0:0:0:1xx, from the configured range.
  assert.match(text, /Station IP address is FD00:5A:0:0:0:0:0:1[0-9A-F]{2}\b/i);
  assert.match(text, /Server IP address is FD00:5A:0:0:0:0:0:1\b/i);
  assert.match(text, /NBP filename is ipxe\.efi/);
  assert.match(text, /NBP file downloaded successfully/);
  console.log(
    `# e2e: PXE over IPv6, power-on → iPXE running ${((Date.now() - poweredOnAt) / 1000).toFixed(1)} s (TCG)`,
  );
});
