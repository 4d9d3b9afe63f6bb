import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openStore } from '../../master/store/db.js';
import { LeaseStore } from '../../master/store/leases.js';
import { silentLogger } from '../../master/util/logger.js';
import { LeaseAllocator } from '../../master/dhcp/allocator.js';
import {
  DHCPDISCOVER,
  DHCPREQUEST,
  emptyOptions,
  type DhcpOptions,
  type DhcpPacket,
} from '../../master/dhcp/codec.js';
import { validatePools } from '../../master/dhcp/pool.js';
import { decide, type Arrival, type Decision, type PolicyConfig } from '../../master/dhcp/policy.js';
import {
  BootFilesSchema,
  loaderFileNames,
  resolveBootFiles,
  uefiChainFromTags,
  type UefiChainChoice,
} from '../../master/dhcp/boot-files.js';
import { CFG_SLOT_BYTES, fillCfgSlot, findMarker, httpBootIsoUrl } from '../../master/boot/http-boot-iso.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { golden } from '../helpers/golden.js';

const SERVER = '10.0.0.1';
const BASE = 'http://10.0.0.1:8080';
const LOCAL: Arrival = { port: 'dhcp', source: { address: '0.0.0.0', port: 68 } };
const T0 = Date.parse('2026-12-06T12:00:00Z');
const LEGACY = { biosFile: 'undionly.kpxe', uefiFile: 'ipxe.efi' };

function request(type: number, mac: string, options: Partial<DhcpOptions>): DhcpPacket {
  return {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0x5eed,
    secs: 0,
    flags: 0x8000,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: mac,
    sname: '',
    file: '',
    options: { ...emptyOptions(), messageType: type, ...options },
  };
}

