/**
 * Which iPXE build x64 UEFI clients get over IPv6 (issue 18, master/dhcp6/uefi-loader.ts): snponly.efi in
 * place of Debian's full ipxe.efi, whose `exit 1` did not hand back to OVMF; the operator's own loader
 * stays. Checked through chooseBoot, the choice decide6 puts in option 59 (RFC 5970 §3.1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BootFilesSchema, loaderFileNames, resolveBootFiles } from '../../master/dhcp/boot-files.js';
import { Dhcp6ConfigSchema } from '../../master/dhcp6/config.js';
import { ipv6UefiLoader } from '../../master/dhcp6/uefi-loader.js';
import { chooseBoot } from '../../master/dhcp/pxe.js';
import { emptyOptions } from '../../master/dhcp/codec.js';

const BASE = 'http://[fd00:55::1]:8080';
const LEGACY = { biosFile: 'undionly.kpxe', uefiFile: 'ipxe.efi' };
const boot = (files: object, build: 'snponly.efi' | 'ipxe.efi' = 'snponly.efi') =>
  ipv6UefiLoader(resolveBootFiles(BootFilesSchema.parse(files), LEGACY, BASE, 'fd00:55::1'), build, BASE);
const pxe = { ...emptyOptions(), vendorClassId: 'PXEClient', clientArch: [7] };
const http = { ...emptyOptions(), vendorClassId: 'HTTPClient:Arch:00016:UNDI:003001', clientArch: [16] };
const MAC = '52:54:00:06:00:01';

test('over IPv6, x64 UEFI PXE and HTTP boot get snponly.efi by default (dhcp6.uefiIpxe)', () => {
  assert.equal(Dhcp6ConfigSchema.parse({}).uefiIpxe, 'snponly.efi');
  assert.deepEqual(chooseBoot(pxe, MAC, boot({})), {
    kind: 'tftp',
    file: 'snponly.efi',
    server: 'fd00:55::1',
    arch: 7,
  });
  const h = chooseBoot(http, MAC, boot({}));
  assert.equal(h.kind === 'uefi-http' ? h.url : h.kind, `${BASE}/boot/loader/snponly.efi`);
  // Named ipxe.efi (explicitly or by default): the same Debian file, so the same replacement.
  assert.equal(boot({ x64Uefi: 'ipxe.efi' }).uefiFile, 'snponly.efi');
  // BIOS is untouched; the full build stays available as a choice.
  assert.equal(boot({}).biosFile, 'undionly.kpxe');
  assert.equal(boot({}, 'ipxe.efi').uefiFile, 'ipxe.efi');
  assert.equal(boot({}, 'ipxe.efi').x64HttpUrl, `${BASE}/boot/loader/ipxe.efi`);
  assert.throws(() => Dhcp6ConfigSchema.parse({ uefiIpxe: '../x.efi' }));
});

test("the operator's own loaders are left alone, and snponly.efi is always served", () => {
  const own = boot({ x64Uefi: 'my.efi', x64UefiHttp: 'http://h/x.efi' });
  assert.equal(own.uefiFile, 'my.efi');
  assert.equal(own.x64HttpUrl, 'http://h/x.efi');
  // Copied to the TFTP root and allowed at /boot/loader/ (both read loaderFileNames).
  assert.ok(loaderFileNames(BootFilesSchema.parse({}), LEGACY).includes('snponly.efi'));
});

test('over IPv6 the Secure Boot chain is the default too: shim over TFTP, the signed ISO over HTTP boot; a node that chose iPXE gets snponly.efi', () => {
  const TAGGED = '52:54:00:06:00:02';
  const signedIso = (mac: string): string => `${BASE}/boot/http/${mac}/corral.iso`;
  const chained = (uefiChain: 'secure-boot' | 'ipxe') =>
    ipv6UefiLoader(
      resolveBootFiles(
        BootFilesSchema.parse({}),
        LEGACY,
        BASE,
        'fd00:55::1',
        { uefiChain, forNode: (mac) => (mac === TAGGED ? 'ipxe' : undefined) },
        signedIso,
      ),
      'snponly.efi',
      BASE,
    );
  const sb = chained('secure-boot');
  assert.deepEqual(chooseBoot(pxe, MAC, sb), {
    kind: 'tftp',
    file: 'shimx64.efi',
    server: 'fd00:55::1',
    arch: 7,
  });
  const h = chooseBoot(http, MAC, sb);
  assert.equal(h.kind === 'uefi-http' ? h.url : h.kind, signedIso(MAC));
  // The node's own choice (its uefi-chain:ipxe tag): iPXE, and over IPv6 the build that hands back.
  const own = chooseBoot(pxe, TAGGED, sb);
  assert.equal(own.kind === 'tftp' ? own.file : own.kind, 'snponly.efi');
  const ownHttp = chooseBoot(http, TAGGED, sb);
  assert.equal(ownHttp.kind === 'uefi-http' ? ownHttp.url : ownHttp.kind, `${BASE}/boot/loader/snponly.efi`);
  // boot.uefiChain ipxe for all: snponly.efi by default.
  const ip = chooseBoot(pxe, MAC, chained('ipxe'));
  assert.equal(ip.kind === 'tftp' ? ip.file : ip.kind, 'snponly.efi');
});
