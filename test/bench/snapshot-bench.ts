/**
 * Snapshot figures (printed, never asserted).
 *
 *   node dist/test/bench/snapshot-bench.js [--nodes 1000,10000,50000]
 *
 * 1. Master restore points on a store of N nodes (and 2N events): online backup time against a plain
 *    file copy of the same database (the reference, with nothing writing), the longest pause a writer
 *    on the master's connection sees while the backup runs, the diff after changing 1% of the nodes, and
 *    the row-level restore of that change (rows journaled).
 *
 * Data snapshots of nodes (PostgreSQL, MariaDB) are measured by test/bench/data-snapshots-bench.ts.
 */
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { RestorePoints } from '../../master/snapshots/restore-points.js';
import { openRepos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000,10000,50000' },
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

console.log('Master restore points (SQLite online backup; row-level restore)');
console.log(
  '| nodes | store | create (online backup) | plain cp (reference) | longest writer pause during create | diff after 1% changed | restore | copy bytes |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const n of values.nodes.split(',').map(Number)) console.log(await restorePointFigures(n));
