import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodePacket,
  encodeDataHeader,
  encodePacket,
  MAX_BLKSIZE,
  type DecodeFailure,
  type TftpPacket,
} from '../../master/tftp/codec.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

function decoded(buf: Buffer): TftpPacket {
  const r = decodePacket(buf);
  assert.ok(r.ok, `expected a packet, got ${r.ok ? '' : `${r.reason} (${r.detail})`}`);
  return r.packet;
}

function failure(buf: Buffer): DecodeFailure {
  const r = decodePacket(buf);
  assert.ok(!r.ok, `expected a failure, got ${JSON.stringify(r.ok && r.packet.op)}`);
  return r.reason;
}

describe('tftp codec: captures from real clients', () => {
  test('tftp-hpa 5.2 RRQ (`tftp -m binary HOST -c get undionly.kpxe`)', () => {
    const p = decoded(hex('0001 756e64696f6e6c792e6b707865 00 6f63746574 00'));
    assert.deepEqual(p, { op: 'RRQ', filename: 'undionly.kpxe', mode: 'octet', options: new Map() });
  });

  test('atftp 0.8.0 RRQ with tsize, blksize and windowsize (tsize sent as the word "enable")', () => {
    const p = decoded(
      hex(
        '0001 2f697078652e656669 00 6f63746574 00 7473697a65 00 656e61626c65 00 626c6b73697a65 00 31343238 00' +
          '77696e646f7773697a65 00 38 00',
      ),
    );
    assert.deepEqual(p, {
      op: 'RRQ',
      filename: '/ipxe.efi',
      mode: 'octet',
      options: new Map([
        ['tsize', 'enable'],
        ['blksize', '1428'],
        ['windowsize', '8'],
      ]),
    });
  });

  test('tftp-hpa 5.2 WRQ (`put one.bin up.bin`)', () => {
    assert.deepEqual(decoded(hex('0002 75702e62696e 00 6f63746574 00')), {
      op: 'WRQ',
      filename: 'up.bin',
      mode: 'octet',
      options: new Map(),
    });
  });
});

describe('tftp codec: hand-built fixtures', () => {
  test('option names and modes are case-insensitive (RFC 1350 section 5, RFC 2347 "Packet Formats")', () => {
    const p = decoded(bytes('\x00\x01pxelinux.0\x00OCTET\x00BlkSize\x001468\x00TSIZE\x000\x00'));
    assert.equal(p.op, 'RRQ');
    if (p.op !== 'RRQ') return;
    assert.equal(p.mode, 'octet');
    assert.deepEqual(
      [...p.options],
      [
        ['blksize', '1468'],
        ['tsize', '0'],
      ],
    );
  });

  test('NUL padding after the last option is ignored', () => {
    const p = decoded(bytes('\x00\x01a\x00octet\x00tsize\x000\x00\x00\x00\x00'));
    assert.equal(p.op === 'RRQ' && p.options.get('tsize'), '0');
  });

  test('UTF-8 file names survive; the filename keeps its case', () => {
    const p = decoded(Buffer.concat([hex('0001'), Buffer.from('Bööt/IPXE.efi\0netascii\0', 'utf8')]));
    assert.equal(p.op === 'RRQ' && p.filename, 'Bööt/IPXE.efi');
  });

  test('DATA, including the empty final block', () => {
    assert.deepEqual(decoded(hex('0003 0001 deadbeef')), { op: 'DATA', block: 1, data: hex('deadbeef') });
    assert.deepEqual(decoded(hex('0003 ffff')), { op: 'DATA', block: 65535, data: Buffer.alloc(0) });
  });

  test('ACK, ERROR and OACK', () => {
    assert.deepEqual(decoded(hex('0004 0000')), { op: 'ACK', block: 0 });
    assert.deepEqual(decoded(bytes('\x00\x05\x00\x01File not found\x00')), {
      op: 'ERROR',
      code: 1,
      message: 'File not found',
    });
    assert.deepEqual(decoded(bytes('\x00\x06blksize\x001468\x00tsize\x00100\x00')), {
      op: 'OACK',
      options: new Map([
        ['blksize', '1468'],
        ['tsize', '100'],
      ]),
    });
  });

  test('an ERROR without its final NUL is still an ERROR (it ends the transfer either way)', () => {
    assert.deepEqual(decoded(bytes('\x00\x05\x00\x08refused')), { op: 'ERROR', code: 8, message: 'refused' });
  });

  const malformed: Array<[string, Buffer, DecodeFailure]> = [
    ['empty datagram', Buffer.alloc(0), 'too-short'],
    ['one byte', hex('00'), 'too-short'],
    ['unknown opcode 0', hex('0000 0000'), 'unknown-opcode'],
    ['unknown opcode 7', hex('0007 0000'), 'unknown-opcode'],
    ['RRQ opcode only', hex('0001'), 'too-short'],
    ['RRQ below the 6-byte minimum', bytes('\x00\x01a\x00o\x00'.slice(0, 5)), 'too-short'],
    ['RRQ without NUL after the file name', bytes('\x00\x01pxelinux.0'), 'unterminated-string'],
    ['RRQ without NUL after the mode', bytes('\x00\x01pxelinux.0\x00octet'), 'unterminated-string'],
    ['RRQ with an empty file name', bytes('\x00\x01\x00octet\x00'), 'empty-filename'],
    ['RRQ with an unknown mode', bytes('\x00\x01a\x00binary\x00'), 'unknown-mode'],
    [
      'NUL trick: "a\\0../../etc/passwd\\0octet"',
      bytes('\x00\x01a\x00../../etc/passwd\x00octet\x00'),
      'unknown-mode',
    ],
    [
      'RRQ with invalid UTF-8 in the name',
      Buffer.concat([hex('0001 ff fe 00'), bytes('octet\x00')]),
      'invalid-utf8',
    ],
    ['option name without value', bytes('\x00\x01a\x00octet\x00blksize\x00'), 'option-without-value'],
    ['option value without NUL', bytes('\x00\x01a\x00octet\x00blksize\x001468'), 'option-without-value'],
    ['option name without NUL', bytes('\x00\x01a\x00octet\x00blksize'), 'unterminated-string'],
    ['empty option name', bytes('\x00\x01a\x00octet\x00\x001468\x00'), 'empty-option-name'],
    [
      'duplicate option (any case)',
      bytes('\x00\x01a\x00octet\x00blksize\x008\x00BLKSIZE\x009\x00'),
      'duplicate-option',
    ],
    ['RRQ over 512 bytes (RFC 2347)', bytes(`\x00\x01${'a'.repeat(520)}\x00octet\x00`), 'too-long'],
    ['DATA without block number', hex('0003 00'), 'too-short'],
    ['DATA larger than blksize 65464 allows', Buffer.alloc(4 + MAX_BLKSIZE + 1, 0).fill(3, 1, 2), 'too-long'],
    ['ACK of 3 bytes', hex('0004 00'), 'too-short'],
    ['ACK of 5 bytes', hex('0004 0001 00'), 'trailing-bytes'],
    ['ERROR without code', hex('0005 00'), 'too-short'],
    ['ERROR with bytes after the message', bytes('\x00\x05\x00\x00x\x00y'), 'trailing-bytes'],
    ['OACK without options', hex('0006'), 'too-short'],
    ['OACK of NUL padding only', hex('0006 00000000'), 'too-short'],
  ];
  for (const [name, buf, reason] of malformed) {
    test(`malformed: ${name} -> ${reason}`, () => assert.equal(failure(buf), reason));
  }

  test('encodeDataHeader writes opcode 3 and the wire block number', () => {
    assert.deepEqual(encodeDataHeader(0x1234), hex('0003 1234'));
    assert.throws(() => encodeDataHeader(65536), RangeError);
  });

  test('encoding refuses what cannot be framed', () => {
    assert.throws(() => encodePacket({ op: 'ERROR', code: 0, message: 'a\0b' }), RangeError);
    assert.throws(() => encodePacket({ op: 'ACK', block: -1 }), RangeError);
    assert.throws(() => encodePacket({ op: 'OACK', options: new Map() }), RangeError);
    assert.throws(
      () => encodePacket({ op: 'RRQ', filename: '', mode: 'octet', options: new Map() }),
      RangeError,
    );
  });
});

