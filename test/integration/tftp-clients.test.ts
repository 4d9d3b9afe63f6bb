/**
 * Corral's TFTP server against real clients and raw packets.
 *
 * 1. Interop: tftp-hpa and atftp, run in a client namespace, fetch files from tftp-serve running in a
 *    server namespace (both joined by a bridge the test creates); every file is compared by sha256.
 * 2. Black box on loopback: a raw UDP client checks what the clients above cannot show (OACK values,
 *    TIDs, ERROR 5, duplicate requests, retries, stats).
 *
 * Needs root, iproute2, tftp (tftp-hpa) and atftp; it fails, never skips, when they are missing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasCommand, TestNet, waitFor, type Host } from '../helpers/netns.js';
import { decodePacket, encodePacket, type TftpPacket } from '../../master/tftp/codec.js';
import { startTftpServer, type TftpServer } from '../../master/tftp/index.js';
import { silentLogger } from '../../master/util/logger.js';

const SERVE = fileURLToPath(new URL('../helpers/tftp-serve.js', import.meta.url));

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function requireTools(): void {
  const missing = ['ip', 'tftp', 'atftp'].filter((c) => !hasCommand(c));
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(', ')}: apt-get install -y iproute2 tftp-hpa atftp`);
  }
  if (process.getuid?.() !== 0) throw new Error('this test creates network namespaces and must run as root');
}

interface RunResult {
  code: number | null;
  out: string;
}

/** Runs a client inside a namespace; bounded by `timeoutMs`. */
function runIn(ns: string, argv: string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out after ${timeoutMs} ms: ${argv.join(' ')}\n${out}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('tftp interop: tftp-hpa and atftp in network namespaces', () => {
  let net: TestNet | undefined;
  let server: ChildProcess | undefined;
  let srv: Host;
  let cli: Host;
  let base: string;
  let root: string;
  let outDir: string;
  let logs = '';
  const files = new Map<string, Buffer>();

  before(async () => {
    requireTools();
    base = await mkdtemp(join(tmpdir(), 'corral-tftp-it-'));
    root = join(base, 'root');
    outDir = join(base, 'out');
    await mkdir(join(root, 'boot'), { recursive: true });
    await mkdir(outDir);
    await mkdir(join(base, 'outside'));
    const sizes: Record<string, number> = {
      'empty.bin': 0,
      's511.bin': 511,
      's512.bin': 512,
      's513.bin': 513,
      's2856.bin': 2 * 1428, // a multiple of blksize 1428: ends with an empty block
      'boot/one-mb.bin': 1024 * 1024,
      // blksize 8: 65536 * 8 + 5 bytes = 65537 blocks, so block numbers wrap past 65535 to 0.
      'rollover.bin': 65536 * 8 + 5,
    };
    for (const [name, size] of Object.entries(sizes)) {
      const data = randomBytes(size);
      files.set(name, data);
      await writeFile(join(root, name), data);
    }
    await writeFile(join(base, 'outside', 'secret'), 'secret');
    await symlink(join(base, 'outside', 'secret'), join(root, 'link-out'));

    net = new TestNet('ctf');
    const subnet = randomInt(1, 250);
    srv = net.addHost('tsrv', `10.77.${subnet}.1/24`);
    cli = net.addHost('tcli', `10.77.${subnet}.2/24`);
    server = net.spawnIn(srv.ns, [
      process.execPath,
      SERVE,
      '--root',
      root,
      '--address',
      srv.address,
      '--port',
      '69',
      // Every client here runs from the one client namespace, so its address stands for 16 nodes.
      '--max-per-client',
      '16',
    ]);
    let stdout = '';
    server.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    server.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
    await waitFor('tftp-serve READY', () => stdout.includes('READY 69') || undefined, 10_000, 50);
  });

  after(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 3000);
        server?.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    await net?.destroy();
    if (base) await rm(base, { recursive: true, force: true });
  });

  let seq = 0;
  const outPath = (): string => join(outDir, `got-${seq++}`);

  async function fetchTftpHpa(remote: string): Promise<{ result: RunResult; local: string }> {
    const local = outPath();
    const result = await runIn(cli.ns, ['tftp', '-m', 'binary', srv.address, '-c', 'get', remote, local]);
    return { result, local };
  }

  async function fetchAtftp(
    remote: string,
    options: string[],
  ): Promise<{ result: RunResult; local: string }> {
    const local = outPath();
    const args = ['atftp', '--get', '-r', remote, '-l', local];
    for (const o of options) args.push('--option', o);
    const result = await runIn(cli.ns, [...args, srv.address]);
    return { result, local };
  }

  async function assertSame(name: string, local: string, out: string): Promise<void> {
    const expected = files.get(name);
    assert.ok(expected, name);
    const got = await readFile(local).catch(() => null);
    assert.ok(got, `${name}: no local file; client said: ${out}`);
    assert.equal(sha256(got), sha256(expected), `${name}: ${got.length} bytes, expected ${expected.length}`);
  }

  for (const name of ['empty.bin', 's511.bin', 's512.bin', 's513.bin', 'boot/one-mb.bin']) {
    test(`tftp-hpa (blksize 512, no options) fetches ${name} byte-identical`, async () => {
      const { result, local } = await fetchTftpHpa(name);
      await assertSame(name, local, result.out);
    });
  }

  test('tftp-hpa: a leading "/" is taken relative to the root (as PXE ROMs send it)', async () => {
    const { result, local } = await fetchTftpHpa('/boot/one-mb.bin');
    await assertSame('boot/one-mb.bin', local, result.out);
  });

  const atftpCases: Array<[string, string[], string[]]> = [
    ['no options', [], ['empty.bin', 's512.bin', 's513.bin', 'boot/one-mb.bin']],
    [
      'blksize 1428 + tsize',
      ['blksize 1428', 'tsize enable'],
      ['empty.bin', 's511.bin', 's2856.bin', 'boot/one-mb.bin'],
    ],
    [
      'blksize 1428 + tsize + windowsize 8',
      ['blksize 1428', 'tsize enable', 'windowsize 8'],
      ['empty.bin', 's2856.bin', 'boot/one-mb.bin'],
    ],
    ['timeout 2 + windowsize 4', ['timeout 2', 'windowsize 4'], ['s513.bin']],
    [
      'blksize 8 + windowsize 16 (65537 blocks: block numbers roll over)',
      ['blksize 8', 'windowsize 16'],
      ['rollover.bin'],
    ],
  ];
  for (const [label, options, names] of atftpCases) {
    for (const name of names) {
      test(`atftp (${label}) fetches ${name} byte-identical`, async () => {
        const { result, local } = await fetchAtftp(name, options);
        assert.equal(result.code, 0, result.out);
        await assertSame(name, local, result.out);
      });
    }
  }

  test('16 concurrent transfers (both clients, mixed options) all complete byte-identical', async () => {
    const runs = Array.from({ length: 16 }, (_, i) =>
      i % 4 === 0
        ? fetchTftpHpa('boot/one-mb.bin')
        : fetchAtftp('boot/one-mb.bin', i % 2 ? ['blksize 1428', 'windowsize 8'] : ['blksize 1024']),
    );
    for (const { result, local } of await Promise.all(runs))
      await assertSame('boot/one-mb.bin', local, result.out);
  });

  test('tftp-hpa: ../etc/passwd is refused with an access violation and nothing is received', async () => {
    const { result, local } = await fetchTftpHpa('../etc/passwd');
    assert.match(result.out, /Error code 2: Access violation/);
    // tftp-hpa creates the local file before asking; it must stay empty.
    assert.equal((await stat(local).catch(() => null))?.size ?? 0, 0);
  });

  test('atftp: a symlink pointing out of the root is refused', async () => {
    const { result, local } = await fetchAtftp('link-out', []);
    assert.notEqual(result.code, 0);
    assert.match(result.out, /Access violation/);
    assert.equal((await stat(local).catch(() => null))?.size ?? 0, 0);
  });

  test('a missing file is "File not found" (code 1)', async () => {
    const { result } = await fetchTftpHpa('no-such-file.efi');
    assert.match(result.out, /Error code 1: File not found/);
  });

  test('netascii is refused (octet only)', async () => {
    const local = outPath();
    const result = await runIn(cli.ns, ['tftp', srv.address, '-c', 'get', 's511.bin', local]);
    assert.match(result.out, /Error code 0: Only octet/);
  });

  test('write requests are refused by both clients and nothing is written', async () => {
    const upload = join(base, 'upload.bin');
    await writeFile(upload, randomBytes(3000));
    await chmod(upload, 0o644);
    const hpa = await runIn(cli.ns, [
      'tftp',
      '-m',
      'binary',
      srv.address,
      '-c',
      'put',
      upload,
      'uploaded-hpa.bin',
    ]);
    assert.match(hpa.out, /Error code 2/);
    const at = await runIn(cli.ns, ['atftp', '--put', '-l', upload, '-r', 'uploaded-atftp.bin', srv.address]);
    assert.notEqual(at.code, 0);
    assert.match(at.out, /Write requests are not accepted/);
    const names = await readdir(root);
    assert.ok(!names.some((n) => n.startsWith('uploaded')), `root now holds ${names.join(', ')}`);
  });

  test('a malformed datagram is logged once with the peer and dropped; the server keeps serving', async () => {
    const script =
      "const s=require('dgram').createSocket('udp4');" +
      `s.send(Buffer.from([0,1,0x61]),69,'${srv.address}',()=>s.close());`;
    const sent = await runIn(cli.ns, [process.execPath, '-e', script], 10_000);
    assert.equal(sent.code, 0, sent.out);
    const line = await waitFor(
      'malformed-packet log line',
      () => logs.split('\n').find((l) => l.includes('malformed packet dropped') && l.includes(cli.address)),
      5000,
      50,
    );
    assert.match(line, /"reason":"too-short"/);
    const { result, local } = await fetchTftpHpa('s513.bin');
    await assertSame('s513.bin', local, result.out);
  });

  test('the server logged start and end of transfers with file, bytes, ms, blksize, windowsize', () => {
    const done = logs
      .split('\n')
      .filter((l) => l.includes('"transfer complete"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const windowed = done.find((d) => d['file'] === 'boot/one-mb.bin' && d['windowsize'] === 8);
    assert.ok(windowed, 'a windowed transfer was logged');
    assert.equal(windowed['module'], 'tftp');
    assert.equal(windowed['bytes'], 1024 * 1024);
    assert.equal(windowed['blksize'], 1428);
    assert.equal(typeof windowed['ms'], 'number');
    assert.ok(logs.includes('"transfer started"'));
  });
});

/** A bare UDP endpoint that speaks TFTP packets, for black-box tests. */
class RawClient {
  readonly socket = dgram.createSocket('udp4');
  private readonly inbox: Array<{ packet: TftpPacket; port: number }> = [];
  private waiter: (() => void) | null = null;

  async open(): Promise<this> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    this.socket.on('message', (msg, rinfo) => {
      const r = decodePacket(msg);
      if (r.ok) this.inbox.push({ packet: r.packet, port: rinfo.port });
      this.waiter?.();
    });
    return this;
  }

  send(packet: TftpPacket | Buffer, port: number): void {
    this.socket.send(Buffer.isBuffer(packet) ? packet : encodePacket(packet), port, '127.0.0.1');
  }

  /** The next packet, or null after `timeoutMs`. */
  async next(timeoutMs = 2000): Promise<{ packet: TftpPacket; port: number } | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = null;
    }
    return this.inbox.shift() ?? null;
  }

  close(): void {
    this.socket.close();
  }
}

