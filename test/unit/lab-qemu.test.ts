/**
 * The lab's QEMU command lines per NIC model and firmware, and `corral lab --nic`'s list. qemu itself is
 * asked whether each device model exists, so a typo in a device name cannot pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { DEFAULT_NIC_LIST, NIC_MODELS, parseNicList, qemuArgs, type VmSpec } from '../../master/lab/qemu.js';

const spec = (over: Partial<VmSpec>): VmSpec => ({
  name: 'vm1',
  mac: '52:54:00:01:00:01',
  firmware: 'bios',
  nic: 'virtio',
  memoryMb: 512,
  cpus: 1,
  diskPath: '/tmp/d.qcow2',
  diskGb: 4,
  diskSerial: 'S1',
  tap: 'tap0',
  noReboot: false,
  ...over,
});

function nicDevice(args: string[]): string {
  const i = args.findIndex((a, k) => a === '-device' && /netdev=n0/.test(args[k + 1] ?? ''));
  assert.ok(i >= 0, args.join(' '));
  return args[i + 1] ?? '';
}

test('each NIC model maps to a QEMU device that this QEMU knows, PXE-first, with the VM MAC', () => {
  const known = execFileSync('qemu-system-x86_64', ['-device', 'help'], { encoding: 'utf8' });
  const want = { virtio: 'virtio-net-pci', e1000: 'e1000', e1000e: 'e1000e' } as const;
  for (const nic of NIC_MODELS) {
    const dev = nicDevice(qemuArgs(spec({ nic }), undefined));
    assert.equal(dev, `${want[nic]},netdev=n0,mac=52:54:00:01:00:01,bootindex=1`);
    assert.match(known, new RegExp(`name "${want[nic]}"`), `qemu has ${want[nic]}`);
  }
});

test('UEFI VMs get the model-matched iPXE EFI ROM from ipxe-qemu', () => {
  for (const nic of NIC_MODELS) {
    const dev = nicDevice(qemuArgs(spec({ nic, firmware: 'uefi' }), '/usr/share/ovmf/OVMF.fd'));
    const rom = /romfile=(\S+)$/.exec(dev)?.[1];
    assert.ok(rom, dev);
    assert.match(rom, new RegExp(`/efi-${nic === 'virtio' ? 'virtio' : nic}\\.rom$`));
    assert.ok(existsSync(rom), `${rom} installed (ipxe-qemu)`);
  }
});

test('--nic: VM i gets the i-th model, the rest virtio; unknown models are named', () => {
  assert.deepEqual(parseNicList(DEFAULT_NIC_LIST, 2), { models: ['virtio', 'e1000'] });
  assert.deepEqual(parseNicList(DEFAULT_NIC_LIST, 1), { models: ['virtio'] });
  assert.deepEqual(parseNicList('e1000e', 3), { models: ['e1000e', 'virtio', 'virtio'] });
  assert.deepEqual(parseNicList(' e1000 , e1000e ', 2), { models: ['e1000', 'e1000e'] });
  assert.deepEqual(parseNicList('virtio,rtl8139', 2), { bad: 'rtl8139' });
  assert.deepEqual(parseNicList('', 1), { bad: '' });
});

test('UEFI network stack: IPv4 only by default, IPv6 only with ipStack ipv6 (dual-stack lab)', () => {
  const fwCfg = (args: string[]): string[] => args.filter((_, k) => args[k - 1] === '-fw_cfg');
  const v4 = qemuArgs(spec({ firmware: 'uefi-http' }), '/ovmf.fd');
  assert.deepEqual(fwCfg(v4), ['name=opt/org.tianocore/IPv6Support,string=no']);
  const v6 = qemuArgs(spec({ firmware: 'uefi-http', ipStack: 'ipv6' }), '/ovmf.fd');
  assert.deepEqual(fwCfg(v6), [
    'name=opt/org.tianocore/IPv4PXESupport,string=n',
    'name=opt/org.tianocore/IPv4Support,string=n',
  ]);
  assert.equal(v6[v6.indexOf('-bios') + 1], '/ovmf.fd');
});
