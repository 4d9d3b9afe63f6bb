/**
 * One batch of malformed HTTP for the fuzz test (issue 14), run inside the attacker's namespace, over raw
 * TCP so nothing in a client library tidies the bytes: to every unauthenticated route, requests with bad
 * methods, bad or huge paths, huge headers, bad JSON, lying or malformed Content-Length, random bytes,
 * and slow (slowloris-like) requests held open for `--slow-ms`. Seeded by `--seed` (fast-check).
 *
 *   ip netns exec NS node dist/test/helpers/http-fuzz.js --host A --port P --seed S --count N
 *     [--slow N --slow-ms MS]
 *
 * Prints one JSON line: requests per route and kind, and the status codes (or "closed"/"timeout") seen.
 */
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import fc from 'fast-check';

/** Every route a node or a stranger reaches without credentials (master/http.ts and the routers it mounts). */
export const UNAUTHENTICATED_ROUTES: Array<{ method: 'GET' | 'POST'; path: string }> = [
  { method: 'GET', path: '/boot/ipxe?mac=52:54:00:14:00:99' },
  { method: 'GET', path: '/boot/node/vmlinuz' },
  { method: 'GET', path: '/boot/node/initrd.img' },
  { method: 'GET', path: '/boot/images/00' },
  { method: 'GET', path: '/boot/installer/tools.img' },
  { method: 'GET', path: '/boot/deploy/52:54:00:14:00:99/plan.env' },
  { method: 'POST', path: '/boot/deploy/52:54:00:14:00:99/progress' },
  { method: 'POST', path: '/boot/deploy/52:54:00:14:00:99/result' },
  { method: 'POST', path: '/boot/deploy/52:54:00:14:00:99/booted' },
  { method: 'GET', path: '/boot/sharedroot/52:54:00:14:00:99/identity.tar' },
  { method: 'POST', path: '/boot/sharedroot/52:54:00:14:00:99/booted' },
  { method: 'GET', path: '/api/v1/health' },
  { method: 'POST', path: '/api/v1/enlist' },
  { method: 'POST', path: '/api/v1/nodes/52:54:00:14:00:99/metrics' },
  { method: 'GET', path: '/api/v1/ha/track' },
  { method: 'GET', path: '/login' },
  { method: 'POST', path: '/login' },
];

type Case = [Kind, string, Buffer];
type Kind = 'bad-method' | 'bad-json' | 'bad-length' | 'huge-header' | 'bad-path' | 'garbage' | 'mutated';

const routeArb = fc.constantFrom(...UNAUTHENTICATED_ROUTES);
const junk = fc.string({ unit: 'binary', maxLength: 200 });

function request(method: string, path: string, headers: string[], body = ''): Buffer {
  const head = [`${method} ${path} HTTP/1.1`, 'Host: master', ...headers].join('\r\n');
  return Buffer.from(`${head}\r\n\r\n${body}`, 'latin1');
}

/** [kind, route path, bytes to send] */
export const httpCase: fc.Arbitrary<Case> = fc.oneof(
  fc
    .tuple(routeArb, fc.constantFrom('FOO', 'GET\x00', 'PRI', 'CONNECT', 'TRACE', 'G E T', '', 'POST /x'))
    .map(([r, m]): Case => ['bad-method', r.path, request(m, r.path, ['Connection: close'])]),
  fc
    .tuple(routeArb, fc.oneof(junk, fc.constantFrom('{', '{"mac":', '[1,2', '{"a":1}}', 'null', '"\\ud800"')))
    .map(([r, body]): Case => [
      'bad-json',
      r.path,
      request(
        'POST',
        r.path,
        [
          'Content-Type: application/json',
          `Content-Length: ${Buffer.byteLength(body, 'latin1')}`,
          'Connection: close',
        ],
        body,
      ),
    ]),
  fc
    .tuple(routeArb, fc.constantFrom('-1', 'abc', '99999999999999999999', '10, 20', '1e3', ' 5'), junk)
    .map(([r, len, body]): Case => [
      'bad-length',
      r.path,
      request(
        r.method,
        r.path,
        ['Content-Type: application/json', `Content-Length: ${len}`, 'Connection: close'],
        body,
      ),
    ]),
  fc
    .tuple(routeArb, fc.integer({ min: 16_000, max: 200_000 }), fc.boolean())
    .map(([r, n, many]): Case => [
      'huge-header',
      r.path,
      request(
        r.method,
        r.path,
        many
          ? Array.from({ length: n / 20 }, (_, i) => `X-${i}: ${'a'.repeat(12)}`)
          : [`X-Big: ${'b'.repeat(n)}`, 'Connection: close'],
      ),
    ]),
  fc
    .tuple(
      routeArb,
      fc.constantFrom('%', '%zz', '/../../etc/passwd', '%00', '?mac=' + 'f'.repeat(10_000), '/%c0%af'),
    )
    .map(([r, tail]): Case => [
      'bad-path',
      r.path,
      request(r.method, r.path.split('?')[0] + tail, ['Connection: close']),
    ]),
  fc
    .uint8Array({ minLength: 1, maxLength: 4096 })
    .map((b) => ['garbage', '(raw)', Buffer.from(b)] as [Kind, string, Buffer]),
  fc
    .tuple(
      routeArb,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
    )
    .map(([r, edits]) => {
      const b = request(
        r.method,
        r.path,
        ['Content-Type: application/json', 'Content-Length: 2', 'Connection: close'],
        '{}',
      );
      for (const [at, v] of edits) b[at % b.length] = v;
      return ['mutated', r.path, b] as [Kind, string, Buffer];
    }),
);