describe('tftp server black box on loopback (raw packets)', () => {
  let base: string;
  let server: TftpServer;
  const clients: RawClient[] = [];
  const data = randomBytes(5000);

  const client = async (): Promise<RawClient> => {
    const c = await new RawClient().open();
    clients.push(c);
    return c;
  };
  const rrq = (filename: string, options: Record<string, string> = {}): TftpPacket => ({
    op: 'RRQ',
    filename,
    mode: 'octet',
    options: new Map(Object.entries(options)),
  });

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'corral-tftp-lo-'));
    await writeFile(join(base, 'five-k.bin'), data);
    server = await startTftpServer({
      root: base,
      address: '127.0.0.1',
      port: 0,
      logger: silentLogger(),
      timeoutMs: 200,
      retries: 1,
    });
  });

  after(async () => {
    for (const c of clients) c.close();
    await server?.close();
    await rm(base, { recursive: true, force: true });
  });

  test('OACK: blksize clamped to 1468, real tsize, windowsize clamped to 64, unknown options dropped', async () => {
    const c = await client();
    c.send(
      rrq('five-k.bin', { blksize: '65464', tsize: '0', windowsize: '500', multicast: '' }),
      server.port,
    );
    const first = await c.next();
    assert.ok(first);
    assert.notEqual(first.port, server.port, 'the transfer answers from its own TID (RFC 1350 section 4)');
    assert.deepEqual(first.packet, {
      op: 'OACK',
      options: new Map([
        ['blksize', '1468'],
        ['tsize', '5000'],
        ['windowsize', '64'],
      ]),
    });
    c.send({ op: 'ACK', block: 0 }, first.port);
    const blocks: number[] = [];
    for (let i = 0; i < 4; i++) {
      const p = (await c.next())?.packet;
      assert.equal(p?.op, 'DATA');
      if (p?.op === 'DATA') blocks.push(p.data.length);
    }
    assert.deepEqual(blocks, [1468, 1468, 1468, 596], 'the whole file in one window');
    c.send({ op: 'ACK', block: 4 }, first.port);
    await waitFor('transfer complete', () => server.stats().active === 0 || undefined, 2000, 10);
  });

  test('a packet from a foreign TID gets ERROR 5 and the transfer carries on', async () => {
    const c = await client();
    const stranger = await client();
    c.send(rrq('five-k.bin'), server.port);
    const d1 = await c.next();
    assert.equal(d1?.packet.op, 'DATA');
    assert.ok(d1);
    stranger.send({ op: 'ACK', block: 1 }, d1.port);
    assert.deepEqual((await stranger.next())?.packet, {
      op: 'ERROR',
      code: 5,
      message: 'Unknown transfer ID',
    });
    c.send({ op: 'ACK', block: 1 }, d1.port);
    const d2 = await c.next();
    assert.ok(d2?.packet.op === 'DATA' && d2.packet.block === 2);
  });

  test('ACK or DATA sent to the listening port gets ERROR 5; an ERROR sent there gets nothing', async () => {
    const c = await client();
    c.send({ op: 'ACK', block: 1 }, server.port);
    assert.equal((await c.next())?.packet.op, 'ERROR');
    c.send({ op: 'ERROR', code: 0, message: 'x' }, server.port);
    assert.equal(await c.next(300), null);
  });

  test('WRQ gets ERROR 2; malformed requests get nothing and change nothing', async () => {
    const before = server.stats();
    const c = await client();
    c.send({ op: 'WRQ', filename: 'x.bin', mode: 'octet', options: new Map() }, server.port);
    assert.deepEqual((await c.next())?.packet, {
      op: 'ERROR',
      code: 2,
      message: 'Write requests are not accepted',
    });
    c.send(Buffer.from([0, 1, 0x61, 0]), server.port); // no mode
    c.send(Buffer.from([0, 9]), server.port);
    assert.equal(await c.next(300), null);
    assert.equal(server.stats().refused, before.refused + 1);
  });

  test('a retransmitted RRQ from the same port does not start a second transfer', async () => {
    await waitFor('earlier transfers to end', () => server.stats().active === 0 || undefined, 3000, 20);
    const c = await client();
    c.send(rrq('five-k.bin'), server.port);
    c.send(rrq('five-k.bin'), server.port);
    const first = await c.next();
    assert.ok(first?.packet.op === 'DATA' && first.packet.block === 1);
    // Only the retransmission timer may send DATA 1 again, and only after 200 ms.
    const again = await c.next(150);
    assert.equal(again, null, `unexpected ${JSON.stringify(again?.packet.op)}`);
    assert.equal(server.stats().active, 1);
  });

  test('an abandoned transfer is retried then fails and is counted', async () => {
    await waitFor('earlier transfers to end', () => server.stats().active === 0 || undefined, 3000, 20);
    const before = server.stats();
    const c = await client();
    c.send(rrq('five-k.bin'), server.port);
    assert.equal((await c.next())?.packet.op, 'DATA');
    assert.equal((await c.next(400))?.packet.op, 'DATA', 'one retransmission (retries: 1)');
    assert.deepEqual((await c.next(400))?.packet, { op: 'ERROR', code: 0, message: 'Timed out' });
    await waitFor('failure counted', () => server.stats().failed > before.failed || undefined, 1000, 10);
    assert.equal(server.stats().active, 0);
  });

  test('close() ends active transfers and resolves', async () => {
    const c = await client();
    c.send(rrq('five-k.bin'), server.port);
    assert.equal((await c.next())?.packet.op, 'DATA');
    await server.close();
    assert.deepEqual((await c.next())?.packet, { op: 'ERROR', code: 0, message: 'Server shutting down' });
    assert.equal(server.stats().active, 0);
  });
});