function run(
  mode: 'server' | 'proxy',
  bootFiles: unknown,
  req: DhcpPacket,
  chain?: UefiChainChoice,
): Decision {
  const store = openStore({ path: ':memory:', logger: silentLogger() });
  try {
    const allocator = new LeaseAllocator({ leases: new LeaseStore(store), logger: silentLogger() });
    const config: PolicyConfig = {
      mode,
      serverAddress: SERVER,
      pools:
        mode === 'server'
          ? validatePools(
              [{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.100', rangeEnd: '10.0.0.110' }],
              SERVER,
            )
          : [],
      leaseSeconds: 3600,
      boot: resolveBootFiles(BootFilesSchema.parse(bootFiles), LEGACY, BASE, SERVER, chain, (mac) =>
        httpBootIsoUrl(BASE, mac),
      ),
    };
    return decide(req, LOCAL, config, allocator, T0);
  } finally {
    store.close();
  }
}

/** EDK2's HTTP boot DHCPDISCOVER (option 60 as OVMF sends it, option 93 the HTTP architecture). */
const httpClient = (arch: number): Partial<DhcpOptions> => ({
  vendorClassId: `HTTPClient:Arch:${String(arch).padStart(5, '0')}:UNDI:003001`,
  clientArch: [arch],
  paramRequestList: [1, 3, 6, 60, 67],
});
const pxeClient = (arch: number): Partial<DhcpOptions> => ({
  vendorClassId: `PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:003016`,
  clientArch: [arch],
});

/** The boot-relevant fields of a reply, as text for the golden file. */
function describeReply(label: string, d: Decision): string {
  if (!d.reply) return `${label}: no reply (${d.note})\n`;
  const p = d.reply.packet;
  return [
    `${label}:`,
    `  type ${p.options.messageType} yiaddr ${p.yiaddr} siaddr ${p.siaddr}`,
    `  file ${JSON.stringify(p.file)}`,
    `  option 60 ${JSON.stringify(p.options.vendorClassId ?? null)}`,
    `  option 67 ${JSON.stringify(p.options.bootfileName ?? null)}`,
    `  option 43 ${p.options.vendorSpecific ? p.options.vendorSpecific.toString('hex') : 'none'}`,
    `  note ${d.note}`,
    '',
  ].join('\n');
}

describe('UEFI HTTP boot in DHCPv4 (arch 16 and 19, option 60 "HTTPClient")', () => {
  it('x64 HTTPClient (arch 16), server mode: an address, the loader URL in file and option 67, "HTTPClient" echoed', () => {
    const d = run('server', {}, request(DHCPDISCOVER, '52:54:00:00:16:01', httpClient(16)));
    const p = d.reply?.packet;
    assert.ok(p, d.note);
    assert.equal(p.yiaddr, '10.0.0.100');
    assert.equal(p.file, `${BASE}/boot/loader/ipxe.efi`);
    assert.equal(p.options.bootfileName, `${BASE}/boot/loader/ipxe.efi`);
    assert.equal(p.options.vendorClassId, 'HTTPClient');
    // No TFTP: siaddr stays 0 and no PXE vendor options.
    assert.equal(p.siaddr, '0.0.0.0');
    assert.equal(p.options.vendorSpecific, undefined);
  });

  it('x64 HTTPClient, proxy mode: no address, the URL and "HTTPClient", no PXE option 43', () => {
    const d = run('proxy', {}, request(DHCPDISCOVER, '52:54:00:00:16:02', httpClient(16)));
    const p = d.reply?.packet;
    assert.ok(p, d.note);
    assert.equal(p.yiaddr, '0.0.0.0');
    assert.equal(p.options.vendorClassId, 'HTTPClient');
    assert.equal(p.options.bootfileName, `${BASE}/boot/loader/ipxe.efi`);
    assert.equal(p.options.vendorSpecific, undefined);
    assert.equal(p.options.leaseTime, undefined);
  });

  it('the DHCPREQUEST of an HTTPClient gets the same URL in its DHCPACK', () => {
    const d = run(
      'server',
      {},
      request(DHCPREQUEST, '52:54:00:00:16:03', {
        ...httpClient(16),
        serverId: SERVER,
        requestedIp: '10.0.0.100',
      }),
    );
    assert.equal(d.reply?.packet.options.bootfileName, `${BASE}/boot/loader/ipxe.efi`);
    assert.equal(d.reply?.packet.options.vendorClassId, 'HTTPClient');
  });

  it('a configured URL is used as it is; a PXE arch under HTTPClient and an unconfigured ARM64 get no boot file', () => {
    const url = 'http://boot.example/efi/x64.efi';
    const d = run('server', { x64UefiHttp: url }, request(DHCPDISCOVER, '52:54:00:00:16:04', httpClient(16)));
    assert.equal(d.reply?.packet.options.bootfileName, url);
    const confused = run('server', {}, request(DHCPDISCOVER, '52:54:00:00:16:05', httpClient(7)));
    assert.equal(confused.reply?.packet.options.bootfileName, undefined);
    assert.equal(confused.reply?.packet.file, '');
    assert.equal(run('proxy', {}, request(DHCPDISCOVER, '52:54:00:00:16:06', httpClient(19))).reply, null);
  });

  it('the architecture is read from the vendor class when option 93 is missing', () => {
    const d = run(
      'server',
      {},
      request(DHCPDISCOVER, '52:54:00:00:16:07', { vendorClassId: 'HTTPClient:Arch:00016:UNDI:003001' }),
    );
    assert.equal(d.reply?.packet.options.bootfileName, `${BASE}/boot/loader/ipxe.efi`);
  });

  it('PXE defaults are unchanged: BIOS undionly.kpxe, x64 UEFI ipxe.efi, ARM64 nothing', () => {
    assert.equal(
      run('server', {}, request(DHCPDISCOVER, '52:54:00:00:00:01', pxeClient(0))).reply?.packet.file,
      'undionly.kpxe',
    );
    assert.equal(
      run('server', {}, request(DHCPDISCOVER, '52:54:00:00:00:02', pxeClient(7))).reply?.packet.file,
      'ipxe.efi',
    );
    assert.equal(
      run('server', {}, request(DHCPDISCOVER, '52:54:00:00:00:03', pxeClient(11))).reply?.packet.file,
      '',
    );
  });

  it('per-architecture files override the older boot keys; only plain names are served', () => {
    const files = BootFilesSchema.parse({
      x86Bios: 'bios.kpxe',
      x64Uefi: 'x64.efi',
      arm64Uefi: 'arm64.efi',
      x64UefiHttp: 'http://h/x.efi',
    });
    assert.deepEqual(loaderFileNames(files, LEGACY), ['bios.kpxe', 'x64.efi', 'arm64.efi', 'snponly.efi']);
    assert.equal(
      run('server', files, request(DHCPDISCOVER, '52:54:00:00:00:04', pxeClient(0))).reply?.packet.file,
      'bios.kpxe',
    );
    assert.throws(() => BootFilesSchema.parse({ arm64Uefi: '../etc/passwd' }));
    assert.throws(() => BootFilesSchema.parse({ x64UefiHttp: 'ftp://h/x.efi' }));
    assert.throws(() => BootFilesSchema.parse({ armUefi: 'x.efi' }), /unrecognized/i);
  });

  it('ARM64 boot path (arch 11 PXE, arch 19 HTTP) in server and proxy mode matches the golden file', () => {
    const arm = { arm64Uefi: 'ipxe-arm64.efi' };
    const text = [
      describeReply(
        'server, ARM64 UEFI PXE (arch 11)',
        run('server', arm, request(DHCPDISCOVER, '52:54:00:a6:40:11', pxeClient(11))),
      ),
      describeReply(
        'server, ARM64 UEFI HTTP (arch 19)',
        run('server', arm, request(DHCPDISCOVER, '52:54:00:a6:40:19', httpClient(19))),
      ),
      describeReply(
        'proxy, ARM64 UEFI PXE (arch 11)',
        run('proxy', arm, request(DHCPDISCOVER, '52:54:00:a6:40:11', pxeClient(11))),
      ),
      describeReply(
        'proxy, ARM64 UEFI HTTP (arch 19)',
        run('proxy', arm, request(DHCPDISCOVER, '52:54:00:a6:40:19', httpClient(19))),
      ),
    ].join('\n');
    golden('dhcp/arm64-boot.txt', text);
  });
});

describe('UEFI HTTP boot follows boot.uefiChain (issue 18): the Secure Boot chain as an ISO, or iPXE', () => {
  const SB: UefiChainChoice = { uefiChain: 'secure-boot' };
  const mac = '52:54:00:5b:16:01';
  const iso = `${BASE}/boot/http/${mac}/corral.iso`;

  it('secure-boot (the default): arch 16 gets its own ISO URL, server and proxy mode, "HTTPClient" echoed', () => {
    for (const mode of ['server', 'proxy'] as const) {
      const p = run(mode, {}, request(DHCPDISCOVER, mac, httpClient(16)), SB).reply?.packet;
      assert.ok(p, mode);
      assert.equal(p.options.bootfileName, iso, mode);
      assert.equal(p.file, iso, mode);
      assert.equal(p.options.vendorClassId, 'HTTPClient', mode);
      assert.equal(p.siaddr, '0.0.0.0', mode);
    }
  });

  it('a node tag or the global setting choose iPXE; a tag brings a node back to the signed chain', () => {
    const tags = new Map([
      ['52:54:00:5b:16:02', ['uefi-chain:ipxe']],
      ['52:54:00:5b:16:03', ['uefi-chain:secure-boot']],
    ]);
    const forNode = (m: string): ReturnType<typeof uefiChainFromTags> => uefiChainFromTags(tags.get(m) ?? []);
    const url = (m: string, chain: UefiChainChoice): string | undefined =>
      run('server', {}, request(DHCPDISCOVER, m, httpClient(16)), chain).reply?.packet.options.bootfileName;
    assert.equal(url('52:54:00:5b:16:02', { ...SB, forNode }), `${BASE}/boot/loader/ipxe.efi`);
    assert.equal(
      url('52:54:00:5b:16:04', { ...SB, forNode }),
      `${BASE}/boot/http/52:54:00:5b:16:04/corral.iso`,
    );
    const ipxe: UefiChainChoice = { uefiChain: 'ipxe', forNode };
    assert.equal(url('52:54:00:5b:16:04', ipxe), `${BASE}/boot/loader/ipxe.efi`);
    assert.equal(url('52:54:00:5b:16:03', ipxe), `${BASE}/boot/http/52:54:00:5b:16:03/corral.iso`);
  });

  it("an explicit bootFiles.x64UefiHttp is the operator's loader for every HTTP boot client", () => {
    const p = run('server', { x64UefiHttp: 'snp.efi' }, request(DHCPDISCOVER, mac, httpClient(16)), SB).reply
      ?.packet;
    assert.equal(p?.options.bootfileName, `${BASE}/boot/loader/snp.efi`);
  });

  it('PXE clients still get shim over TFTP; the x64 answers match the golden file', () => {
    const text = [
      describeReply(
        'server, x64 UEFI HTTP (arch 16), secure-boot',
        run('server', {}, request(DHCPDISCOVER, mac, httpClient(16)), SB),
      ),
      describeReply(
        'proxy, x64 UEFI HTTP (arch 16), secure-boot',
        run('proxy', {}, request(DHCPDISCOVER, mac, httpClient(16)), SB),
      ),
      describeReply(
        'server, x64 UEFI HTTP (arch 16), ipxe',
        run('server', {}, request(DHCPDISCOVER, mac, httpClient(16)), { uefiChain: 'ipxe' }),
      ),
      describeReply(
        'proxy, x64 UEFI HTTP (arch 16), ipxe',
        run('proxy', {}, request(DHCPDISCOVER, mac, httpClient(16)), { uefiChain: 'ipxe' }),
      ),
      describeReply(
        'server, x64 UEFI PXE (arch 7), secure-boot',
        run('server', {}, request(DHCPDISCOVER, mac, pxeClient(7)), SB),
      ),
    ].join('\n');
    golden('dhcp/x64-http-boot.txt', text);
  });

  it("the ISO's grub.cfg slot: a config padded with newlines to the slot size; one too big is refused", () => {
    const slot = fillCfgSlot('set timeout=0\nlinux /node/vmlinuz');
    assert.equal(slot.length, CFG_SLOT_BYTES);
    assert.equal(slot.subarray(0, 35).toString(), 'set timeout=0\nlinux /node/vmlinuz\n\n');
    assert.equal(
      slot.subarray(34).every((b) => b === 0x0a),
      true,
    );
    assert.throws(() => fillCfgSlot('#'.repeat(CFG_SLOT_BYTES)), /does not fit/);
  });

  it('the slot marker is found where it is, also across the 4 MiB read boundary, and every time it occurs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-marker-'));
    try {
      const marker = Buffer.from('# corral grub.cfg slot 0123456789abcdef\n');
      const file = join(dir, 'x.iso');
      const data = Buffer.alloc(5 * 1024 * 1024, 0);
      const straddling = 4 * 1024 * 1024 - 10;
      marker.copy(data, straddling);
      marker.copy(data, 2048);
      writeFileSync(file, data);
      assert.deepEqual(findMarker(file, marker), [2048, straddling]);
      writeFileSync(file, Buffer.alloc(100, 0));
      assert.deepEqual(findMarker(file, marker), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
