import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { golden } from '../helpers/golden.js';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  BOOTP_MIN_REPLY_BYTES,
  DHCP_MAX_BYTES,
  DHCP_MIN_BYTES,
  OPT,
  PXE,
  decodePacket,
  decodePxeVendorOptions,
  decodeUserClass,
  describePacket,
  emptyOptions,
  encodePacket,
  encodePxeVendorOptions,
  encodeUserClass,
  type DhcpOptions,
  type DhcpPacket,
} from '../../master/dhcp/codec.js';

// Compiled to dist/test/unit/; the fixtures stay in the source tree.
const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/dhcp/', import.meta.url));

/** Fixture files are hex with "#" comments (see test/fixtures/dhcp/). */
function loadHex(name: string): Buffer {
  const text = readFileSync(FIXTURES + name, 'utf8')
    .replace(/#.*$/gm, '')
    .replace(/\s+/g, '');
  return Buffer.from(text, 'hex');
}

function decodeOk(buf: Buffer): DhcpPacket {
  const r = decodePacket(buf);
  if (!r.ok) assert.fail(`decode failed: ${r.error.reason}`);
  return r.packet;
}

function decodeErr(buf: Buffer): { reason: string; xid?: number; chaddr?: string } {
  const r = decodePacket(buf);
  if (r.ok) assert.fail('decode should have failed');
  return r.error;
}

/** A minimal valid DHCPDISCOVER header (236 bytes + cookie) followed by `options` verbatim. */
function rawPacket(options: number[], patch: (b: Buffer) => void = () => {}): Buffer {
  const head = Buffer.alloc(DHCP_MIN_BYTES);
  head[0] = 1;
  head[1] = 1;
  head[2] = 6;
  head.writeUInt32BE(0xdeadbeef, 4);
  Buffer.from([0x52, 0x54, 0, 1, 2, 3]).copy(head, 28);
  head.writeUInt32BE(0x63825363, 236);
  patch(head);
  return Buffer.concat([head, Buffer.from(options)]);
}

describe('dhcp codec: golden fixtures', () => {
  const names = readdirSync(FIXTURES).filter((f) => f.endsWith('.hex'));

  it('has the fixtures', () => {
    assert.deepEqual(names.sort(), [
      'dhclient-discover.hex',
      'ipxe-qemu-discover.hex',
      'ipxe-uefi-discover.hex',
      'pxe-rom-discover.hex',
      'udhcpc-discover.hex',
    ]);
  });

  for (const name of names) {
    it(`${name} decodes to the checked-in description`, () => {
      const packet = decodeOk(loadHex(name));
      const actual = JSON.stringify(describePacket(packet), null, 2) + '\n';
      golden(`dhcp/${name.replace(/\.hex$/, '.json')}`, actual);
    });

    it(`${name} survives encode → decode unchanged`, () => {
      const packet = decodeOk(loadHex(name));
      assert.deepStrictEqual(decodeOk(encodePacket(packet)), packet);
    });
  }

  it('reads a BIOS PXE ROM: option 60, 93, 94, 97', () => {
    const o = decodeOk(loadHex('pxe-rom-discover.hex')).options;
    assert.equal(o.vendorClassId, 'PXEClient:Arch:00000:UNDI:002001');
    assert.deepEqual(o.clientArch, [0]);
    assert.deepEqual(o.clientNdi, { type: 1, major: 2, minor: 1 });
    assert.equal(o.clientUuid?.length, 17);
    assert.equal(o.clientUuid?.[0], 0);
    assert.equal(o.maxMessageSize, 1464);
    assert.ok(o.paramRequestList?.includes(OPT.BOOTFILE_NAME));
  });

  it('reads iPXE: the bare user class string and option 175 kept raw', () => {
    const real = decodeOk(loadHex('ipxe-qemu-discover.hex'));
    assert.deepEqual(real.options.userClass, ['iPXE']);
    assert.deepEqual(real.options.clientArch, [0]);
    assert.equal(real.chaddr, '52:54:00:12:34:59');
    assert.ok(real.options.other.has(175));
    const uefi = decodeOk(loadHex('ipxe-uefi-discover.hex'));
    assert.deepEqual(uefi.options.userClass, ['iPXE']);
    assert.deepEqual(uefi.options.clientArch, [7]);
    assert.equal(uefi.options.clientId?.toString('hex'), '01525400123457');
  });

  it('reads dhclient and udhcpc', () => {
    const dh = decodeOk(loadHex('dhclient-discover.hex'));
    assert.equal(dh.options.hostname, 'node-7');
    assert.equal(dh.chaddr, '52:54:00:12:34:58');
    const ud = decodeOk(loadHex('udhcpc-discover.hex'));
    assert.deepEqual(ud.options.clientArch, [7]);
    assert.equal(ud.options.vendorClassId, 'PXEClient:Arch:00000:UNDI:002001');
  });
});

describe('dhcp codec: rejected packets name the reason', () => {
  const valid = loadHex('pxe-rom-discover.hex');

  it('truncated below 240 bytes (236 fixed + 4 cookie)', () => {
    const e = decodeErr(valid.subarray(0, 239));
    assert.match(e.reason, /^truncated: 239 bytes/);
    assert.equal(decodeErr(Buffer.alloc(0)).reason.startsWith('truncated'), true);
  });

  it('truncated inside an option: the claimed length is checked', () => {
    const cut = valid.subarray(0, valid.length - 20);
    const e = decodeErr(cut);
    assert.match(e.reason, /option 60 in options field at offset \d+ claims 32 bytes but only \d+ remain/);
    assert.equal(e.xid, 0x2a3b4c5d);
    assert.equal(e.chaddr, '52:54:00:12:34:56');
  });

  it('an option claiming more than the packet holds', () => {
    const e = decodeErr(rawPacket([53, 1, 1, 60, 50, 0x61, 0x62, 0x63]));
    assert.match(e.reason, /option 60 .* claims 50 bytes but only 3 remain/);
  });

  it('an option with no length byte', () => {
    assert.match(decodeErr(rawPacket([53, 1, 1, 60])).reason, /option 60 .* has no length byte/);
  });

  it('options without the end option', () => {
    assert.match(decodeErr(rawPacket([53, 1, 1])).reason, /without the end option/);
  });

  it('oversized datagrams', () => {
    const big = Buffer.concat([rawPacket([53, 1, 1, 255]), Buffer.alloc(DHCP_MAX_BYTES)]);
    assert.match(decodeErr(big).reason, /^oversized: \d+ bytes/);
  });

  it('wrong length for a typed option', () => {
    assert.match(decodeErr(rawPacket([53, 2, 1, 1, 255])).reason, /option 53: length 2, expected 1/);
    assert.match(
      decodeErr(rawPacket([53, 1, 1, 50, 3, 10, 0, 0, 255])).reason,
      /option 50: length 3, expected 4/,
    );
    assert.match(decodeErr(rawPacket([53, 1, 1, 93, 3, 0, 0, 7, 255])).reason, /option 93: length 3/);
    assert.match(
      decodeErr(rawPacket([53, 1, 1, 61, 1, 1, 255])).reason,
      /option 61: length 1, expected at least 2/,
    );
  });

  it('bad op, hlen and magic cookie', () => {
    assert.match(decodeErr(rawPacket([255], (b) => (b[0] = 3))).reason, /op 3/);
    assert.match(decodeErr(rawPacket([255], (b) => (b[2] = 17))).reason, /hlen 17/);
    assert.match(decodeErr(rawPacket([255], (b) => b.writeUInt32BE(0, 236))).reason, /magic cookie/);
  });

  it('a malformed overload option', () => {
    assert.match(decodeErr(rawPacket([53, 1, 1, 52, 1, 4, 255])).reason, /option 52/);
  });
});

describe('dhcp codec: options', () => {
  it('option overload (52): options in file, then sname (RFC 2131 §4.1, RFC 2132 §9.3)', () => {
    const buf = rawPacket([53, 1, 1, 52, 1, 3, 255], (b) => {
      // file field at 108: option 67 "boot.efi"; sname field at 44: option 66 "10.0.0.1"
      Buffer.from([67, 8, ...Buffer.from('boot.efi'), 255]).copy(b, 108);
      Buffer.from([66, 8, ...Buffer.from('10.0.0.1'), 255]).copy(b, 44);
    });
    const p = decodeOk(buf);
    assert.equal(p.options.bootfileName, 'boot.efi');
    assert.equal(p.options.tftpServerName, '10.0.0.1');
    assert.equal(p.file, '');
    assert.equal(p.sname, '');
  });

  it('an overloaded field may not let an option run past its edge', () => {
    const buf = rawPacket([53, 1, 1, 52, 1, 2, 255], (b) => {
      Buffer.from([66, 70]).copy(b, 44); // claims 70 bytes in the 64-byte sname
    });
    assert.match(decodeErr(buf).reason, /option 66 in sname field .* claims 70 bytes/);
  });

  it('concatenates split options (RFC 3396) and splits long ones when encoding', () => {
    const p = decodeOk(rawPacket([53, 1, 1, 43, 2, 1, 2, 0, 43, 1, 3, 255]));
    assert.deepEqual([...(p.options.vendorSpecific ?? [])], [1, 2, 3]);

    const long = Buffer.alloc(600, 7);
    const packet: DhcpPacket = { ...p, options: { ...emptyOptions(), messageType: 1, vendorSpecific: long } };
    const encoded = encodePacket(packet);
    let instances = 0;
    for (let i = DHCP_MIN_BYTES; i < encoded.length && encoded[i] !== 255; i += 2 + (encoded[i + 1] ?? 0)) {
      if (encoded[i] === 43) instances++;
    }
    assert.equal(instances, 3);
    assert.deepStrictEqual(decodeOk(encoded).options.vendorSpecific, long);
  });

  it('user class: RFC 3004 list or a bare string', () => {
    assert.deepEqual(decodeUserClass(Buffer.from('iPXE')), ['iPXE']);
    assert.deepEqual(decodeUserClass(Buffer.from([4, ...Buffer.from('iPXE'), 3, ...Buffer.from('foo')])), [
      'iPXE',
      'foo',
    ]);
    assert.deepEqual(decodeUserClass(encodeUserClass(['a', 'bc'])), ['a', 'bc']);
    // A zero UC_Len cannot be RFC 3004: the whole option is one bare class.
    assert.deepEqual(decodeUserClass(Buffer.from([0, 0x41])), ['']);
  });

  it('encodes message type first, pads to 300 bytes, relay agent info last', () => {
    const p = decodeOk(loadHex('dhclient-discover.hex'));
    const reply: DhcpPacket = {
      ...p,
      op: 2,
      options: {
        ...emptyOptions(),
        relayAgentInfo: Buffer.from([1, 2, 0x61, 0x62]),
        serverId: '10.0.0.1',
        messageType: 2,
      },
    };
    const b = encodePacket(reply);
    assert.equal(b.length, BOOTP_MIN_REPLY_BYTES);
    assert.deepEqual([...b.subarray(240, 246)], [53, 1, 2, 54, 4, 10]);
    assert.deepEqual([...b.subarray(249, 256)], [82, 4, 1, 2, 0x61, 0x62, 255]);
  });

  it('refuses to encode what cannot be encoded', () => {
    const p = decodeOk(loadHex('dhclient-discover.hex'));
    assert.throws(() => encodePacket({ ...p, yiaddr: '10.0.0.256' }), /yiaddr/);
    assert.throws(() => encodePacket({ ...p, file: 'x'.repeat(128) }), /file/);
    assert.throws(() => encodePacket({ ...p, chaddr: '52:54:00' }), /chaddr/);
    const other = new Map([[OPT.HOSTNAME as number, Buffer.from('x')]]);
    assert.throws(() => encodePacket({ ...p, options: { ...emptyOptions(), other } }), /typed field/);
  });

  it('PXE vendor options (option 43) both ways', () => {
    const encoded = encodePxeVendorOptions([
      [PXE.DISCOVERY_CONTROL, Buffer.from([8])],
      [PXE.BOOT_ITEM, Buffer.from([0x80, 0, 0, 0])],
    ]);
    assert.deepEqual([...encoded], [6, 1, 8, 71, 4, 0x80, 0, 0, 0, 255]);
    const decoded = decodePxeVendorOptions(encoded);
    assert.deepEqual([...(decoded?.get(PXE.BOOT_ITEM) ?? [])], [0x80, 0, 0, 0]);
    assert.equal(decodePxeVendorOptions(Buffer.from([6, 9, 8])), null);
  });
});

// ------------------------------------------------------------------------------------ properties

const byte = fc.integer({ min: 0, max: 255 });
const uint16 = fc.integer({ min: 0, max: 0xffff });
const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const ip = fc.tuple(byte, byte, byte, byte).map((o) => o.join('.'));
const text = (max: number, min = 1): fc.Arbitrary<string> =>
  fc.string({ unit: 'grapheme-ascii', minLength: min, maxLength: max });
const bytes = (min: number, max: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((a) => Buffer.from(a));
const typedCodes = new Set<number>(Object.values(OPT));
const otherCode = byte.filter((c) => !typedCodes.has(c));

const optionsArb: fc.Arbitrary<DhcpOptions> = fc
  .tuple(
    fc.record(
      {
        messageType: fc.integer({ min: 1, max: 255 }),
        subnetMask: ip,
        routers: fc.array(ip, { minLength: 1, maxLength: 3 }),
        dnsServers: fc.array(ip, { minLength: 1, maxLength: 3 }),
        hostname: text(40),
        domainName: text(40),
        vendorSpecific: bytes(1, 300),
        requestedIp: ip,
        leaseTime: uint32,
        serverId: ip,
        paramRequestList: fc.array(byte, { minLength: 1, maxLength: 30 }),
        message: text(40),
        maxMessageSize: uint16,
        renewalTime: uint32,
        rebindingTime: uint32,
        vendorClassId: text(60),
        clientId: bytes(2, 20),
        tftpServerName: text(30),
        bootfileName: text(200),
        userClass: fc.array(text(20), { minLength: 1, maxLength: 3 }),
        relayAgentInfo: bytes(1, 40),
        clientArch: fc.array(uint16, { minLength: 1, maxLength: 3 }),
        clientNdi: fc.record({ type: byte, major: byte, minor: byte }, { noNullPrototype: true }),
        clientUuid: bytes(1, 17),
      },
      { requiredKeys: [], noNullPrototype: true },
    ),
    fc.uniqueArray(fc.tuple(otherCode, bytes(0, 120)), { maxLength: 3, selector: ([code]) => code }),
  )
  .map(([typed, other]) => ({ ...typed, other: new Map(other) }));

const packetArb: fc.Arbitrary<DhcpPacket> = fc
  .record(
    {
      op: fc.constantFrom(1, 2),
      htype: byte,
      hlen: fc.integer({ min: 0, max: 16 }),
      hops: byte,
      xid: uint32,
      secs: uint16,
      flags: uint16,
      ciaddr: ip,
      yiaddr: ip,
      siaddr: ip,
      giaddr: ip,
      sname: text(63, 0),
      file: text(127, 0),
      options: optionsArb,
      chaddrBytes: bytes(16, 16),
    },
    { noNullPrototype: true },
  )
  .map(({ chaddrBytes, ...p }) => ({
    ...p,
    chaddr: [...chaddrBytes.subarray(0, p.hlen)].map((b) => b.toString(16).padStart(2, '0')).join(':'),
  }));

describe('dhcp codec: properties (fast-check)', () => {
  it('decode(encode(p)) equals p for any encodable packet', () => {
    fc.assert(
      fc.property(packetArb, (p) => {
        assert.deepStrictEqual(decodeOk(encodePacket(p)), p);
      }),
      { numRuns: 500 },
    );
  });

  it('arbitrary bytes never throw: a packet or a typed error with a reason', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (a) => {
        const r = decodePacket(Buffer.from(a));
        if (!r.ok) assert.ok(r.error.reason.length > 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('arbitrary option areas behind a valid header never throw', () => {
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 1500 }), (options) => {
        const r = decodePacket(rawPacket(options));
        if (!r.ok) assert.ok(r.error.reason.length > 0 && r.error.xid === 0xdeadbeef);
      }),
      { numRuns: 3000 },
    );
  });

  it('corrupted and truncated real packets never throw', () => {
    const seeds = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.hex'))
      .map(loadHex);
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.nat(), byte), { maxLength: 8 }),
        fc.nat(),
        (seed, flips, cut) => {
          const b = Buffer.from(seed);
          for (const [at, value] of flips) b[DHCP_MIN_BYTES + (at % (b.length - DHCP_MIN_BYTES))] = value;
          const r = decodePacket(b.subarray(0, cut % (b.length + 1)));
          if (!r.ok) assert.ok(r.error.reason.length > 0);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
