/**
 * Data snapshots of a live PostgreSQL under continuous pgbench load (issue #9): the snapshot completes
 * while writes continue (the write stall is printed), and the restored copy starts, passes pg_amcheck,
 * keeps pgbench's cross-table invariant, and holds every probe row committed before the backup stopped.
 * Real peers: PostgreSQL server, pgbench, psql, pg_amcheck, pg_basebackup (Debian postgresql package).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  basebackupPostgres,
  restorePostgres,
  snapshotPostgres,
} from '../../master/snapshots/data/postgres.js';
import { PsqlSession } from '../../master/snapshots/data/psql-session.js';
import type { PgConnection } from '../../master/snapshots/data/psql-session.js';
import {
  maxGapDuring,
  PgLab,
  pgbenchCompletions,
  pgIds,
  runningAs,
  type PgServer,
} from '../helpers/snapshot-postgres.js';

const PORT = 20000 + (process.pid % 20000);

/** Inserts probe rows one by one (autocommit) and remembers when each commit was acknowledged. */
class Probe {
  readonly acked: { id: number; at: number }[] = [];
  private stopping = false;
  private loop: Promise<void> | undefined;
  private readonly session: PsqlSession;
  constructor(conn: PgConnection) {
    this.session = new PsqlSession(conn);
  }
  start(): void {
    this.loop = (async () => {
      while (!this.stopping) {
        const [[id = ''] = []] = await this.session.query(
          'INSERT INTO probe DEFAULT VALUES RETURNING id',
          30_000,
        );
        this.acked.push({ id: Number(id), at: Date.now() });
      }
    })();
  }
  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    this.session.close();
  }
  maxGap(from: number, to: number): number {
    return maxGapDuring(
      this.acked.map((a) => a.at),
      from,
      to,
    );
  }
}

async function verifyRestored(lab: PgLab, server: PgServer, mustHave: number[]): Promise<{ rows: number }> {
  // pg_amcheck: B-tree and heap checks of every relation in every database (installs amcheck as needed).
  await lab.psql(server.conn, 'SELECT 1');
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const run = promisify(execFile);
  const amcheck = await run(
    join(lab.bin, 'pg_amcheck'),
    [
      '-h',
      server.conn.host,
      '-p',
      String(server.conn.port),
      '-U',
      'postgres',
      '--install-missing',
      '--all',
      '--heapallindexed',
    ],
    { timeout: 120_000 },
  ).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({
      code: e.code ?? 1,
      out: `${e.stdout ?? ''}${e.stderr ?? ''}`,
    }),
  );
  assert.equal(amcheck.code, 0, `pg_amcheck reported corruption:\n${amcheck.out}`);

  const present = new Set(
    (await lab.psql(server.conn, 'SELECT id FROM probe ORDER BY id')).split('\n').filter(Boolean).map(Number),
  );
  const missing = mustHave.filter((id) => !present.has(id));
  assert.deepEqual(
    missing.slice(0, 10),
    [],
    `${missing.length} committed probe rows missing from the restored copy`,
  );

  // pgbench's tpcb-like transaction moves the same delta in accounts, tellers, branches and history.
  const sums = (
    await lab.psql(
      server.conn,
      'SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT sum(bbalance) FROM pgbench_branches), (SELECT coalesce(sum(delta), 0) FROM pgbench_history)',
    )
  )
    .trim()
    .split('|');
  assert.equal(new Set(sums).size, 1, `pgbench balances disagree after restore: ${sums.join(' ')}`);
  return { rows: present.size };
}

