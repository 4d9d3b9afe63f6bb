/**
 * Data snapshots of nodes (issue 17): figures printed, never asserted.
 *
 *   node dist/test/bench/data-snapshots-bench.js [--mb 1024] [--kinds postgresql,mysql]
 *
 * Per kind, on "a node" reached over real SSH (test/helpers/data-snapshot-harness.ts) holding about
 * --mb MB of data under continuous writes: Corral's snapshot through the API (on the node, streamed
 * over SSH gzip-compressed, checksummed and listed on the master) beside the plain tool run directly on
 * the same data in the same run. For each: wall time, and the writer stall (the longest gap between
 * commits of the writers overlapping the run, with the longest gap in the 2 s before it as baseline).
 * - postgresql: pgbench (2 clients, back-to-back 3 s runs) at scale ≈ MB/15; Corral (pg_basebackup -Ft
 *   -X fetch | gzip -1 over SSH) against `pg_basebackup -Fp -X stream -c fast` and `-Ft -z -Z 1`.
 * - mysql: a writer committing one row at a time; data of random hex; the data dir on a loop-mounted
 *   btrfs. Corral's read lock + btrfs snapshot, Corral's mariadb-dump method (a second data set whose path
 *   is not on btrfs), against `mariadb-dump --single-transaction --all-databases > file`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSnapshotRecord } from '../../master/store/data-sets.js';
import { api, type ApiTarget } from '../helpers/api.js';
import { harnessSkipReason, startHarness } from '../helpers/data-snapshot-harness.js';
import {
  installMaria,
  MariaSession,
  mariaQuery,
  startMaria,
  stopMaria,
  type MariaServer,
} from '../helpers/mariadb.js';
import { maxGapDuring, PgLab, pgbenchCompletions } from '../helpers/snapshot-postgres.js';

const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: process.env['CORRAL_BENCH_DATA_MB'] ?? '1024' },
    kinds: { type: 'string', default: 'postgresql,mysql' },
  },
});
const MB = Number(values.mb);
const KINDS = new Set(values.kinds.split(','));
const SSH_PORT = 40000 + (process.pid % 10000);
const PG_PORT = 25000 + (process.pid % 5000);

interface Row {
  kind: string;
  what: string;
  ms: number;
  stallMs: number;
  baselineMs: number;
  note: string;
}
const rows: Row[] = [];

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(0)} MiB`;
}

interface Run {
  what: string;
  /** Runs once; answers the row's note. */
  run: () => Promise<string>;
}
interface Mark {
  what: string;
  t0: number;
  t1: number;
  note: string;
}

/**
 * The one timing loop of every kind: each run in turn, timed, with a pause before it so that its
 * baseline (the 2 s before t0) sees the writers undisturbed by the previous run.
 */
async function measure(runs: readonly Run[], pauseMs = 2500): Promise<Mark[]> {
  const marks: Mark[] = [];
  for (const r of runs) {
    await sleep(pauseMs);
    const t0 = Date.now();
    const note = await r.run();
    marks.push({ what: r.what, t0, t1: Date.now(), note });
  }
  return marks;
}

/** Rows of one kind: time and the writers' stall, measured over each run and the 2 s before it. */
function record(kind: string, marks: readonly Mark[], gap: (t0: number, t1: number) => number): void {
  for (const m of marks) {
    rows.push({
      kind,
      what: m.what,
      ms: m.t1 - m.t0,
      stallMs: gap(m.t0, m.t1),
      baselineMs: gap(m.t0 - 2000, m.t0 - 1),
      note: m.note,
    });
  }
}

