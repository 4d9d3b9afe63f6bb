/**
 * The Secure Boot chain's pure parts (issue 18): which UEFI x86-64 clients DHCP gives shim and which
 * iPXE (global setting, a node's tag, an explicit bootFiles.x64Uefi), the names GRUB asks the TFTP
 * server for, and the GRUB configs rendered from the same boot decision as the iPXE scripts (golden
 * files in test/fixtures/grub/).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { golden as goldenFile } from '../helpers/golden.js';
import { decide } from '../helpers/boot.js';
import { BOOT_FAILURE_DEFAULTS, BootConfigSchema } from '../../master/boot/config.js';
import {
  grubCfgPath,
  parseGrubRequest,
  renderGrubBootstrap,
  renderGrubConfig,
} from '../../master/boot/grub.js';
import {
  BootFilesSchema,
  GRUB_NAME,
  resolveBootFiles,
  SHIM_NAME,
  uefiChainFromTags,
} from '../../master/dhcp/boot-files.js';
import { chooseBoot } from '../../master/dhcp/pxe.js';
import type { DhcpOptions } from '../../master/dhcp/codec.js';
import type { NodeRecord } from '../../master/store/nodes.js';
import { installPath } from '../../master/util/paths.js';
import { OVMF_SB_CODE, qemuArgs } from '../../master/lab/qemu.js';
import { describe } from '../../master/boot/activity.js';
import { nodeRecord } from '../helpers/node-record.js';

const MAC = '52:54:00:5b:00:09';
const LEGACY = { biosFile: 'undionly.kpxe', uefiFile: 'ipxe.efi' };
const URL = 'http://10.99.0.1:8080';
const pxe = (arch: number): DhcpOptions =>
  ({ vendorClassId: `PXEClient:Arch:0000${arch}:UNDI:003016`, clientArch: [arch] }) as DhcpOptions;

test('by default a UEFI x86-64 PXE client (arch 7 and 9) gets shim; BIOS keeps undionly.kpxe', () => {
  const boot = BootConfigSchema.parse(undefined);
  assert.equal(boot.uefiChain, 'secure-boot');
  const cfg = resolveBootFiles(BootFilesSchema.parse({}), LEGACY, URL, '10.99.0.1', {
    uefiChain: boot.uefiChain,
  });
  for (const arch of [7, 9]) {
    assert.deepEqual(chooseBoot(pxe(arch), MAC, cfg), {
      kind: 'tftp',
      file: SHIM_NAME,
      server: '10.99.0.1',
      arch,
    });
  }
  assert.equal((chooseBoot(pxe(0), MAC, cfg) as { file: string }).file, 'undionly.kpxe');
  // iPXE itself (user class iPXE) still gets its script, whatever the chain.
  const ipxe = { ...pxe(7), userClass: ['iPXE'] } as DhcpOptions;
  assert.equal(chooseBoot(ipxe, MAC, cfg).kind, 'http');
});

test('boot.uefiChain ipxe, a node tag, or an explicit bootFiles.x64Uefi choose the loader', () => {
  const files = BootFilesSchema.parse({});
  const global = resolveBootFiles(files, LEGACY, URL, '10.99.0.1', { uefiChain: 'ipxe' });
  assert.equal((chooseBoot(pxe(7), MAC, global) as { file: string }).file, 'ipxe.efi');

  const tags = new Map<string, string[]>([
    [MAC, ['rack-1', 'uefi-chain:ipxe']],
    ['52:54:00:00:00:02', ['uefi-chain:secure-boot']],
  ]);
  const forNode = (mac: string) => uefiChainFromTags(tags.get(mac) ?? []);
  const byTag = resolveBootFiles(files, LEGACY, URL, '10.99.0.1', { uefiChain: 'secure-boot', forNode });
  assert.equal((chooseBoot(pxe(7), MAC, byTag) as { file: string }).file, 'ipxe.efi');
  assert.equal((chooseBoot(pxe(7), '52:54:00:00:00:03', byTag) as { file: string }).file, SHIM_NAME);
  const ipxeDefault = resolveBootFiles(files, LEGACY, URL, '10.99.0.1', { uefiChain: 'ipxe', forNode });
  assert.equal((chooseBoot(pxe(9), '52:54:00:00:00:02', ipxeDefault) as { file: string }).file, SHIM_NAME);

  // The operator's own x64 UEFI file wins over every chain setting.
  const own = resolveBootFiles(BootFilesSchema.parse({ x64Uefi: 'snponly.efi' }), LEGACY, URL, '10.99.0.1', {
    uefiChain: 'secure-boot',
    forNode,
  });
  assert.equal((chooseBoot(pxe(7), '52:54:00:00:00:02', own) as { file: string }).file, 'snponly.efi');
  // Without a chain (DHCPv6 resolves so): iPXE, as before issue 18's Secure Boot part.
  assert.equal(resolveBootFiles(files, LEGACY, URL, '10.99.0.1').uefiFile, 'ipxe.efi');
  assert.equal(uefiChainFromTags(['uefi-chain:ipxe', 'uefi-chain:secure-boot']), 'secure-boot');
  assert.equal(uefiChainFromTags(['uefi-chain:other']), undefined);
  assert.equal(GRUB_NAME, 'grubx64.efi', 'the name shim loads from its own directory');
});

test('GRUB TFTP names: bootstrap, per-node config by MAC and attempt, kernel and initrds; others are not ours', () => {
  assert.deepEqual(parseGrubRequest('grub/grub.cfg'), { kind: 'bootstrap' });
  assert.deepEqual(parseGrubRequest(`grub/node/${MAC.toUpperCase()}/3.cfg`), {
    kind: 'node-cfg',
    mac: MAC,
    attempt: 3,
  });
  assert.deepEqual(parseGrubRequest('node/vmlinuz'), { kind: 'kernel' });
  assert.deepEqual(parseGrubRequest('node/initrd.img'), { kind: 'initrd' });
  assert.deepEqual(parseGrubRequest('installer/tools.img'), { kind: 'installer-tools' });
  for (const other of [
    'shimx64.efi',
    'grub/node/zz:zz/0.cfg',
    'grub/node/52:54:00:5b:00:09/x.cfg',
    'node/../x',
  ]) {
    assert.equal(parseGrubRequest(other), undefined, other);
  }
  assert.equal(grubCfgPath(MAC, 2), `/grub/node/${MAC}/2.cfg`);
  assert.match(renderGrubBootstrap(), /configfile \$prefix\/node\/\$\{net_default_mac\}\/0\.cfg/);
});

function node(state: NodeRecord['state']): NodeRecord {
  return nodeRecord({ mac: MAC, name: 'sb-1', state, firmware: 'uefi' });
}

const base = { mac: MAC, baseUrl: URL, kernelArgs: '', nodeImageReady: true };
const script = { mac: MAC, baseUrl: URL, kernelArgs: '', attempt: 0, failure: BOOT_FAILURE_DEFAULTS };
const grub = (name: string, text: string): void => goldenFile(`grub/${name}.cfg`, text);

test('GRUB configs follow the same decision as iPXE: discover, install, shared root, local disk, wait, fallback', () => {
  const discover = decide({ ...base, node: undefined });
  grub('discover-unknown', renderGrubConfig(discover, script));
  const install = decide({ ...base, node: node('deploying'), deployment: { id: 7, status: 'pending' } });
  assert.equal(install.template, 'ipxe/install.hbs');
  grub('install', renderGrubConfig(install, script));
  const diskless = decide({
    ...base,
    node: node('diskless'),
    sharedRoot: { rootName: 'web', version: 3, params: ['corral.nfs=10.99.0.1:/roots/web/3'] },
  });
  assert.equal(diskless.template, 'ipxe/sharedroot.hbs');
  grub('sharedroot', renderGrubConfig(diskless, script));
  grub('local-deployed', renderGrubConfig(decide({ ...base, node: node('deployed') }), script));
  const wait = decide({ ...base, nodeImageReady: false, node: undefined, attempt: 2 });
  // Waiting is no failed attempt: the same attempt's file again.
  assert.match(
    renderGrubConfig(wait, { ...script, attempt: 2 }),
    /configfile \/grub\/node\/[0-9a-f:]+\/2\.cfg/,
  );
  const last = BOOT_FAILURE_DEFAULTS.retries + 1;
  const gaveUp = decide({ ...base, node: node('ready'), attempt: last });
  assert.equal(gaveUp.by, 'fallback');
  grub('fallback-local-disk', renderGrubConfig(gaveUp, { ...script, attempt: last }));
  const shell = { ...BOOT_FAILURE_DEFAULTS, onFailure: 'shell' as const };
  const toShell = decide({ ...base, node: node('ready'), attempt: last, failure: shell });
  assert.doesNotMatch(
    renderGrubConfig(toShell, { ...script, attempt: last, failure: shell }),
    /exit|chainloader/,
  );
});

test('every iPXE template has its GRUB counterpart', () => {
  const ipxe = readdirSync(installPath('templates', 'ipxe')).filter((f) => f !== 'ask-mac.hbs');
  const grubs = new Set(readdirSync(installPath('templates', 'grub')));
  for (const f of ipxe) assert.ok(grubs.has(f), `templates/grub/${f} (GRUB's side of ipxe/${f})`);
});

test("the lab's uefi-sb VM: OVMF's Secure Boot build with Microsoft's keys, SMM, its own vars copy, no iPXE ROM", () => {
  const spec = {
    ...{
      name: 'vm1',
      mac: MAC,
      firmware: 'uefi-sb' as const,
      nic: 'virtio' as const,
      memoryMb: 768,
      cpus: 1,
    },
    ...{ diskPath: '/tmp/x/vm1.qcow2', diskGb: 3, diskSerial: 'S1', tap: 'tap1', noReboot: false },
  };
  const args = qemuArgs(spec, undefined).join(' ');
  assert.match(args, /-machine q35,smm=on/);
  assert.match(args, /-global driver=cfi\.pflash01,property=secure,value=on/);
  assert.match(args, new RegExp(`file=${OVMF_SB_CODE},readonly=on`));
  assert.match(args, /if=pflash,format=raw,unit=1,file=\/tmp\/x\/vm1\.qcow2\.vars\.fd/);
  assert.match(args, /virtio-net-pci,netdev=n0,mac=[^ ]*,bootindex=1,romfile=( |$)/);
  assert.doesNotMatch(args, /-bios/);
});

test('the boot timeline names GRUB configs and the signed chain packages when shim or GRUB is missing', () => {
  const cfg = describe({ kind: 'script', template: 'grub/discover.hbs', ip: '10.99.0.100' });
  assert.equal(cfg.summary, 'GRUB config grub/discover.hbs');
  assert.equal(cfg.failed, false);
  const waiting = describe({ kind: 'script', template: 'grub/no-image.hbs', ip: '10.99.0.100' });
  assert.equal(waiting.failed, true);
  const shim = describe({
    kind: 'tftp',
    file: 'shimx64.efi',
    ok: false,
    bytes: 0,
    ms: 0,
    error: 'File not found',
  });
  assert.match(shim.hint ?? '', /shim-signed and grub-efi-amd64-signed/);
});