/** Sends `bytes` on a fresh connection; resolves with the status line's code, or "closed"/"timeout". */
function exchange(host: string, port: number, bytes: Buffer, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let head = '';
    const done = (v: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    socket.on('connect', () => socket.end(bytes));
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (m?.[1]) done(m[1]);
      else if (head.length > 64) done('non-http');
    });
    socket.on('error', () => done('closed'));
    socket.on('close', () => done('closed'));
  });
}

/** Opens `n` connections that send a header line every second and never finish, for `ms`. */
async function slowloris(host: string, port: number, n: number, ms: number): Promise<string[]> {
  const until = Date.now() + ms;
  const results = await Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        new Promise<string>((resolve) => {
          const socket = connect({ host, port });
          let timer: NodeJS.Timeout | undefined;
          const finish = (v: string): void => {
            if (timer) clearInterval(timer);
            socket.destroy();
            resolve(v);
          };
          socket.on('connect', () => {
            socket.write(`POST /api/v1/enlist HTTP/1.1\r\nHost: master\r\n`);
            timer = setInterval(() => {
              if (Date.now() >= until) return finish('held');
              socket.write(`X-Slow-${i}: ${Date.now()}\r\n`);
            }, 1000);
          });
          socket.on('data', (d: Buffer) =>
            finish(/^HTTP\/1\.[01] (\d{3})/.exec(d.toString('latin1'))?.[1] ?? 'data'),
          );
          socket.on('error', () => finish('closed'));
          socket.on('close', () => finish('closed'));
        }),
    ),
  );
  return results;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string' },
      port: { type: 'string', default: '80' },
      seed: { type: 'string', default: '1' },
      count: { type: 'string', default: '100' },
      slow: { type: 'string', default: '0' },
      'slow-ms': { type: 'string', default: '5000' },
    },
    strict: true,
  });
  const host = values.host ?? '';
  const port = Number(values.port);
  const cases = fc.sample(httpCase, {
    seed: Number(values.seed),
    numRuns: Math.min(Number(values.count), 5000),
  });
  const perRoute: Record<string, number> = {};
  const perKind: Record<string, number> = {};
  const outcomes: Record<string, number> = {};
  const slow =
    Number(values.slow) > 0
      ? slowloris(host, port, Math.min(Number(values.slow), 500), Number(values['slow-ms']))
      : null;
  // Eight at a time: enough to overlap, few enough to stay polite to the 2-core test machine.
  for (let i = 0; i < cases.length; i += 8) {
    await Promise.all(
      cases.slice(i, i + 8).map(async ([kind, path, bytes]) => {
        const route = path.split('?')[0] ?? path;
        perRoute[route] = (perRoute[route] ?? 0) + 1;
        perKind[kind] = (perKind[kind] ?? 0) + 1;
        const outcome = await exchange(host, port, bytes, 5000);
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      }),
    );
  }
  const slowOutcomes: Record<string, number> = {};
  for (const o of (await slow) ?? []) slowOutcomes[o] = (slowOutcomes[o] ?? 0) + 1;
  process.stdout.write(
    `${JSON.stringify({ sent: cases.length, perRoute, perKind, outcomes, slow: slowOutcomes })}\n`,
  );
}

await main();