describe('tftp codec: properties', () => {
  test('decodePacket never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), (arr) => {
        const r = decodePacket(Buffer.from(arr));
        assert.equal(typeof r.ok, 'boolean');
      }),
      { numRuns: 5000 },
    );
  });

  test('decodePacket never throws on near-valid packets (real opcode, NUL-heavy bodies)', () => {
    const body = fc.array(fc.constantFrom(0, 0x61, 0x30, 0x6f), { maxLength: 40 });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 7 }), body, (op, rest) => {
        const r = decodePacket(Buffer.from([0, op, ...rest]));
        assert.equal(typeof r.ok, 'boolean');
      }),
      { numRuns: 5000 },
    );
  });

  const word = fc
    .string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 })
    .filter((s) => !s.includes('\0'));
  const optionName = word.map((s) => s.toLowerCase());
  const options = fc.uniqueArray(fc.tuple(optionName, fc.string({ unit: 'grapheme-ascii', maxLength: 8 })), {
    maxLength: 5,
    selector: ([name]) => name,
  });
  const filename = fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 60 })
    .filter((s) => !s.includes('\0') && Buffer.byteLength(s) < 200);
  const packet: fc.Arbitrary<TftpPacket> = fc.oneof(
    fc.record({
      op: fc.constantFrom('RRQ' as const, 'WRQ' as const),
      filename,
      mode: fc.constantFrom('netascii' as const, 'octet' as const, 'mail' as const),
      options: options.map((o) => new Map(o.filter(([, v]) => !v.includes('\0')))),
    }),
    fc.record({
      op: fc.constant('DATA' as const),
      block: fc.integer({ min: 0, max: 0xffff }),
      data: fc.uint8Array({ maxLength: 1468 }).map((a) => Buffer.from(a)),
    }),
    fc.record({ op: fc.constant('ACK' as const), block: fc.integer({ min: 0, max: 0xffff }) }),
    fc.record({
      op: fc.constant('ERROR' as const),
      code: fc.integer({ min: 0, max: 8 }),
      message: fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).filter((s) => !s.includes('\0')),
    }),
    fc
      .record({
        op: fc.constant('OACK' as const),
        options: options
          .filter((o) => o.length > 0)
          .map((o) => new Map(o.filter(([, v]) => !v.includes('\0')))),
      })
      .filter((p) => p.options.size > 0),
  );

  test('decode(encode(p)) gives p back', () => {
    fc.assert(
      fc.property(packet, (p) => {
        const r = decodePacket(encodePacket(p));
        assert.ok(r.ok, r.ok ? '' : `${r.reason}: ${r.detail}`);
        assert.deepEqual(r.packet, { ...p }); // fc.record objects have a null prototype
      }),
      { numRuns: 3000 },
    );
  });

  test('encode(decode(b)) gives b back for every packet that decodes (RRQ/WRQ/OACK modes in lower case)', () => {
    fc.assert(
      fc.property(packet, (p) => {
        const wire = encodePacket(p);
        const r = decodePacket(wire);
        assert.ok(r.ok);
        assert.deepEqual(encodePacket(r.packet), wire);
      }),
      { numRuns: 1000 },
    );
  });
});
