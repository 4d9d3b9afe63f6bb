/**
 * Runs Corral's DHCP server alone over a real store, for the integration tests and the benchmark that
 * need it inside a network namespace:
 *
 *   ip netns exec NS node dist/test/helpers/dhcp-serve.js --db PATH --address A --range A-B --subnet CIDR
 *     [--proxy] [--pool CIDR=A-B]... [--router IP] [--lease SECONDS] [--http URL] [--port N]
 *     [--proxy-port N] [--reserve MAC=IP]... [--log-level L]
 *
 * `--pool` adds a pool for a relayed subnet. Prints `READY` on stdout once bound; JSON logs go to stderr.
 * On SIGTERM/SIGINT prints `STATS {json}`, closes the server and the store, and exits 0; exits 2 on bad
 * arguments, 1 if the server cannot start.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { openStore } from '../../master/store/db.js';
import { LeaseStore } from '../../master/store/leases.js';
import { parseRange, startDhcpServer, type PoolSpec } from '../../master/dhcp/index.js';
import { BootFilesSchema, resolveBootFiles } from '../../master/dhcp/boot-files.js';

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

function integer(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n)) fail(`--${name} must be an integer`);
  return n;
}

function poolArg(text: string): PoolSpec {
  const [subnet, range] = text.split('=');
  if (!subnet || !range) fail(`--pool wants CIDR=A-B, not "${text}"`);
  const { start, end } = parseRange(range);
  return { subnet, rangeStart: start, rangeEnd: end };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      db: { type: 'string' },
      address: { type: 'string' },
      range: { type: 'string' },
      subnet: { type: 'string' },
      router: { type: 'string' },
      proxy: { type: 'boolean', default: false },
      pool: { type: 'string', multiple: true, default: [] },
      reserve: { type: 'string', multiple: true, default: [] },
      lease: { type: 'string', default: '3600' },
      http: { type: 'string' },
      port: { type: 'string' },
      'proxy-port': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
    },
    strict: true,
  });
  if (!values.db || !values.address)
    fail('usage: dhcp-serve --db PATH --address A --range A-B --subnet CIDR [--proxy]');
  const pools: PoolSpec[] = [];
  if (values.range && values.subnet) {
    const { start, end } = parseRange(values.range);
    pools.push({
      subnet: values.subnet,
      rangeStart: start,
      rangeEnd: end,
      ...(values.router ? { router: values.router } : {}),
    });
  } else if (!values.proxy) {
    fail('--range and --subnet are needed unless --proxy');
  }
  pools.push(...values.pool.map(poolArg));

  const logger = pino({ level: values['log-level'], base: { app: 'corral' } }, pino.destination(2));
  const store = openStore({ path: values.db, logger });
  const leases = new LeaseStore(store);
  for (const r of values.reserve) {
    const [mac, ip] = r.split('=');
    if (!mac || !ip) fail(`--reserve wants MAC=IP, not "${r}"`);
    leases.reserve({ mac, ip, hostname: null });
  }
  const server = await startDhcpServer({
    mode: values.proxy ? 'proxy' : 'server',
    serverAddress: values.address,
    port: integer(values.port, 'port') ?? 67,
    proxyPort: integer(values['proxy-port'], 'proxy-port') ?? 4011,
    pools,
    leaseSeconds: integer(values.lease, 'lease') ?? 3600,
    // The master's defaults (bootFiles unset): undionly.kpxe, ipxe.efi, and ipxe.efi over UEFI HTTP boot.
    boot: resolveBootFiles(
      BootFilesSchema.parse({}),
      { biosFile: 'undionly.kpxe', uefiFile: 'ipxe.efi' },
      values.http ?? `http://${values.address}:8080`,
      values.address,
    ),
    leases,
    logger,
  });
  process.stdout.write('READY\n');
  const stop = (): void => {
    process.stdout.write(`STATS ${JSON.stringify(server.stats())}\n`);
    server.close().then(
      () => {
        store.close();
        process.exit(0);
      },
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
