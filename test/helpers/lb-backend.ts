/**
 * A small HTTP service for the load-balancing tests, run inside a backend host's namespace:
 * `node lb-backend.js ADDRESS PORT NAME`. Every answer names the backend (body and `x-backend`), so a
 * client can count where its requests went; `/healthz` is the health check path.
 */
import { createServer } from 'node:http';

const [address = '127.0.0.1', port = '8000', name = 'backend'] = process.argv.slice(2);
const server = createServer((req, res) => {
  res.setHeader('x-backend', name);
  res.setHeader('content-type', 'text/plain');
  res.end(req.url === '/healthz' ? 'ok\n' : `${name}\n`);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(port), address, () => process.stdout.write(`listening ${name} ${address}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