describe('PostgreSQL data snapshot under pgbench load', { timeout: 240_000 }, () => {
  let lab: PgLab;
  let live: PgServer;

  before(async () => {
    lab = new PgLab();
    live = await lab.start(await lab.initdb('live'), PORT);
    await lab.psql(
      live.conn,
      'CREATE TABLE probe (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())',
    );
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    await promisify(execFile)(
      'pgbench',
      ['-i', '-q', '-s', '5', '-h', live.conn.host, '-p', String(PORT), '-U', 'postgres', 'postgres'],
      { timeout: 120_000 },
    );
    console.log(`# PostgreSQL from ${lab.bin}, running as ${runningAs()}, socket ${live.conn.host}`);
  });

  after(async () => {
    await lab?.cleanup();
  });

  it('snapshots with pg_backup_start/stop + copy while writes continue; the restore is complete and consistent', async () => {
    const prefix = 'pgb-api';
    const bench = lab.spawnClient('pgbench', [
      '-n',
      '-c',
      '2',
      '-j',
      '2',
      '-T',
      '9',
      '-l',
      `--log-prefix=${lab.path(prefix)}`,
      '-h',
      live.conn.host,
      '-p',
      String(PORT),
      '-U',
      'postgres',
      'postgres',
    ]);
    const benchDone = new Promise<number>((resolve) => bench.on('exit', (code) => resolve(code ?? -1)));
    let benchOut = '';
    bench.stdout?.on('data', (d: Buffer) => (benchOut += d.toString()));
    bench.stderr?.on('data', (d: Buffer) => (benchOut += d.toString()));
    const probe = new Probe(live.conn);
    probe.start();
    await sleep(2500); // load settles; the gap before the snapshot is the baseline

    const snapDir = lab.path('snap-api');
    // Another checkpoint requested while the snapshot runs (it may coincide with the backup's own):
    // the snapshot must not depend on no checkpoint happening meanwhile.
    const midCheckpoint = sleep(600).then(() => lab.psql(live.conn, 'CHECKPOINT'));
    const result = await snapshotPostgres({
      dataDir: live.dataDir,
      target: snapDir,
      conn: live.conn,
      label: 'corral test',
    });
    const committedBeforeStop = probe.acked.filter((a) => a.at <= result.backupStoppedAt).map((a) => a.id);
    const committedBeforeStart = probe.acked.filter((a) => a.at <= result.startedAt).length;
    await midCheckpoint;

    await sleep(1500); // writes go on after the snapshot
    await probe.stop();
    const code = await Promise.race([benchDone, sleep(30_000).then(() => -2)]);
    assert.equal(code, 0, `pgbench failed: ${benchOut}`);

    const completions = pgbenchCompletions(lab.base, prefix);
    const stall = maxGapDuring(completions, result.startedAt, result.finishedAt);
    const baseline = maxGapDuring(completions, result.startedAt - 2000, result.startedAt - 1);
    const during = completions.filter((t) => t >= result.startedAt && t <= result.finishedAt).length;
    console.log(
      `# backup-api snapshot: ${result.finishedAt - result.startedAt} ms (checkpoint ${result.backupStartedAt - result.startedAt} ms, copy+stop ${result.backupStoppedAt - result.backupStartedAt} ms), ` +
        `${result.copy?.files} files ${((result.copy?.bytes ?? 0) / 1048576).toFixed(1)} MiB + ${result.walSegments} WAL files, LSN ${result.startLsn} → ${result.stopLsn}`,
    );
    console.log(
      `# write stall: pgbench max gap ${stall.toFixed(1)} ms during the snapshot (baseline ${baseline.toFixed(1)} ms before it), ` +
        `${during} pgbench transactions committed during it; probe max gap ${probe.maxGap(result.startedAt, result.finishedAt).toFixed(1)} ms`,
    );
    assert.ok(during > 0, 'pgbench committed transactions while the snapshot ran (writes were not blocked)');

    const restored = await restorePostgres(snapDir, lab.path('restored-api'));
    const server = await lab.start(lab.path('restored-api'), PORT + 1);
    const { rows } = await verifyRestored(lab, server, committedBeforeStop);
    console.log(
      `# restored: ${restored.files} files; pg_amcheck clean; ${committedBeforeStop.length} probe rows committed before pg_backup_stop all present ` +
        `(${committedBeforeStart} before the snapshot began; ${rows} rows in the copy, ${probe.acked.length} committed in total)`,
    );
    assert.ok(
      committedBeforeStop.length > committedBeforeStart,
      'probe rows were committed during the snapshot',
    );
    await server.stop();
  });

  it('snapshots with pg_basebackup under load; the restore is complete and consistent', async () => {
    const bench = lab.spawnClient('pgbench', [
      '-n',
      '-c',
      '2',
      '-j',
      '2',
      '-T',
      '5',
      '-h',
      live.conn.host,
      '-p',
      String(PORT),
      '-U',
      'postgres',
      'postgres',
    ]);
    const benchDone = new Promise<number>((resolve) => bench.on('exit', (code) => resolve(code ?? -1)));
    const probe = new Probe(live.conn);
    probe.start();
    await sleep(1000);
    const snapDir = lab.path('snap-bb');
    const result = await basebackupPostgres({ target: snapDir, conn: live.conn });
    const committedBeforeStart = probe.acked.filter((a) => a.at <= result.startedAt).map((a) => a.id);
    await probe.stop();
    assert.equal(await Promise.race([benchDone, sleep(30_000).then(() => -2)]), 0);
    console.log(
      `# pg_basebackup snapshot: ${result.finishedAt - result.startedAt} ms; probe max gap ${probe.maxGap(result.startedAt, result.finishedAt).toFixed(1)} ms`,
    );
    // pg_basebackup ran as root here: the restored files are given to the postgres user.
    await restorePostgres(
      snapDir,
      lab.path('restored-bb'),
      process.getuid?.() === 0 ? { owner: pgIds() } : {},
    );
    const server = await lab.start(lab.path('restored-bb'), PORT + 2);
    const { rows } = await verifyRestored(lab, server, committedBeforeStart);
    console.log(
      `# restored pg_basebackup copy: pg_amcheck clean; ${committedBeforeStart.length} probe rows committed before it began all present (${rows} in the copy)`,
    );
    await server.stop();
  });

  it('a failed copy aborts the backup and leaves the server running and backup-free', async () => {
    await assert.rejects(
      snapshotPostgres({ dataDir: lab.path('no-such-dir'), target: lab.path('snap-fail'), conn: live.conn }),
      (err: Error & { code?: string }) => err.code === 'DATA_SNAPSHOT_FAILED',
    );
    // The aborted session's backup is gone: a new one starts at once (PostgreSQL allows many, but the
    // aborted one must not linger as an open backup in pg_stat_activity).
    await sleep(300);
    const open = (
      await lab.psql(
        live.conn,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'corral-snapshot'",
      )
    ).trim();
    assert.equal(open, '0');
    assert.equal((await lab.psql(live.conn, 'SELECT count(*) > 0 FROM probe')).trim(), 't');
  });
});
