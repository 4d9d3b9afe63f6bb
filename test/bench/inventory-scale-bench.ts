/**
 * Inventory at scale (issue 19): a master with 10 000 nodes, 1 000 000 events and a day of metrics.
 *
 *   node dist/test/bench/inventory-scale-bench.js [--nodes 10000] [--events 1000000] [--metric-nodes 100] [--runs 40] [--api-load 8]
 *
 * Seeds a temporary data directory through the store's own modules (nodes and events journaled as the
 * master writes them; inventories shaped like a real agent's: CPU, memory, 1-4 disks with serials, 2-4
 * NICs, DMI), then starts the real `corral master` on loopback on it and measures, over --runs requests
 * each (p50 and p95, milliseconds):
 * - GET /api/v1/nodes pages, filters and searches, beside the unpaginated list (the reference: what every
 *   client got before paging) and a plain SQLite query of the same rows in this process (the floor);
 * - the console's node list (first page, deep page, search, sort by memory), dashboard and events page,
 *   alone and again while --api-load clients list and search nodes through the API;
 * - GET /metrics (the Prometheus exposition at this size);
 * - the database's size and the master's start-up time beside a start on an empty data directory.
 * Prints; asserts nothing. --keep leaves the data directory in place (its path is printed).
 */
import { sqliteOf } from '../../master/store/db.js';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { openRepos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';
import type { NodeState } from '../../master/store/nodes.js';
import { startMasterProcess, type MasterProcess } from '../helpers/master-process.js';
import { Browser } from '../helpers/browser.js';
import { nodeRow } from '../../web-ui/node-view.js';
import { startApiLoad } from '../helpers/storm-api-load.js';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Redactor } from '../../master/util/redact.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '10000' },
    events: { type: 'string', default: '1000000' },
    'metric-nodes': { type: 'string', default: '100' },
    runs: { type: 'string', default: '40' },
    /** Keep the seeded data directory (its path is printed) for a look with sqlite3 or a profiler. */
    keep: { type: 'boolean', default: false },
    /** Reuse a data directory a --keep run seeded (seeding 10 000 nodes and 1 000 000 events takes minutes). */
    seeded: { type: 'string' },
    /** Concurrent API clients listing and searching nodes while the console pages are measured again. */
    'api-load': { type: 'string', default: '8' },
  },
  strict: true,
});
const NODES = Number(values.nodes);
const EVENTS = Number(values.events);
const METRIC_NODES = Number(values['metric-nodes']);
const RUNS = Number(values.runs);
const PASSWORD = 'inventory-scale-bench-pw';
const DAY = 86_400;