function shell(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err}`))));
  });
}

async function snapshot(target: ApiTarget, set: string): Promise<DataSnapshotRecord> {
  const r = await api(target, 'POST', `/data-sets/${set}/snapshots`, {}, { timeoutMs: 3_600_000 });
  if (r.status !== 201) throw new Error(`snapshot of ${set}: ${r.status} ${r.text}`);
  return r.json.snapshot as DataSnapshotRecord;
}

async function postgres(target: ApiTarget, dir: string): Promise<void> {
  const lab = new PgLab();
  try {
    const a = await lab.start(await lab.initdb('a'), PG_PORT);
    const scale = Math.max(1, Math.round(MB / 15));
    execFileSync(
      'pgbench',
      [
        '-i',
        '-q',
        '-s',
        String(scale),
        '-h',
        a.conn.host,
        '-p',
        String(PG_PORT),
        '-U',
        'postgres',
        'postgres',
      ],
      {
        stdio: 'ignore',
        timeout: 3_600_000,
      },
    );
    const size = Number((await lab.psql(a.conn, "SELECT pg_database_size('postgres')")).trim());
    const declared = await api(target, 'POST', '/data-sets', {
      name: 'pg-bench',
      node: 'node-a',
      kind: 'postgresql',
      path: a.dataDir,
      connection: { host: a.conn.host, port: PG_PORT, user: 'postgres' },
    });
    if (declared.status !== 201) throw new Error(declared.text);

    const runs: string[] = [];
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop && i < 5000; i++) {
        const run = `bench${i}`;
        runs.push(run);
        const c = lab.spawnClient('pgbench', [
          '-n',
          '-c',
          '2',
          '-j',
          '2',
          '-T',
          '3',
          '-l',
          `--log-prefix=${lab.path(run)}`,
          '-h',
          a.conn.host,
          '-p',
          String(PG_PORT),
          '-U',
          'postgres',
          'postgres',
        ]);
        await new Promise((r) => c.on('exit', r));
      }
    })();
    const basebackup = (into: string, format: string[]): Promise<void> =>
      shell(join(lab.bin, 'pg_basebackup'), [
        '-D',
        into,
        ...format,
        '-X',
        'stream',
        '-c',
        'fast',
        '-h',
        a.conn.host,
        '-p',
        String(PG_PORT),
        '-U',
        'postgres',
      ]);
    const plain = join(dir, 'pg-plain');
    const gz = join(dir, 'pg-gz');
    const marks = await measure(
      [
        {
          what: 'Corral snapshot (pg_basebackup -Ft, gzip -1, over SSH; sha256 and listing on the master)',
          run: async () => {
            const snap = await snapshot(target, 'pg-bench');
            return `${mib(snap.bytes ?? 0)} gzip, WAL ${snap.position?.walStart} → ${snap.position?.walEnd}`;
          },
        },
        {
          what: 'pg_basebackup -Fp -X stream (plain, local)',
          run: async () => {
            await basebackup(plain, ['-Fp']);
            rmSync(plain, { recursive: true, force: true });
            return '';
          },
        },
        {
          what: 'pg_basebackup -Ft -z -Z1 -X stream (local)',
          run: async () => {
            await basebackup(gz, ['-Ft', '-z', '-Z', '1']);
            const note = `${mib(statSync(join(gz, 'base.tar.gz')).size)} gzip`;
            rmSync(gz, { recursive: true, force: true });
            return note;
          },
        },
      ],
      3000,
    );
    await sleep(3500); // the last marks' baselines and stalls need the load's logs of the runs after them
    stop = true;
    await load;
    // pgbench logs each run's transactions; the stall is the longest gap within any run.
    const per = runs.map((r) => pgbenchCompletions(lab.base, r));
    record(`postgresql ${mib(size)}`, marks, (t0, t1) =>
      Math.max(0, ...per.map((c) => maxGapDuring(c, t0, t1))),
    );
  } finally {
    await lab.cleanup();
  }
}

async function mysql(target: ApiTarget, dir: string): Promise<void> {
  const base = join(dir, 'maria');
  mkdirSync(base, { recursive: true, mode: 0o755 });
  const img = join(base, 'btrfs.img');
  const mnt = join(base, 'mnt');
  mkdirSync(mnt);
  let mounted = false;
  let a: MariaServer | undefined;
  try {
    execFileSync('truncate', ['-s', `${Math.ceil((MB * 3) / 1024) + 2}G`, img]);
    execFileSync('mkfs.btrfs', ['-q', img]);
    execFileSync('mount', ['-o', 'loop', img, mnt]);
    mounted = true;
    execFileSync('btrfs', ['subvolume', 'create', join(mnt, 'vol')], { stdio: 'ignore' });
    execFileSync('chmod', ['755', mnt, join(mnt, 'vol')]);
    a = await installMaria(join(mnt, 'vol', 'mysql'), join(base, 'run'));
    await startMaria(a);
    await mariaQuery(
      a,
      'CREATE DATABASE app; CREATE TABLE app.bulk (id BIGINT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(600)) ENGINE=InnoDB; CREATE TABLE app.probe (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB',
    );
    // ~600 bytes a row on disk: random hex (gzip halves it, as it would real data, not 100x like a
    // repeated character).
    const chunks = Math.max(1, Math.round((MB * 1024 * 1024) / 600 / 100_000));
    for (let i = 0; i < chunks; i++) {
      await mariaQuery(
        a,
        'INSERT INTO app.bulk (pad) SELECT CONCAT(SHA2(RAND(),512), SHA2(RAND(),512), SHA2(RAND(),512), SHA2(RAND(),512)) FROM app.seq_1_to_100000',
      );
    }
    // The whole data dir (tables, redo log, binary log): what a file-system snapshot copies.
    const size = Number(execFileSync('du', ['-sb', a.dataDir]).toString().split('\t')[0]);
    for (const [name, path] of [
      ['my-btrfs', a.dataDir],
      // Same server, a path not on btrfs: the node script takes the dump method.
      ['my-dump', join(base, 'run')],
    ] as const) {
      const r = await api(target, 'POST', '/data-sets', {
        name,
        node: 'node-a',
        kind: 'mysql',
        path,
        connection: { host: a.socket, user: 'root' },
      });
      if (r.status !== 201) throw new Error(r.text);
    }
    const session = new MariaSession(a);
    const commits: number[] = [];
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        await session.query('INSERT INTO app.probe (v) VALUES (1)');
        commits.push(Date.now());
      }
    })();
    const out = join(dir, 'dump.sql');
    const marks = await measure([
      {
        what: 'Corral snapshot (FLUSH TABLES WITH READ LOCK + btrfs snapshot; tar of the data dir, gzip -1, over SSH)',
        run: async () => {
          const snap = await snapshot(target, 'my-btrfs');
          return `${mib(snap.bytes ?? 0)} gzip, lock held ${snap.writerStallMs} ms, binlog ${snap.position?.binlogFile}:${snap.position?.binlogPos}`;
        },
      },
      {
        what: 'Corral snapshot (mariadb-dump --single-transaction, gzip -1, over SSH)',
        run: async () => `${mib((await snapshot(target, 'my-dump')).bytes ?? 0)} gzip`,
      },
      {
        what: 'mariadb-dump --single-transaction --all-databases > file (plain, local)',
        run: async () => {
          await shell('bash', [
            '-c',
            `mariadb-dump --no-defaults --socket=${a?.socket} --single-transaction --all-databases > ${out}`,
          ]);
          const note = mib(statSync(out).size);
          rmSync(out, { force: true });
          return note;
        },
      },
    ]);
    await sleep(1000);
    stop = true;
    await writer;
    session.close();
    record(`mysql, data dir ${mib(size)}`, marks, (t0, t1) => maxGapDuring(commits, t0, t1));
  } finally {
    if (a) await stopMaria(a);
    if (mounted) execFileSync('umount', [mnt]);
  }
}

async function main(): Promise<void> {
  const skip = harnessSkipReason();
  if (skip) {
    console.log(`data-snapshots bench skipped: ${skip}`);
    return;
  }
  const h = await startHarness(SSH_PORT);
  try {
    console.log(
      `# data snapshots, ~${MB} MB per kind, node over SSH on loopback (2-core machine shared with other work)`,
    );
    if (KINDS.has('postgresql')) await postgres(h.target, h.dir);
    if (KINDS.has('mysql')) await mysql(h.target, h.dir);
  } finally {
    await h.close();
  }
  console.log('| data | run | time | writer stall (baseline) | notes |');
  console.log('|---|---|---:|---:|---|');
  for (const r of rows) {
    console.log(
      `| ${r.kind} | ${r.what} | ${(r.ms / 1000).toFixed(1)} s | ${r.stallMs.toFixed(0)} ms (${r.baselineMs.toFixed(0)} ms) | ${r.note} |`,
    );
  }
}

await main();
