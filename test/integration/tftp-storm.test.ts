/**
 * Corral's TFTP server in a boot storm (issue 19).
 *
 * 1. Admission: with every transfer slot taken, a new request is left
 * unanswered rather than refused, so the client's own RRQ retransmission gets it served once a slot frees.
 * An ERROR ("Server busy") would end the boot: PXE ROMs and iPXE give up on the first ERROR they hear.
 *
 * Corral's TFTP server on loopback with maxTransfers 1. A raw UDP client takes the one slot and stalls for
 * 2 s after the first block (as an overloaded client does); meanwhile the real tftp-hpa client asks for a
 * file. tftp-hpa retransmits its RRQ after 5 s (its default rexmt), by which time the slot is free: it must
 * get the file intact. Before the fix it printed "Error code 0: Server busy" at once and failed.
 *
 * 2. Backoff: a client that answered and then falls silent for 9 s (its ACKs lost in a congested queue, or
 *    the machine busy) still completes: the server's retransmission interval doubles (1, 2, 4, 8, 8, 8 s:
 *    31 s in all). With a fixed 1 s it sent ERROR "Timed out" after 6 s, while iPXE still retries for 15 s.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePacket, encodePacket } from '../../master/tftp/codec.js';
import { startTftpServer, type TftpServer } from '../../master/tftp/index.js';
import { silentLogger } from '../../master/util/logger.js';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Reads `file` in lockstep (512-byte blocks), pausing `stallMs` before it acknowledges block `stallAt`. */
function slowRead(port: number, file: string, stallMs: number, stallAt = 1): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    const chunks: Buffer[] = [];
    let expected = 1;
    let stalled = false;
    const deadline = setTimeout(() => {
      socket.close();
      reject(new Error('slow reader timed out'));
    }, 20_000);
    socket.on('message', (msg, rinfo) => {
      const r = decodePacket(msg);
      if (!r.ok) return;
      const p = r.packet;
      if (p.op === 'ERROR') {
        clearTimeout(deadline);
        socket.close();
        return reject(new Error(`slow reader got ERROR ${p.message}`));
      }
      if (p.op !== 'DATA' || p.block !== expected) return;
      const ack = (): void => {
        chunks.push(p.data);
        expected++;
        socket.send(encodePacket({ op: 'ACK', block: p.block }), rinfo.port, rinfo.address, () => {
          if (p.data.length < 512) {
            clearTimeout(deadline);
            socket.close();
            resolve(Buffer.concat(chunks));
          }
        });
      };
      if (p.block !== stallAt) ack();
      else if (!stalled) {
        // Retransmissions of this block that arrive during the stall are dropped (expected does not move).
        stalled = true;
        setTimeout(ack, stallMs);
      }
    });
    socket.bind(0, '127.0.0.1', () => {
      socket.send(
        encodePacket({ op: 'RRQ', filename: file, mode: 'octet', options: new Map() }),
        port,
        '127.0.0.1',
      );
    });
  });
}

describe('TFTP admission: a full server defers a request instead of refusing it', { timeout: 60_000 }, () => {
  before(() => failIfUnmet(unmetNeeds({ commands: ['tftp'] })));
  let dir: string;
  let server: TftpServer | undefined;
  const big = randomBytes(20 * 512 + 100);
  const small = randomBytes(3000);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'corral-tftp-storm-'));
    await writeFile(join(dir, 'big.bin'), big);
    await writeFile(join(dir, 'small.bin'), small);
    server = await startTftpServer({
      root: dir,
      address: '127.0.0.1',
      port: 0,
      logger: silentLogger(),
      maxTransfers: 1,
    });
  });

  after(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('tftp-hpa, asking while the only slot is held, gets its file after its own retransmission', async () => {
    const port = server?.port ?? 0;
    const holder = slowRead(port, 'big.bin', 2000);
    // Let the holder's request take the slot first.
    await new Promise((r) => setTimeout(r, 300));
    const out = join(dir, 'got.bin');
    const started = performance.now();
    const hpa = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const child = spawn('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', 'small.bin', out]);
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      const kill = setTimeout(() => child.kill('SIGKILL'), 40_000);
      child.on('exit', (code) => {
        clearTimeout(kill);
        resolve({ code, text });
      });
    });
    const ms = performance.now() - started;
    assert.equal(sha256(await holder), sha256(big), 'the holder got its file');
    assert.doesNotMatch(hpa.text, /Server busy/, `tftp-hpa: ${hpa.text}`);
    assert.equal(hpa.code, 0, `tftp-hpa: ${hpa.text}`);
    assert.equal(sha256(await readFile(out)), sha256(small));
    // It waited for the slot (at least the holder's stall), through a retransmitted RRQ.
    assert.ok(ms > 1500, `tftp-hpa finished after ${ms.toFixed(0)} ms: it cannot have waited for the slot`);
    const stats = server?.stats();
    assert.ok((stats?.deferred ?? 0) >= 1, `deferred: ${JSON.stringify(stats)}`);
    assert.equal(stats?.refused, 0);
  });
});

describe(
  'TFTP retransmission backoff: a client silent for 9 s mid-transfer still gets its file',
  { timeout: 60_000 },
  () => {
    let dir: string;
    let server: TftpServer | undefined;
    const data = randomBytes(10 * 512 + 7);

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'corral-tftp-backoff-'));
      await writeFile(join(dir, 'f.bin'), data);
      server = await startTftpServer({ root: dir, address: '127.0.0.1', port: 0, logger: silentLogger() });
    });

    after(async () => {
      await server?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('the server keeps retransmitting past 6 s of silence (default timeout 1 s, 5 retries)', async () => {
      const got = await slowRead(server?.port ?? 0, 'f.bin', 9000, 2);
      assert.equal(sha256(got), sha256(data));
      assert.equal(server?.stats().failed, 0);
    });
  },
);