function mac(i: number): string {
  const hex = i.toString(16).padStart(6, '0');
  return `52:54:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
}

/** Deterministic pseudo-random numbers (a bench must seed the same data every run). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const CPUS = [
  'Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz',
  'AMD EPYC 7543 32-Core Processor',
  'Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz',
];
const PRODUCTS = [
  ['Dell Inc.', 'PowerEdge R650'],
  ['HPE', 'ProLiant DL360 Gen10 Plus'],
  ['Supermicro', 'SYS-1029U-TRT'],
] as const;
const ROLES = ['web', 'db', 'cache', 'compute', null] as const;

/** An inventory as the discovery agent reports it (master/nodes/inventory.ts's schema). */
function inventory(i: number, r: () => number): Record<string, unknown> {
  const [vendor, product] = PRODUCTS[i % PRODUCTS.length]!;
  const disks = 1 + Math.floor(r() * 4);
  const nics = 2 + Math.floor(r() * 3);
  return {
    cpu: { model: CPUS[i % CPUS.length], count: [16, 32, 64, 128][Math.floor(r() * 4)] },
    memoryBytes: [64, 128, 256, 512][Math.floor(r() * 4)]! * 2 ** 30,
    firmware: r() < 0.7 ? 'uefi' : 'bios',
    disks: Array.from({ length: disks }, (_, d) => ({
      name: d === 0 ? 'nvme0n1' : `sd${String.fromCharCode(97 + d)}`,
      sizeBytes: [480, 960, 1920, 3840][Math.floor(r() * 4)]! * 1e9,
      serial: `S${(i * 7 + d).toString(36).toUpperCase().padStart(8, '0')}`,
      model: d === 0 ? 'SAMSUNG MZQL2960HCJR-00A07' : 'ST4000NM000A-2HZ100',
      rotational: d !== 0,
    })),
    nics: Array.from({ length: nics }, (_, n) => ({
      name: `eno${n + 1}`,
      mac: n === 0 ? mac(i) : `3c:ec:ef:${mac(i * 4 + n).slice(9)}`,
      link: n < 2 ? 'up' : 'down',
      speedMbps: n < 2 ? 25000 : null,
    })),
    dmi: { vendor, product, serial: `SRV${String(i).padStart(7, '0')}` },
  };
}

function stateOf(r: () => number): NodeState {
  const x = r();
  return x < 0.7
    ? 'deployed'
    : x < 0.8
      ? 'ready'
      : x < 0.85
        ? 'diskless'
        : x < 0.9
          ? 'discovered'
          : x < 0.95
            ? 'deploying'
            : 'failed';
}

function seed(dataDir: string): { seedSeconds: number } {
  const t0 = performance.now();
  const repos = openRepos({ path: join(dataDir, 'corral.db'), logger: silentLogger() });
  const r = rng(19);
  const BATCH = 1000;
  for (let start = 0; start < NODES; start += BATCH) {
    repos.store.write((journal) => {
      for (let i = start + 1; i <= Math.min(NODES, start + BATCH); i++) {
        const m = mac(i);
        repos.nodes.insertIn(journal, {
          mac: m,
          name: `node-${i}`,
          seqNo: i,
          state: 'discovered',
          ip: `10.${Math.floor(i / 65536) % 256}.${Math.floor(i / 256) % 256}.${i % 256}`,
          firmware: 'uefi',
          inventory: inventory(i, r),
        });
        const role = ROLES[i % ROLES.length] ?? null;
        repos.nodes.patchIn(journal, m, {
          role,
          lastSeenAt: new Date(Date.now() - r() * DAY * 1000).toISOString(),
        });
        // State written directly (the lifecycle's guards are not what is measured here).
        repos.nodes.setStateIn(journal, m, stateOf(r), null);
      }
    });
  }
  const kinds = ['node.enlisted', 'node.state', 'deploy.progress', 'power.on', 'lb.server.up'];
  const EV_BATCH = 20_000;
  for (let start = 0; start < EVENTS; start += EV_BATCH) {
    repos.store.write((journal) => {
      for (let e = start; e < Math.min(EVENTS, start + EV_BATCH); e++) {
        const n = 1 + Math.floor(r() * NODES);
        repos.events.appendIn(journal, {
          nodeMac: mac(n),
          kind: kinds[e % kinds.length]!,
          message: `node-${n}: ${kinds[e % kinds.length]} (bench event ${e})`,
          actor: e % 3 === 0 ? 'admin' : null,
        });
      }
    });
  }
  // A day of samples at the SSH collector's default pace (30 s) for METRIC_NODES nodes.
  const now = Math.floor(Date.now() / 1000);
  for (let n = 1; n <= METRIC_NODES; n++) {
    sqliteOf(repos.store).db.transaction(() => {
      for (let at = now - DAY; at < now; at += 30) {
        repos.metrics.record(mac(n), {
          at,
          cpu: r() * 100,
          memUsed: r() * 2 ** 36,
          memTotal: 2 ** 37,
          diskUsed: r() * 1e12,
          diskTotal: 2e12,
          netRx: r() * 1e8,
          netTx: r() * 1e8,
          load1: r() * 16,
          procs: null,
        });
      }
    })();
  }
  repos.store.close();
  return { seedSeconds: (performance.now() - t0) / 1000 };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? NaN;
}

interface Row {
  what: string;
  p50: number;
  p95: number;
  bytes: number;
  note: string;
}
const rows: Row[] = [];

async function measure(what: string, fn: () => Promise<number>, note = '', runs = RUNS): Promise<void> {
  await fn(); // warm-up (statement cache, templates)
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    bytes = await fn();
    times.push(performance.now() - t);
  }
  rows.push({ what, p50: pct(times, 0.5), p95: pct(times, 0.95), bytes, note });
}

function measureSync(what: string, fn: () => number, note: string): void {
  fn();
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    bytes = fn();
    times.push(performance.now() - t);
  }
  rows.push({ what, p50: pct(times, 0.5), p95: pct(times, 0.95), bytes, note });
}

function masterConfig(dir: string, dataDir: string): string {
  const cfg = join(dir, `corral-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(
    cfg,
    JSON.stringify({
      dataDir,
      address: '127.0.0.1',
      http: { port: 0, bind: '127.0.0.1' },
      tftp: { enabled: false },
      lb: { enabled: false },
      console: { https: false },
      nodeImage: { autoBuild: false },
      monitor: { enabled: true, nodeSshSeconds: 0 },
    }),
  );
  return cfg;
}

