/**
 * A real client for the load-balancing tests, run inside the client namespace:
 * `node lb-client.js URL DURATION_MS CONCURRENCY`. Each request opens a new connection (so HAProxy picks
 * a server per request and drain applies at once). It prints one line per request,
 * `EPOCH_MS OK BACKEND` or `EPOCH_MS ERR REASON`, and a final `DONE` line, so the test can line
 * requests up against the moments it stopped, started or drained a backend.
 */
import { request } from 'node:http';

const [url = 'http://127.0.0.1/', durationArg = '5000', concurrencyArg = '4'] = process.argv.slice(2);
const until = Date.now() + Number(durationArg);
const out: string[] = [];
const flush = (): void => {
  if (out.length) process.stdout.write(out.splice(0).join('\n') + '\n');
};
const timer = setInterval(flush, 200);

function once(): Promise<void> {
  return new Promise((resolve) => {
    const started = Date.now();
    const req = request(url, { agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        const backend = String(res.headers['x-backend'] ?? body.trim());
        out.push(
          res.statusCode === 200 ? `${started} OK ${backend}` : `${started} ERR status-${res.statusCode}`,
        );
        resolve();
      });
      res.on('error', (err) => {
        out.push(`${started} ERR ${(err as NodeJS.ErrnoException).code ?? err.message}`);
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => {
      out.push(`${started} ERR ${(err as NodeJS.ErrnoException).code ?? err.message.replace(/\s+/g, '_')}`);
      resolve();
    });
    req.end();
  });
}

async function loop(): Promise<void> {
  while (Date.now() < until) {
    await once();
    // A short pause keeps the load modest on a shared 2-core machine (a few hundred requests/s).
    await new Promise((r) => setTimeout(r, 5));
  }
}

await Promise.all(Array.from({ length: Number(concurrencyArg) }, loop));
clearInterval(timer);
flush();
process.stdout.write('DONE\n');
