/**
 * master/boot/memory-files.ts against `send` (send-file.ts), on loopback: the same file behind two routes
 * answers every request the same (status, the headers a client acts on, the bytes), whether it comes from
 * memory or from disk; curl (a real client) fetches it whole and resumes it; a file replaced on disk is
 * read again; a storm of downloads reads the file from disk once.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { MemoryFiles } from '../../master/boot/memory-files.js';
import { sendFile } from '../../master/boot/send-file.js';
import { silentLogger } from '../../master/util/logger.js';
import { requirePeers } from '../helpers/peers.js';

const HEADERS = ['content-length', 'content-range', 'accept-ranges', 'etag', 'last-modified', 'content-type'];

describe('node environment files from memory (boot storm, issue 19)', () => {
  let dir: string;
  let file: string;
  let server: Server;
  let base: string;
  const memory = new MemoryFiles(silentLogger());

  before(async () => {
    requirePeers('curl');
    dir = mkdtempSync(join(tmpdir(), 'corral-memfiles-'));
    file = join(dir, 'vmlinuz');
    writeFileSync(file, randomBytes(3 * 1024 * 1024 + 17));
    const app = express();
    app.get('/disk', (_req, res) => sendFile(res, file, silentLogger()));
    app.get('/memory', (req, res) => memory.serve(req, res, file));
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const addr = server.address();
    assert.ok(addr && typeof addr === 'object');
    base = `http://127.0.0.1:${addr.port}`;
  });

  after(() => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ask = async (
    path: string,
    method: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; headers: Record<string, string | null>; body: Buffer }> =>
    // node:http, not fetch: fetch adds `Cache-Control: no-cache` to a conditional request (Fetch
    // standard, HTTP-network-or-cache fetch), which rules out a 304.
    new Promise((resolve, reject) => {
      const req = request(`${base}${path}`, { method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: Object.fromEntries(
              HEADERS.map((h) => [h, (res.headers[h] as string | undefined) ?? null]),
            ),
            body: Buffer.concat(chunks),
          }),
        );
      });
      req.on('error', reject);
      req.end();
    });

  it('answers as send does: whole, ranges, If-Range, conditional, HEAD, past the end, malformed', async () => {
    const size = statSync(file).size;
    const whole = await ask('/disk', 'GET', {});
    const etag = whole.headers['etag'] ?? '';
    const lastModified = whole.headers['last-modified'] ?? '';
    assert.match(etag, /^W\/"/);
    const cases: [string, Record<string, string>][] = [
      ['GET', {}],
      ['HEAD', {}],
      ['GET', { range: 'bytes=100-199' }],
      ['GET', { range: 'bytes=-500' }],
      ['GET', { range: `bytes=${size - 10}-` }],
      ['GET', { range: `bytes=${size}-` }],
      ['GET', { range: 'bytes=0-9,20-29' }],
      ['GET', { range: 'pages=1-2' }],
      ['GET', { range: 'bytes=100-199', 'if-range': etag }],
      ['GET', { range: 'bytes=100-199', 'if-range': 'W/"other"' }],
      ['GET', { range: 'bytes=100-199', 'if-range': lastModified }],
      ['GET', { range: 'bytes=100-199', 'if-range': 'Thu, 01 Jan 1970 00:00:00 GMT' }],
      ['GET', { 'if-none-match': etag }],
      ['GET', { 'if-none-match': 'W/"other"' }],
      ['GET', { 'if-modified-since': lastModified }],
      ['HEAD', { range: 'bytes=0-0' }],
    ];
    for (const [method, headers] of cases) {
      const label = `${method} ${JSON.stringify(headers)}`;
      const d = await ask('/disk', method, headers);
      const m = await ask('/memory', method, headers);
      assert.equal(m.status, d.status, label);
      assert.deepEqual(m.headers, d.headers, label);
      assert.ok(m.body.equals(d.body), `${label}: same bytes`);
    }
    // The cases covered what they claim (send's own answers): a range, a 304, a 416.
    assert.equal((await ask('/memory', 'GET', { range: 'bytes=100-199' })).status, 206);
    assert.equal((await ask('/memory', 'GET', { 'if-none-match': etag })).status, 304);
    assert.equal((await ask('/memory', 'GET', { range: `bytes=${size}-` })).status, 416);
  });

  it('curl fetches it whole and resumes a cut download (-C -): byte-identical', async () => {
    const out = join(dir, 'fetched');
    writeFileSync(out, readFileSync(file).subarray(0, 1_000_000));
    const code = await new Promise<number>((resolve) =>
      execFile('curl', ['-sS', '--fail', '-C', '-', '-o', out, `${base}/memory`], (err) =>
        resolve(err ? Number((err as { code?: number }).code ?? 1) : 0),
      ),
    );
    assert.equal(code, 0);
    assert.ok(readFileSync(out).equals(readFileSync(file)));
  });

  it('reads the file from disk once for 20 concurrent downloads, and again once it is replaced', async () => {
    const before = memory.loads;
    const bodies = await Promise.all(
      Array.from({ length: 20 }, async () =>
        Buffer.from(await (await fetch(`${base}/memory`)).arrayBuffer()),
      ),
    );
    const want = readFileSync(file);
    assert.ok(bodies.every((b) => b.equals(want)));
    assert.equal(memory.loads - before, 0, 'already held since the first test');
    // A new build renames a new file in (node-image-builder.ts): new inode, new bytes.
    const next = join(dir, 'vmlinuz.new');
    writeFileSync(next, randomBytes(1024));
    utimesSync(next, new Date(), new Date(Date.now() + 5000));
    renameSync(next, file);
    const got = Buffer.from(await (await fetch(`${base}/memory`)).arrayBuffer());
    assert.ok(got.equals(readFileSync(file)), 'the replaced file is served');
    assert.equal(memory.loads - before, 1);
  });
});
