/**
 * Snapshot figures (printed, never asserted).
 *
 *   node dist/test/bench/snapshot-bench.js [--nodes 1000,10000,50000] [--pg-runs 3] [--pg-scale 5]
 *
 * 1. Master restore points on a store of N nodes (and 2N events): online backup time against a plain
 *    file copy of the same database (the reference, with nothing writing), the longest pause a writer
 *    on the master's connection sees while the backup runs, the diff after changing 1% of the nodes, and
 *    the row-level restore of that change (rows journaled).
 * 2. PostgreSQL data snapshots under pgbench load (2 clients), `backup-api` (pg_backup_start/stop + copy)
 *    and `basebackup`: snapshot time, the write stall (longest gap between pgbench commits overlapping the
 *    snapshot) against the longest gap in the same span before it, and tps during against before.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import {
  basebackupPostgres,
  snapshotPostgres,
  type PgSnapshotResult,
} from '../../master/snapshots/data/postgres.js';
import { RestorePoints } from '../../master/snapshots/restore-points.js';
import { openRepos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';
import { maxGapDuring, PgLab, pgbenchCompletions } from '../helpers/snapshot-postgres.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000,10000,50000' },
    'pg-runs': { type: 'string', default: '3' },
    'pg-scale': { type: 'string', default: '5' },
  },
});

const logger = silentLogger();

async function restorePointFigures(n: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'corral-snapshot-bench-'));
  try {
    const repos = openRepos({ path: join(dir, 'corral.db'), logger });
    const mac = (i: number): string =>
      `52:54:${[i >>> 24, (i >>> 16) & 255, (i >>> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
    repos.store.write((journal) => {
      for (let i = 0; i < n; i++) {
        repos.nodes.insertIn(journal, {
          mac: mac(i),
          name: `node-${i}`,
          seqNo: i + 1,
          state: 'discovered',
          inventory: { memoryBytes: 1 << 30, cpu: { count: 4 } },
        });
        repos.events.appendIn(journal, {
          nodeMac: mac(i),
          kind: 'node.enlisted',
          message: `node-${i} enlisted`,
        });
        repos.events.appendIn(journal, { nodeMac: mac(i), kind: 'node.seen', message: `node-${i} seen` });
      }
    });
    const file = new Database(join(dir, 'corral.db'));
    file.pragma('wal_checkpoint(TRUNCATE)');
    file.close();
    const points = new RestorePoints({ repos, dir: join(dir, 'snapshots'), logger });

    let t = performance.now();
    copyFileSync(join(dir, 'corral.db'), join(dir, 'plain-copy.db'));
    const copyMs = performance.now() - t;

    // A writer on the master's own connection while the backup runs: its longest pause.
    let stop = false;
    const stamps: number[] = [];
    const writer = (async () => {
      let i = 0;
      while (!stop) {
        repos.settings.set('bench.counter', i++);
        stamps.push(performance.now());
        await new Promise((r) => setImmediate(r));
      }
    })();
    t = performance.now();
    const snap = await points.create({ name: 'bench' });
    const createMs = performance.now() - t;
    stop = true;
    await writer;
    let pause = 0;
    for (let i = 1; i < stamps.length; i++) pause = Math.max(pause, (stamps[i] ?? 0) - (stamps[i - 1] ?? 0));

    const changed = Math.max(1, Math.floor(n / 100));
    repos.store.write((journal) => {
      for (let i = 0; i < changed; i++) repos.nodes.patchIn(journal, mac(i), { role: 'app' });
    });
    t = performance.now();
    const diff = points.diff('bench');
    const diffMs = performance.now() - t;
    const seq = repos.store.lastChangeSeq();
    t = performance.now();
    const restored = await points.restore('bench');
    const restoreMs = performance.now() - t;
    const journaled = repos.store.lastChangeSeq() - seq;
    repos.store.close();
    const nodesDiff = diff.tables.find((x) => x.table === 'nodes');
    return (
      `| ${n} | ${(statSync(join(dir, 'corral.db')).size / 1048576).toFixed(1)} MiB | ${createMs.toFixed(0)} ms | ${copyMs.toFixed(0)} ms | ` +
      `${pause.toFixed(1)} ms (${stamps.length} writes) | ${diffMs.toFixed(0)} ms (${nodesDiff?.changed ?? 0} changed) | ` +
      `${restoreMs.toFixed(0)} ms incl. safety copy (${restored.summary.tables['nodes']?.upserted ?? 0} rows, ${journaled} journal rows) | ${snap.dbBytes} |`
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function pgFigures(runs: number, scale: number): Promise<string[]> {
  const lab = new PgLab();
  const port = 40000 + (process.pid % 10000);
  const rows: string[] = [];
  try {
    const live = await lab.start(await lab.initdb('live'), port);
    await new Promise<void>((resolve, reject) => {
      const c = spawn(
        'pgbench',
        [
          '-i',
          '-q',
          '-s',
          String(scale),
          '-h',
          live.conn.host,
          '-p',
          String(port),
          '-U',
          'postgres',
          'postgres',
        ],
        { stdio: 'ignore' },
      );
      c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pgbench -i exited ${code}`))));
    });
    for (let run = 1; run <= runs; run++) {
      for (const method of ['backup-api', 'basebackup'] as const) {
        const prefix = `bench-${method}-${run}`;
        const bench = lab.spawnClient('pgbench', [
          '-n',
          '-c',
          '2',
          '-j',
          '2',
          '-T',
          '8',
          '-l',
          `--log-prefix=${lab.path(prefix)}`,
          '-h',
          live.conn.host,
          '-p',
          String(port),
          '-U',
          'postgres',
          'postgres',
        ]);
        const done = new Promise<void>((resolve) => bench.on('exit', () => resolve()));
        await sleep(3000);
        const target = lab.path(`snap-${method}-${run}`);
        const r: PgSnapshotResult =
          method === 'backup-api'
            ? await snapshotPostgres({ dataDir: live.dataDir, target, conn: live.conn })
            : await basebackupPostgres({ target, conn: live.conn });
        await Promise.race([done, sleep(30_000)]);
        const times = pgbenchCompletions(lab.base, prefix);
        const span = r.finishedAt - r.startedAt;
        const stall = maxGapDuring(times, r.startedAt, r.finishedAt);
        const before = maxGapDuring(times, r.startedAt - span, r.startedAt - 1);
        const tps = (from: number, to: number): number =>
          times.filter((x) => x >= from && x <= to).length / ((to - from) / 1000);
        rows.push(
          `| ${method} | ${run} | ${span} ms | ${stall.toFixed(1)} ms | ${before.toFixed(1)} ms | ` +
            `${tps(r.startedAt, r.finishedAt).toFixed(0)} | ${tps(r.startedAt - 2000, r.startedAt).toFixed(0)} |`,
        );
        rmSync(target, { recursive: true, force: true });
      }
    }
  } finally {
    await lab.cleanup();
  }
  return rows;
}

console.log('Master restore points (SQLite online backup; row-level restore)');
console.log(
  '| nodes | store | create (online backup) | plain cp (reference) | longest writer pause during create | diff after 1% changed | restore | copy bytes |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const n of values.nodes.split(',').map(Number)) console.log(await restorePointFigures(n));

console.log('');
console.log(`PostgreSQL data snapshots under pgbench load (scale ${values['pg-scale']}, 2 clients)`);
console.log(
  '| method | run | snapshot time | write stall (max commit gap during) | max gap in the span before | tps during | tps before |',
);
console.log('|---|---|---|---|---|---|---|');
for (const row of await pgFigures(Number(values['pg-runs']), Number(values['pg-scale']))) console.log(row);
