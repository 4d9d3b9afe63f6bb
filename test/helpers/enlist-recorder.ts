/**
 * A stand-in for the master's enlistment endpoint, run by tests inside a network namespace:
 *
 *   node dist/test/helpers/enlist-recorder.js --host 10.78.0.1 --port 8080 --out FILE [--reply JSON]
 *
 * Appends every POST /api/v1/enlist body to FILE as one JSON line ({"receivedAt":ms,"body":...}) and
 * answers with --reply (default: power off, node-1 discovered). --reply may be repeated: the n-th POST
 * gets the n-th reply, and the last one repeats. Prints "listening HOST:PORT" once ready.
 * Anything else gets 404. It exits on SIGTERM/SIGKILL from the test's TestNet.destroy().
 */
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const DEFAULT_REPLY = { action: 'poweroff', node: { name: 'node-1', state: 'discovered' } };
/** Bodies are a few KB; refuse anything absurd rather than buffer it. */
const MAX_BODY = 1024 * 1024;

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8080' },
    out: { type: 'string' },
    reply: { type: 'string', multiple: true },
  },
  strict: true,
});
const out = values.out;
if (!out) {
  console.error('--out FILE is required');
  process.exit(2);
}
const replies = values.reply?.length ? values.reply : [JSON.stringify(DEFAULT_REPLY)];
let posts = 0;

const server = createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/api/v1/enlist') {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":{"code":"NOT_FOUND"}}');
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_BODY) {
      res.writeHead(413);
      res.end();
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // recorded as the raw string: the test's JSON assertion will show it
    }
    appendFileSync(
      out,
      `${JSON.stringify({ receivedAt: Date.now(), contentType: req.headers['content-type'] ?? null, body })}\n`,
    );
    const reply = replies[Math.min(posts, replies.length - 1)];
    posts += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(reply);
  });
});

server.listen(Number(values.port), values.host, () => {
  console.log(`listening ${values.host}:${values.port}`);
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => server.close(() => process.exit(0)));