async function timedStart(dir: string, dataDir: string): Promise<{ master: MasterProcess; ms: number }> {
  const t = performance.now();
  const master = await startMasterProcess({
    args: ['--config', masterConfig(dir, dataDir)],
    env: { CORRAL_ADMIN_PASSWORD: PASSWORD, CORRAL_LOG_LEVEL: 'warn' },
    timeoutMs: 120_000,
  });
  return { master, ms: performance.now() - t };
}

function rssMiB(pid: number | undefined): number {
  if (!pid) return NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const dir = values.seeded ?? mkdtempSync(join(tmpdir(), 'corral-inv-scale-'));
  let master: MasterProcess | undefined;
  try {
    const dataDir = join(dir, 'data');
    if (!values.seeded)
      console.log(
        `seeding ${NODES} nodes, ${EVENTS} events, a day of 30 s samples for ${METRIC_NODES} nodes...`,
      );
    const { seedSeconds } = values.seeded ? { seedSeconds: 0 } : seed(dataDir);
    const db = join(dataDir, 'corral.db');
    const size = (f: string): number => (existsSync(f) ? statSync(f).size : 0);
    console.log(`seeded in ${seedSeconds.toFixed(1)} s`);

    // Start-up: the seeded data directory, then an empty one as the reference.
    const empty = await timedStart(dir, join(dir, 'empty'));
    const emptyStart = empty.ms;
    await empty.master.stop('SIGTERM', 30_000).catch(() => empty.master.stop('SIGKILL'));
    rmSync(join(dir, 'empty'), { recursive: true, force: true });
    const started = await timedStart(dir, dataDir);
    master = started.master;
    const base = master.url;
    const auth = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
    const get = async (
      path: string,
      headers: Record<string, string> = { authorization: auth },
    ): Promise<number> => {
      const res = await fetch(base + path, { headers });
      const body = await res.arrayBuffer();
      if (res.status !== 200)
        throw new Error(`GET ${path}: HTTP ${res.status} ${Buffer.from(body).toString()}`);
      return body.byteLength;
    };
    const json = async <T>(path: string): Promise<T> =>
      (await (await fetch(base + path, { headers: { authorization: auth } })).json()) as T;

    // The floor: the same rows read by SQLite in this process (read-only handle on the master's file).
    const ro = new Database(db, { readonly: true });
    const page = ro.prepare('SELECT * FROM nodes ORDER BY seq_no LIMIT 100');
    measureSync(
      'sqlite: SELECT first 100 nodes (reference floor)',
      () => JSON.stringify(page.all()).length,
      'in-process',
    );
    const all = ro.prepare('SELECT * FROM nodes ORDER BY seq_no');
    measureSync(
      'sqlite: SELECT all nodes (reference floor)',
      () => JSON.stringify(all.all()).length,
      'in-process',
    );

    // What the console's node list did first before paging: every node loaded and its inventory viewed.
    const side = openRepos({ path: db, logger: silentLogger() });
    measureSync(
      'in-process: NodeStore.list() + nodeRow, all nodes (old console: reference)',
      () => side.nodes.list().map(nodeRow).length,
      'in-process',
    );
    side.store.close();
    await measure('API GET /health (no auth: HTTP floor)', () => get('/api/v1/health', {}));
    await measure('API GET /events?limit=1 (Basic auth floor)', () => get('/api/v1/events?limit=1'));
    await measure(
      'API GET /nodes (all, unpaginated: reference)',
      () => get('/api/v1/nodes'),
      'before paging',
      Math.min(RUNS, 15),
    );
    await measure('API GET /nodes?limit=100', () => get('/api/v1/nodes?limit=100'));
    // Walk to the middle as a client would, a page of 1000 at a time.
    let mid = '';
    for (let seen = 0; seen < NODES / 2; seen += 1000) {
      const r = await json<{ nextCursor: string }>(`/api/v1/nodes?limit=1000${mid ? `&cursor=${mid}` : ''}`);
      mid = r.nextCursor;
    }
    await measure('API GET /nodes?limit=100&cursor=(middle)', () =>
      get(`/api/v1/nodes?limit=100&cursor=${mid}`),
    );
    await measure('API GET /nodes?limit=100&offset=(end-100)', () =>
      get(`/api/v1/nodes?limit=100&offset=${NODES - 100}`),
    );
    await measure('API GET /nodes?state=failed&limit=100', () => get('/api/v1/nodes?state=failed&limit=100'));
    await measure('API GET /nodes?role=db&limit=100', () => get('/api/v1/nodes?role=db&limit=100'));
    const serial = `SRV${String(Math.floor(NODES * 0.77)).padStart(7, '0')}`;
    await measure(`API GET /nodes?q=${serial} (DMI serial, 1 hit)`, () =>
      get(`/api/v1/nodes?q=${serial}&limit=100`),
    );
    await measure('API GET /nodes?q=3c:ec:ef:00 (NIC MAC prefix)', () =>
      get('/api/v1/nodes?q=3c:ec:ef:00&limit=100'),
    );
    await measure('API GET /nodes?q=no-such-text (no hit)', () =>
      get('/api/v1/nodes?q=no-such-text&limit=100'),
    );

    const b = new Browser(base);
    const login = await b.login('admin', PASSWORD);
    if (login.status !== 303 && login.status !== 302) throw new Error(`console login: HTTP ${login.status}`);
    const page200 = async (path: string): Promise<number> => {
      const res = await b.get(path);
      const text = await res.text();
      if (res.status !== 200) throw new Error(`console ${path}: HTTP ${res.status}`);
      return text.length;
    };
    await measure('console /nodes (first page of 100)', () => page200('/nodes'));
    // The secret check every response passes (master/util/redact.ts), on this page, in this process: the
    // secrets a master with HTTPS holds (admin password, its EC key, a token), then 1000 BMC passwords more.
    // Reference: one includes per secret, as before the one-pass index (Redactor registers more: PEM lines).
    const nodesPage = await (await b.get('/nodes')).text();
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const held = [
      PASSWORD,
      String(key.export({ type: 'pkcs8', format: 'pem' })),
      randomBytes(24).toString('hex'),
    ];
    for (const [label, secrets] of [
      ['master secrets', held],
      [
        '+ 1000 BMC passwords',
        [...held, ...Array.from({ length: 1000 }, () => randomBytes(12).toString('hex'))],
      ],
    ] as const) {
      const r = new Redactor();
      for (const x of secrets) r.add(x);
      measureSync(
        `in-process: secret check of the /nodes page, ${label}: one includes per secret (before)`,
        () => (secrets.some((x) => nodesPage.includes(x)) ? 0 : nodesPage.length),
        'reference',
      );
      measureSync(
        `in-process: secret check of the /nodes page, ${label}: Redactor.leaks (one pass)`,
        () => (r.leaks(nodesPage) ? 0 : nodesPage.length),
        'in-process',
      );
    }
    await measure('console /nodes?page=(last)', () => page200(`/nodes?page=${Math.ceil(NODES / 100)}`));
    await measure('console /nodes?sort=memory&dir=desc', () => page200('/nodes?sort=memory&dir=desc'));
    await measure(`console /nodes?q=${serial}`, () => page200(`/nodes?q=${serial}`));
    await measure('console /nodes?state=deployed', () => page200('/nodes?state=deployed'));
    await measure('console / (dashboard)', () => page200('/'));
    await measure('console /events', () => page200('/events'));
    await measure('console /nodes/:mac (node page with a day of metrics)', () => page200(`/nodes/${mac(1)}`));
    // The same console pages while API clients list and search nodes without pause (issue 19).
    const loadClients = Number(values['api-load']);
    const load = startApiLoad(base, auth, loadClients, [
      '/api/v1/nodes?limit=100',
      `/api/v1/nodes?q=${serial}&limit=100`,
      '/api/v1/nodes?state=failed&limit=100',
      `/api/v1/nodes?limit=100&offset=${NODES - 100}`,
    ]);
    const underLoad = `API under load: ${loadClients} clients`;
    await measure('console /nodes (first page of 100)', () => page200('/nodes'), underLoad);
    await measure(`console /nodes?q=${serial}`, () => page200(`/nodes?q=${serial}`), underLoad);
    await measure('console /nodes?state=deployed', () => page200('/nodes?state=deployed'), underLoad);
    await measure(
      'console /nodes?sort=memory&dir=desc',
      () => page200('/nodes?sort=memory&dir=desc'),
      underLoad,
    );
    await measure('console / (dashboard)', () => page200('/'), underLoad);
    const served = await load.stop();
    console.log(
      `API load during the console measurements: ${served.requests} requests (${served.perSecond.toFixed(0)}/s), ${served.errors} errors`,
    );
    await measure('GET /metrics (Prometheus exposition, loopback)', () => get('/metrics', {}));
    const rss = rssMiB(master.child.pid);

    const w = Math.max(...rows.map((r) => r.what.length));
    console.log(
      `\n${'request'.padEnd(w)}  ${'p50 ms'.padStart(8)}  ${'p95 ms'.padStart(8)}  ${'bytes'.padStart(10)}`,
    );
    for (const r of rows) {
      console.log(
        `${r.what.padEnd(w)}  ${r.p50.toFixed(1).padStart(8)}  ${r.p95.toFixed(1).padStart(8)}  ${String(r.bytes).padStart(10)}${r.note ? `  (${r.note})` : ''}`,
      );
    }
    console.log(`\nruns per row: ${RUNS} (unpaginated list: ${Math.min(RUNS, 15)}), one client, loopback`);
    console.log(
      `database: ${(size(db) / 2 ** 20).toFixed(1)} MiB (+ WAL ${(size(`${db}-wal`) / 2 ** 20).toFixed(1)} MiB) for ${NODES} nodes, ${EVENTS} events, ${METRIC_NODES} nodes x 1 day of samples`,
    );
    console.log(
      `master start-up: ${started.ms.toFixed(0)} ms on this database; ${emptyStart.toFixed(0)} ms on an empty data directory (reference)`,
    );
    console.log(`master RSS after the run: ${rss.toFixed(0)} MiB`);
    ro.close();
  } finally {
    await master?.stop('SIGTERM', 30_000).catch(() => master?.stop('SIGKILL'));
    if (values.keep || values.seeded) console.log(`kept: ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
