/**
 * One batch of hostile UDP for the fuzz test (issue 14), run inside the attacker's namespace. The
 * datagrams come from fast-check generators seeded by `--seed`, so a failing batch can be replayed:
 *
 *   ip netns exec NS node dist/test/helpers/udp-fuzz.js --to ADDR --ports 67,69 --seed S --count N
 *     [--transfer N] [--oversized N]
 *
 * Per port: N datagrams mixing random bytes, mutations of real packets (test/fixtures/dhcp: DISCOVERs
 * captured from iPXE, udhcpc and dhclient, and hand-built PXE ROM ones; TFTP requests, ACKs, DATA,
 * ERROR and OACK as the codec encodes them), truncations of real
 * packets, and `--oversized` datagrams of up to 65507 bytes (the largest UDP payload over IPv4).
 * `--transfer N`: opens a real TFTP read of undionly.kpxe and sends N datagrams to its transfer port
 * (the server's TID), half from the transfer's own client TID and half from a foreign one.
 * Source port 0 needs a raw socket: the test sends those with raw-udp.ts.
 *
 * Prints one JSON line: datagrams sent per target, and replies heard.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { encodePacket as encodeTftp } from '../../master/tftp/codec.js';

// Compiled to dist/test/helpers/; the fixtures stay in the source tree.
const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/dhcp/', import.meta.url));

/** The DHCP fixtures: three captured from real clients, two hand-built (see each file's header). */
function dhcpSeeds(): Buffer[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.hex'))
    .map((f) =>
      Buffer.from(
        readFileSync(FIXTURES + f, 'utf8')
          .replace(/#.*$/gm, '')
          .replace(/\s+/g, ''),
        'hex',
      ),
    );
}

export function tftpSeeds(): Buffer[] {
  const opts = (o: Record<string, string>): Map<string, string> => new Map(Object.entries(o));
  return [
    encodeTftp({ op: 'RRQ', filename: 'undionly.kpxe', mode: 'octet', options: opts({}) }),
    encodeTftp({
      op: 'RRQ',
      filename: 'ipxe.efi',
      mode: 'octet',
      options: opts({ blksize: '1468', tsize: '0', timeout: '255', windowsize: '8' }),
    }),
    encodeTftp({ op: 'WRQ', filename: 'x.bin', mode: 'octet', options: opts({}) }),
    encodeTftp({ op: 'ACK', block: 0 }),
    encodeTftp({ op: 'ACK', block: 1 }),
    encodeTftp({ op: 'DATA', block: 1, data: Buffer.alloc(512, 7) }),
    encodeTftp({ op: 'ERROR', code: 0, message: 'x' }),
    encodeTftp({ op: 'OACK', options: opts({ blksize: '8' }) }),
  ];
}

/** Random bytes, a mutated real packet, or a truncated one (about a third each). */
export function datagram(seeds: Buffer[]): fc.Arbitrary<Buffer> {
  const seed = fc.constantFrom(...seeds);
  const random = fc.uint8Array({ maxLength: 1500 }).map((a) => Buffer.from(a));
  const mutated = fc
    .tuple(
      seed,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 16 }),
    )
    .map(([s, edits]) => {
      const b = Buffer.from(s);
      for (const [at, v] of edits) if (b.length > 0) b[at % b.length] = v;
      return b;
    });
  const truncated = fc.tuple(seed, fc.nat()).map(([s, n]) => s.subarray(0, n % (s.length + 1)));
  const spliced = fc
    .tuple(seed, fc.nat(), fc.uint8Array({ maxLength: 64 }))
    .map(([s, at, extra]) => Buffer.concat([s.subarray(0, at % (s.length + 1)), Buffer.from(extra)]));
  return fc.oneof(random, mutated, truncated, spliced);
}

export const MAX_UDP_PAYLOAD = 65507; // 65535 - 20 (IPv4 header) - 8 (UDP header)

export function oversized(): fc.Arbitrary<Buffer> {
  return fc
    .tuple(fc.integer({ min: 1501, max: MAX_UDP_PAYLOAD }), fc.integer({ min: 0, max: 255 }))
    .map(([n, fill]) => Buffer.alloc(n, fill));
}

export function seedsFor(port: number): Buffer[] {
  return port === 69 ? tftpSeeds() : dhcpSeeds();
}

function send(socket: Socket, buf: Buffer, port: number, to: string): Promise<void> {
  return new Promise((resolve) => socket.send(buf, port, to, () => resolve()));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      to: { type: 'string' },
      ports: { type: 'string', default: '67,69' },
      seed: { type: 'string', default: '1' },
      count: { type: 'string', default: '100' },
      transfer: { type: 'string', default: '0' },
      oversized: { type: 'string', default: '0' },
    },
    strict: true,
  });
  const to = values.to ?? '';
  const seed = Number(values.seed);
  const count = Math.min(Number(values.count), 10_000);
  const sent: Record<string, number> = {};
  const replies: Record<string, number> = {};
  const socket = createSocket('udp4');
  socket.on('message', (_m, rinfo) => (replies[String(rinfo.port)] = (replies[String(rinfo.port)] ?? 0) + 1));
  await new Promise<void>((r) => socket.bind(0, r));
  socket.setBroadcast(true);
  for (const port of values.ports.split(',').map(Number)) {
    const batch = fc.sample(datagram(seedsFor(port)), { seed: seed + port, numRuns: count });
    batch.push(...fc.sample(oversized(), { seed: seed + port + 1, numRuns: Number(values.oversized) }));
    for (const d of batch) await send(socket, d, port, to);
    sent[String(port)] = batch.length;
  }

  const transferCount = Math.min(Number(values.transfer), 10_000);
  if (transferCount > 0) {
    const client = createSocket('udp4');
    const foreign = createSocket('udp4');
    await Promise.all([
      new Promise<void>((r) => client.bind(0, r)),
      new Promise<void>((r) => foreign.bind(0, r)),
    ]);
    const tid = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => resolve(null), 3000);
      client.once('message', (_m, rinfo) => {
        clearTimeout(t);
        resolve(rinfo.port);
      });
      client.send(tftpSeeds()[0]!, 69, to);
    });
    if (tid !== null) {
      const batch = fc.sample(datagram(tftpSeeds()), { seed: seed + 7, numRuns: transferCount });
      for (const [i, d] of batch.entries()) await send(i % 2 ? foreign : client, d, tid, to);
      sent['transfer'] = batch.length;
    } else sent['transfer'] = 0;
    client.close();
    foreign.close();
  }
  await new Promise((r) => setTimeout(r, 300));
  socket.close();
  process.stdout.write(`${JSON.stringify({ sent, replies })}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main();
}
