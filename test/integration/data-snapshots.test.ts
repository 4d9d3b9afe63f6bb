/**
 * Data snapshots of nodes (issue 17) against real servers, through the REST API routes, over real SSH.
 * "The node" is a real OpenSSH server on a loopback port of its own, with the master's key as its only
 * authorized key and its host key pinned on first contact; two node records point at it, each with its own
 * database (node-a holds the live data, node-b is the restore target).
 *
 * - PostgreSQL (Debian's) under continuous pgbench and a probe writer: a snapshot through
 *   POST /api/v1/data-sets/:id/snapshots, restored onto node-b's server (safety snapshot first, stop, lay,
 *   start, pg_amcheck). Every probe row whose commit the server had flushed at an LSN ≤ the snapshot's WAL
 *   end point is present in the restored copy; pgbench's balances agree. The longest commit stall during
 *   the snapshot is printed.
 * - A flipped byte in the archive: the restore is refused (409 DATA_SNAPSHOT_CORRUPT) naming the archive
 *   file, and node-b's database is untouched.
 * - MariaDB (Debian's mariadb-server) under continuous writes, its data on a loop-mounted btrfs volume:
 *   the read lock is held only for the subvolume snapshot (the recorded writer stall); restored onto
 *   node-b, whose own safety snapshot is a single-transaction dump (no btrfs there). Every row committed at
 *   a binlog position ≤ the snapshot's is present; mysqlcheck passes.
 */
import { failIfUnmet } from '../helpers/peers.js';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSnapshotRecord } from '../../master/store/data-sets.js';
import { PsqlSession } from '../helpers/psql-session.js';
import { api, type ApiTarget } from '../helpers/api.js';
import {
  asPg,
  maxGapDuring,
  PgLab,
  pgbenchCompletions,
  pgIds,
  type PgServer,
} from '../helpers/snapshot-postgres.js';
import {
  installMaria,
  MariaSession,
  mariaQuery,
  startMaria,
  stopMaria,
  type MariaServer,
} from '../helpers/mariadb.js';
import {
  CONSOLE_PASSWORD,
  harnessSkipReason,
  startHarness,
  type DataSnapshotHarness,
} from '../helpers/data-snapshot-harness.js';
import { Browser, CHROMIUM, launchChromium } from '../helpers/browser.js';
import { requirePeers } from '../helpers/peers.js';
import { ensureKernel } from '../../node-images/kernel.js';
import { indexModules, resolveModules } from '../../node-images/modules.js';
import { masterKeyPath } from '../../master/deploy/ssh.js';
import { silentLogger } from '../../master/util/logger.js';

const SSH_PORT = 30000 + (process.pid % 10000);
const PG_A = 21000 + (process.pid % 8000);
const PG_B = PG_A + 1;
const PG_SCALE = Number(process.env['CORRAL_TEST_PG_SCALE'] ?? 5);

// A missing peer fails the run (test/helpers/peers.ts), it never skips.
const unmet = harnessSkipReason();

/** "X/Y" (hex halves) as one number, to compare WAL positions. */
function lsn(text: string): bigint {
  const [hi = '0', lo = '0'] = text.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

let dir = '';
let harness: DataSnapshotHarness | undefined;
let target: ApiTarget;
const h = (): DataSnapshotHarness => {
  assert.ok(harness, 'harness started');
  return harness;
};

/** An operation as the console's progress stream sends it (master/data-snapshots/progress.ts). */
interface StreamedOp {
  key: string;
  op: 'snapshot' | 'restore';
  snapshotId: number;
  snapshot: string;
  bytes: number;
  expectedBytes: number | null;
  rate: number | null;
  etaSeconds: number | null;
  state: 'running' | 'ok' | 'failed';
  message: string | null;
  text: string;
}

/**
 * The console's live progress (`/snapshots/data/progress`, server-sent events) read as a browser's
 * EventSource would, with the signed-in session's cookie; every operation received is kept with the time
 * it arrived.
 */
async function progressStream(browser: Browser): Promise<{
  seen: { at: number; op: StreamedOp }[];
  until(pred: (op: StreamedOp) => boolean, timeoutMs: number): Promise<StreamedOp>;
  close(): Promise<void>;
}> {
  const res = await browser.get('/snapshots/data/progress');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const reader = res.body!.getReader();
  const seen: { at: number; op: StreamedOp }[] = [];
  let buffered = '';
  const reading = (async () => {
    const text = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) return;
      buffered += text.decode(value, { stream: true });
      let cut: number;
      while ((cut = buffered.indexOf('\n\n')) >= 0) {
        const frame = buffered.slice(0, cut);
        buffered = buffered.slice(cut + 2);
        if (!/^event: progress$/m.test(frame)) continue;
        const data = /^data: (.*)$/m.exec(frame)?.[1] ?? '[]';
        for (const op of JSON.parse(data) as StreamedOp[]) seen.push({ at: Date.now(), op });
      }
    }
  })();
  return {
    seen,
    async until(pred, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const hit = seen.find((x) => pred(x.op));
        if (hit) return hit.op;
        await sleep(200);
      }
      throw new Error(
        `no such progress event within ${timeoutMs} ms; seen: ${JSON.stringify(seen.map((x) => x.op.text))}`,
      );
    },
    async close() {
      await reader.cancel().catch(() => undefined);
      await reading;
    },
  };
}

/** A snapshot started from the console runs on after the redirect: its API record once it has ended. */
async function finished(id: string, timeoutMs: number): Promise<DataSnapshotRecord> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await api(target, 'GET', `/data-snapshots/${id}`);
    assert.equal(r.status, 200, `snapshot ${id} gone: it failed (see the event log)`);
    const snap = r.json.snapshot as DataSnapshotRecord;
    if (snap.status !== 'running') return snap;
    await sleep(250);
  }
  throw new Error(`snapshot ${id} still running after ${timeoutMs} ms`);
}

/**
 * "A node with LVM": this machine's kernel has no device-mapper (no dm-mod, /dev/mapper/control absent), so
 * the LVM case runs in a QEMU VM (TCG) on Debian's generic kernel (node-images/kernel.ts, cached in
 * /var/cache/corral), whose root file system is this host's own, shared read-only over 9p: the same bash,
 * lvm2, OpenSSH and PostgreSQL binaries the other cases use. A busybox initramfs loads the modules
 * (node-images/modules.ts resolves their order), mounts the share, puts tmpfs on /run and /tmp (the
 * per-run directories stay visible through bind mounts), and hands over to STAGE2, a bash script from
 * the per-run directory. The VM's virtio disk (a sparse file in the per-run directory) is its volume group.
 * Network: QEMU's user-mode stack, reachable only through forwards on host loopback addresses.
 */
const VM_INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# crc32c-intel needs SSE4.2, which TCG's default CPU lacks: crc32c_generic serves instead.
while read -r m; do insmod "/mods/$m" 2>/dev/null || echo "corral-vm: no $m"; done < /mods/order
arg() { sed -n "s/.*corral.$1=\\\\([^ ]*\\\\).*/\\\\1/p" /proc/cmdline; }
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /newroot || poweroff -f
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mount -t tmpfs -o mode=755 run /newroot/run
i=0
for d in $(arg share | tr , ' '); do
  i=$((i + 1)); mkdir /newroot/run/share$i; mount -o bind "/newroot$d" /newroot/run/share$i
done
mount -t tmpfs -o mode=1777 tmp /newroot/tmp
i=0
for d in $(arg share | tr , ' '); do
  i=$((i + 1)); mkdir -p "/newroot$d"; mount -o bind /newroot/run/share$i "/newroot$d"
done
stage2=$(arg stage2)
umount /proc /sys /dev
exec switch_root /newroot /bin/bash "$stage2"
`;

interface LvmVm {
  child: ChildProcess;
  serial: () => string;
  /** Resolves when the serial console prints the marker; rejects on exit or after timeoutMs. */
  waitFor: (marker: string, timeoutMs: number) => Promise<void>;
  stop: () => Promise<void>;
}

async function startLvmVm(opts: {
  dir: string;
  shares: string[];
  stage2: string;
  disk: string;
  forwards: string[];
}): Promise<LvmVm> {
  const kernel = await ensureKernel({ cacheDir: '/var/cache/corral', logger: silentLogger() });
  const mods = await resolveModules(await indexModules(kernel.modulesDir), [
    'virtio_pci',
    'virtio_blk',
    'virtio_net',
    '9pnet_virtio',
    '9p',
    'ext4',
    'dm_snapshot',
  ]);
  const root = join(opts.dir, 'initramfs');
  for (const d of ['bin', 'mods', 'newroot', 'proc', 'sys', 'dev'])
    mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/usr/bin/busybox', join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  for (const rel of mods.loadOrder)
    copyFileSync(join(kernel.modulesDir, rel), join(root, 'mods', basename(rel)));
  writeFileSync(join(root, 'mods', 'order'), mods.loadOrder.map((m) => basename(m)).join('\n') + '\n');
  writeFileSync(join(root, 'init'), VM_INIT, { mode: 0o755 });
  const initrd = join(opts.dir, 'initrd.gz');
  execFileSync('bash', [
    '-c',
    `cd "${root}" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "${initrd}"`,
  ]);
  const child = spawn(
    'qemu-system-x86_64',
    [
      '-accel',
      'tcg',
      '-m',
      '1024',
      '-nographic',
      '-no-reboot',
      '-kernel',
      kernel.vmlinuzPath,
      '-initrd',
      initrd,
      '-append',
      `console=ttyS0 quiet panic=-1 corral.stage2=${opts.stage2} corral.share=${opts.shares.join(',')}`,
      '-virtfs',
      'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
      '-drive',
      `file=${opts.disk},if=virtio,format=raw`,
      '-netdev',
      `user,id=n0,${opts.forwards.map((f) => `hostfwd=${f}`).join(',')}`,
      '-device',
      'virtio-net-pci,netdev=n0,romfile=',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let exited = false;
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  child.on('exit', () => (exited = true));
  return {
    child,
    serial: () => out,
    waitFor: async (marker, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      while (!out.includes(marker)) {
        if (exited) throw new Error(`the VM stopped before "${marker}":\n${out.slice(-3000)}`);
        if (Date.now() > deadline)
          throw new Error(`no "${marker}" within ${timeoutMs} ms:\n${out.slice(-3000)}`);
        await sleep(250);
      }
    },
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      for (let i = 0; i < 40 && !exited; i++) await sleep(250);
      if (!exited) child.kill('SIGKILL');
    },
  };
}

/**
 * A writer that commits one probe row after another and records, for each acknowledged commit, the WAL
 * flush position it reached: the rows a restore from a snapshot ending at LSN X must hold.
 */
function startPgProbe(conn: ConstructorParameters<typeof PsqlSession>[0]): {
  acked: { id: number; flushed: bigint; at: number }[];
  stop(): Promise<void>;
} {
  const probe = new PsqlSession(conn);
  const acked: { id: number; flushed: bigint; at: number }[] = [];
  let stopping = false;
  const probing = (async () => {
    while (!stopping) {
      const [[id = ''] = []] = await probe.query('INSERT INTO probe DEFAULT VALUES RETURNING id', 30_000);
      const [[flushed = '0/0'] = []] = await probe.query('SELECT pg_current_wal_flush_lsn()', 30_000);
      acked.push({ id: Number(id), flushed: lsn(flushed), at: Date.now() });
    }
  })();
  return {
    acked,
    stop: async () => {
      stopping = true;
      await probing;
      probe.close();
    },
  };
}

describe('data snapshots of nodes over SSH, real PostgreSQL and MariaDB', { timeout: 1_500_000 }, () => {
  before(() => failIfUnmet(unmet));
  before(async () => {
    harness = await startHarness(SSH_PORT);
    dir = harness.dir;
    target = harness.target;
  });

  after(async () => {
    await harness?.close();
  });

  let pgSnapshot: DataSnapshotRecord | undefined;
  let pgLab: PgLab | undefined;
  let pgB: PgServer | undefined;

  it('PostgreSQL under pgbench: snapshot over SSH, restore to node-b with every commit before the WAL end point', async (t) => {
    const lab = new PgLab();
    pgLab = lab;
    const a = await lab.start(await lab.initdb('a'), PG_A);
    const b = await lab.start(await lab.initdb('b'), PG_B);
    pgB = b;
    const pgctl = join(lab.bin, 'pg_ctl');
    const { uid } = pgIds();
    assert.ok(uid > 0);
    await lab.psql(a.conn, 'CREATE TABLE probe (id bigserial PRIMARY KEY, flushed pg_lsn)');
    execFileSync(
      'pgbench',
      [
        '-i',
        '-q',
        '-s',
        String(PG_SCALE),
        '-h',
        a.conn.host,
        '-p',
        String(PG_A),
        '-U',
        'postgres',
        'postgres',
      ],
      {
        timeout: 300_000,
        stdio: 'ignore',
      },
    );
    await lab.psql(
      b.conn,
      "CREATE TABLE only_on_b (note text); INSERT INTO only_on_b VALUES ('b before restore')",
    );

    // node-a's data set is declared in the console (the issue's check), node-b's through the API.
    const browser = new Browser(h().consoleUrl);
    assert.equal((await browser.login('admin', CONSOLE_PASSWORD)).status, 303);
    const csrf = await browser.csrfToken();
    const commands = (server: PgServer, port: number): { stopCommand: string; startCommand: string } => ({
      stopCommand: `runuser -u postgres -- ${pgctl} -D ${server.dataDir} -m fast -w -t 60 stop`,
      startCommand: `runuser -u postgres -- ${pgctl} -D ${server.dataDir} -l ${server.dataDir}.log -w -t 60 -o "-k ${server.conn.host} -c listen_addresses= -p ${port}" start`,
    });
    const declared = await browser.post('/snapshots/data/sets', {
      _csrf: csrf,
      name: 'pg-a',
      kind: 'postgresql',
      path: a.dataDir,
      on: 'node',
      target: 'node-a',
      host: a.conn.host,
      port: String(PG_A),
      user: 'postgres',
      password: 'not-needed-trust',
      ...commands(a, PG_A),
    });
    assert.equal(declared.status, 303, await declared.text());
    const pgA = (await api(target, 'GET', '/data-sets/pg-a')).json.dataSet;
    assert.equal(pgA.hasPassword, true);
    assert.deepEqual(pgA.nodes, ['node-a']);
    const reply = await api(target, 'POST', '/data-sets', {
      name: 'pg-b',
      node: 'node-b',
      kind: 'postgresql',
      path: b.dataDir,
      connection: { host: b.conn.host, port: PG_B, user: 'postgres', password: 'not-needed-trust' },
      ...commands(b, PG_B),
    });
    assert.equal(reply.status, 201, reply.text);
    assert.equal(
      JSON.stringify(reply.json).includes('not-needed-trust'),
      false,
      'the password never comes back',
    );

    // Load: pgbench (logged per transaction) and a probe that records, after each commit, the server's
    // flushed WAL position: a position ≥ the commit record's end.
    // pgbench runs back to back in 3-second runs: a run's per-transaction log is complete only when it
    // exits, and gaps are measured within runs (a restart is not a stall).
    const runs: string[] = [];
    let benchStop = false;
    const benching = (async () => {
      for (let i = 0; !benchStop && i < 400; i++) {
        const run = `pgb${i}`;
        runs.push(run);
        const child = lab.spawnClient('pgbench', [
          '-n',
          '-c',
          '2',
          '-j',
          '2',
          '-T',
          '3',
          '-l',
          `--log-prefix=${join(lab.base, run)}`,
          '-h',
          a.conn.host,
          '-p',
          String(PG_A),
          '-U',
          'postgres',
          'postgres',
        ]);
        const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)));
        assert.equal(code, 0, 'pgbench run failed');
      }
    })();
    const { acked, stop: stopProbe } = startPgProbe(a.conn);
    await sleep(2000);

    // The console's live progress, open before the snapshot starts (as a page open on the list would be).
    const progress = await progressStream(browser);
    // A failed assertion must not leave the load running or the stream open (the run would not end).
    t.after(async () => {
      benchStop = true;
      await progress.close();
    });
    const t0 = Date.now();
    // "Snapshot now" in the console answers at once with the running snapshot's page; its progress and
    // its end arrive on the stream.
    const now = await browser.post(`/snapshots/data/sets/${pgA.id}/snapshot`, {
      _csrf: csrf,
      node: 'node-a',
    });
    assert.equal(now.status, 303, await now.text());
    const page = now.headers.get('location') ?? '';
    assert.match(page, /^\/snapshots\/data\/\d+$/);
    const id = Number(page.split('/').at(-1));
    const ended = await progress.until((o) => o.snapshotId === id && o.state !== 'running', 600_000);
    const t1 = Date.now();
    assert.equal(ended.state, 'ok', ended.message ?? '');
    const snap = await finished(String(id), 30_000);
    const mine = progress.seen.filter((x) => x.op.op === 'snapshot' && x.op.snapshotId === id);
    const live = mine.filter((x) => x.op.state === 'running' && x.op.bytes > 0);
    const endedAt = mine.find((x) => x.op.state === 'ok')!.at;
    assert.ok(
      live.length >= 2 && live.every((x) => x.at < endedAt),
      `progress arrived while the snapshot ran: ${mine.map((x) => x.op.text).join(' | ')}`,
    );
    assert.ok(
      live.some((x) => x.op.rate !== null && x.op.rate > 0),
      'a transfer rate was reported',
    );
    assert.ok(
      live.every((x, i) => i === 0 || x.op.bytes >= live[i - 1]!.op.bytes) &&
        live.at(-1)!.op.bytes <= (snap.bytes ?? 0),
      'bytes only grow, up to the archive size',
    );
    // The first snapshot of this data set on this node: no size to expect, so no ETA invented.
    assert.ok(live.every((x) => x.op.expectedBytes === null && x.op.etaSeconds === null));
    console.log(`# console progress of the snapshot: ${live.map((x) => x.op.text).join(' | ')}`);
    const listed = await (await browser.get('/snapshots/data?node=node-a')).text();
    assert.ok(listed.includes(snap.name), 'the console lists the snapshot for node-a');
    assert.ok(!(await (await browser.get('/snapshots/data?node=node-b')).text()).includes(snap.name));
    const detail = await (await browser.get(page)).text();
    assert.ok(detail.includes(snap.position?.walEnd ?? '?'), 'the snapshot page shows its WAL end point');
    pgSnapshot = snap;
    await sleep(1000); // writes go on after the snapshot
    await stopProbe();
    benchStop = true;
    await benching;

    assert.equal(snap.status, 'ok');
    assert.equal(snap.method, 'pg_basebackup');
    assert.match(snap.sha256 ?? '', /^[0-9a-f]{64}$/);
    assert.ok(
      snap.position?.walStart && snap.position.walEnd,
      `WAL positions recorded: ${JSON.stringify(snap.position)}`,
    );
    assert.ok((snap.files ?? 0) > 100, 'the archive lists the data directory');
    assert.equal(snap.writerStallMs, null, 'pg_basebackup takes no lock');
    const end = lsn(snap.position.walEnd);
    const mustHave = acked.filter((x) => x.flushed <= end);
    const during = acked.filter((x) => x.at >= t0 && x.at <= t1).length;
    const perRun = runs.map((r) => pgbenchCompletions(lab.base, r));
    const pgbenchDuring = perRun.flat().filter((t) => t >= t0 && t <= t1).length;
    const stall = Math.max(0, ...perRun.map((c) => maxGapDuring(c, t0, t1)));
    const baseline = Math.max(0, ...perRun.map((c) => maxGapDuring(c, t0 - 2000, t0 - 1)));
    const probeStall = maxGapDuring(
      acked.map((x) => x.at),
      t0,
      t1,
    );
    console.log(
      `# PostgreSQL (pgbench scale ${PG_SCALE}): snapshot ${snap.durationMs} ms over SSH, ${snap.bytes} bytes gzip of ${snap.rawBytes} (${snap.files} files), ` +
        `WAL ${snap.position.walStart} → ${snap.position.walEnd}; ${pgbenchDuring} pgbench and ${during} probe commits during it; ` +
        `longest commit stall: pgbench ${stall.toFixed(1)} ms (baseline ${baseline.toFixed(1)} ms before), probe ${probeStall.toFixed(1)} ms`,
    );
    assert.ok(pgbenchDuring > 0, 'writers were not blocked while the snapshot ran');
    assert.ok(
      mustHave.length > 0 && mustHave.length < acked.length,
      'some probe commits fall before the end point, some after',
    );

    // The listing and diff of one snapshot.
    const diff = await api(target, 'GET', `/data-snapshots/${snap.name}/diff`);
    assert.equal(diff.status, 200);
    assert.equal(diff.json.to, null);
    assert.equal(diff.json.diff.added.length, snap.files);

    const refused = await api(target, 'POST', `/data-snapshots/${snap.name}/restore`, {
      confirm: 'wrong',
      dataSet: 'pg-b',
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error.code, 'SNAPSHOT_CONFIRMATION_REQUIRED');

    const restoreAsked = Date.now();
    const restore = await api(
      target,
      'POST',
      `/data-snapshots/${snap.name}/restore`,
      { confirm: snap.name, dataSet: 'pg-b', node: 'node-b' },
      { timeoutMs: 600_000 },
    );
    const restoreAnswered = Date.now();
    assert.equal(restore.status, 200, restore.text);
    // The restore's progress: the archive's size known in advance, steps as the node reports them.
    const restoring = progress.seen.filter(
      (x) => x.op.op === 'restore' && x.op.snapshotId === snap.id && x.at >= restoreAsked,
    );
    await progress.close();
    assert.ok(
      restoring.some((x) => x.op.state === 'running' && x.at < restoreAnswered),
      `restore progress arrived before it ended: ${restoring.map((x) => x.op.text).join(' | ')}`,
    );
    assert.ok(restoring.every((x) => x.op.expectedBytes === snap.bytes));
    console.log(`# console progress of the restore: ${restoring.map((x) => x.op.text).join(' | ')}`);
    assert.equal(restore.json.target.node, 'node-b');
    assert.ok(restore.json.safety, 'a safety snapshot of node-b came first');
    assert.equal(restore.json.safety.dataSetName, 'pg-b');
    assert.deepEqual(restore.json.steps, ['stopped', 'laid', 'started']);
    assert.match(restore.json.checks.join(' '), /pg_amcheck/);

    const present = new Set(
      (await lab.psql(b.conn, 'SELECT id FROM probe')).split('\n').filter(Boolean).map(Number),
    );
    const missing = mustHave.filter((x) => !present.has(x.id));
    assert.deepEqual(
      missing.slice(0, 5),
      [],
      `${missing.length} probe rows committed before the WAL end point are missing`,
    );
    const sums = (
      await lab.psql(
        b.conn,
        'SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT sum(bbalance) FROM pgbench_branches), (SELECT coalesce(sum(delta), 0) FROM pgbench_history)',
      )
    )
      .trim()
      .split('|');
    assert.equal(new Set(sums).size, 1, `pgbench balances disagree after restore: ${sums.join(' ')}`);
    const onlyB = await lab.psql(b.conn, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_on_b'");
    assert.equal(onlyB.trim(), '0', "node-b now holds node-a's data, not its own");
    console.log(
      `# restored onto node-b in ${restore.json.durationMs} ms (safety snapshot ${restore.json.safety.name}, ${restore.json.safety.bytes} bytes): ` +
        `${mustHave.length} probe commits at or before LSN ${snap.position.walEnd} all present (${present.size} rows in the copy, ${acked.length} committed in total)`,
    );

    // The safety snapshot holds node-b's previous data and can be deleted.
    const safetyFiles = await api(target, 'GET', `/data-snapshots/${restore.json.safety.name}`);
    assert.ok(safetyFiles.json.files.length > 100);
    const list = await api(target, 'GET', '/data-snapshots?node=node-b');
    assert.deepEqual(
      list.json.snapshots.map((s: DataSnapshotRecord) => s.name),
      [restore.json.safety.name],
    );
    const del = await api(target, 'DELETE', `/data-snapshots/${restore.json.safety.name}`);
    assert.equal(del.status, 204);
  });

  it('refuses to restore a snapshot with a flipped byte, naming the file, before touching the node', async () => {
    assert.ok(pgSnapshot && pgLab && pgB, 'the PostgreSQL test ran');
    const lab = pgLab;
    const b = pgB;
    const archive = join(dir, 'master', 'data-snapshots', pgSnapshot.name, 'data.tar.gz');
    const bytes = readFileSync(archive);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] ?? 0) ^ 0x01;
    writeFileSync(archive, bytes);
    await lab.psql(
      b.conn,
      'CREATE TABLE marker_after_restore (x int); INSERT INTO marker_after_restore VALUES (1)',
    );
    const before = (await api(target, 'GET', '/data-snapshots')).json.snapshots.length;
    const r = await api(target, 'POST', `/data-snapshots/${pgSnapshot.name}/restore`, {
      confirm: pgSnapshot.name,
      dataSet: 'pg-b',
      node: 'node-b',
    });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json.error.code, 'DATA_SNAPSHOT_CORRUPT');
    assert.ok(r.json.error.message.includes(archive), `the message names the file: ${r.json.error.message}`);
    console.log(`# flipped byte at offset ${at}: ${r.json.error.message}`);
    assert.equal(
      (await api(target, 'GET', '/data-snapshots')).json.snapshots.length,
      before,
      'no safety snapshot was taken',
    );
    assert.equal(
      (await lab.psql(b.conn, 'SELECT count(*) FROM marker_after_restore')).trim(),
      '1',
      "node-b's data is untouched",
    );
    await lab.cleanup();
  });

  it('PostgreSQL on btrfs: one subvolume snapshot, no lock; every commit flushed before it is restored', async () => {
    const lab = new PgLab();
    const mnt = join(dir, 'pg-btrfs');
    const img = join(dir, 'pg-btrfs.img');
    mkdirSync(mnt);
    let mounted = false;
    try {
      execFileSync('truncate', ['-s', '2G', img]);
      execFileSync('mkfs.btrfs', ['-q', img]);
      execFileSync('mount', ['-o', 'loop', img, mnt]);
      mounted = true;
      execFileSync('btrfs', ['subvolume', 'create', join(mnt, 'vol')], { stdio: 'ignore' });
      chmodSync(mnt, 0o755);
      const { uid, gid } = pgIds();
      execFileSync('chown', [`${uid}:${gid}`, join(mnt, 'vol')]);
      const dataDir = join(mnt, 'vol', 'pgdata');
      await asPg(join(lab.bin, 'initdb'), [
        '-D',
        dataDir,
        '-A',
        'trust',
        '-U',
        'postgres',
        '--no-sync',
        '--locale=C',
      ]);
      const a = await lab.start(dataDir, PG_A + 2);
      const c = await lab.start(await lab.initdb('c'), PG_A + 3);
      await lab.psql(a.conn, 'CREATE TABLE probe (id bigserial PRIMARY KEY)');
      const pgctl = join(lab.bin, 'pg_ctl');
      for (const [name, node, server, port] of [
        ['pgfs-a', 'node-a', a, PG_A + 2],
        ['pgfs-c', 'node-b', c, PG_A + 3],
      ] as const) {
        const r = await api(target, 'POST', '/data-sets', {
          name,
          node,
          kind: 'postgresql',
          path: server.dataDir,
          connection: { host: server.conn.host, port, user: 'postgres' },
          stopCommand: `runuser -u postgres -- ${pgctl} -D ${server.dataDir} -m fast -w -t 60 stop`,
          startCommand: `runuser -u postgres -- ${pgctl} -D ${server.dataDir} -l ${lab.path(`${name}.log`)} -w -t 60 -o "-k ${server.conn.host} -c listen_addresses= -p ${port}" start`,
        });
        assert.equal(r.status, 201, r.text);
      }
      const { acked, stop: stopProbe } = startPgProbe(a.conn);
      await sleep(1000);
      const t0 = Date.now();
      const reply = await api(target, 'POST', '/data-sets/pgfs-a/snapshots', {}, { timeoutMs: 300_000 });
      const t1 = Date.now();
      await sleep(500);
      await stopProbe();
      assert.equal(reply.status, 201, reply.text);
      const snap = reply.json.snapshot as DataSnapshotRecord;
      assert.equal(snap.method, 'btrfs-snapshot');
      assert.ok(snap.position?.walEnd, 'the flush LSN before the snapshot is recorded');
      const end = lsn(snap.position.walEnd);
      const mustHave = acked.filter((x) => x.flushed <= end);
      assert.ok(mustHave.length > 0 && mustHave.length < acked.length);
      const restore = await api(
        target,
        'POST',
        `/data-snapshots/${snap.name}/restore`,
        { confirm: snap.name, dataSet: 'pgfs-c', node: 'node-b', safety: false },
        { timeoutMs: 300_000 },
      );
      assert.equal(restore.status, 200, restore.text);
      assert.equal(restore.json.safety, null);
      assert.match(restore.json.checks.join(' '), /pg_amcheck/);
      const present = new Set(
        (await lab.psql(c.conn, 'SELECT id FROM probe')).split('\n').filter(Boolean).map(Number),
      );
      const missing = mustHave.filter((x) => !present.has(x.id));
      assert.deepEqual(
        missing.slice(0, 5),
        [],
        `${missing.length} commits flushed before the snapshot are missing`,
      );
      console.log(
        `# PostgreSQL on btrfs: snapshot ${snap.durationMs} ms (${snap.bytes} bytes gzip), flush LSN ${snap.position.walEnd}; probe max gap ${maxGapDuring(
          acked.map((x) => x.at),
          t0,
          t1,
        ).toFixed(1)} ms; ` +
          `${mustHave.length} commits flushed before it all present after restore (${present.size} rows)`,
      );
      const left = execFileSync('btrfs', ['subvolume', 'list', mnt]).toString();
      assert.doesNotMatch(left, /corral-snap/, 'the btrfs snapshot was removed after the copy');
    } finally {
      await lab.cleanup();
      if (mounted) execFileSync('umount', [mnt]);
    }
  });

  it('PostgreSQL on LVM (in a VM): lvcreate -s held only while set up, read-only mount; every commit flushed before it is restored', async () => {
    requirePeers('qemu-system-x86_64', 'busybox', 'cpio', 'lvcreate', '/usr/sbin/sshd');
    const lab = new PgLab();
    const base = join(dir, 'lvm');
    mkdirSync(join(base, 'mnt'), { recursive: true });
    chmodSync(base, 0o755);
    // Unique per run: the VG's name, the forwarded ports (loopback only).
    const vg = `corral${process.pid}`;
    const sshHost = '127.0.0.3';
    const pgPort = PG_A + 5;
    const dataDir = join(base, 'mnt', 'pgdata');
    const seed = await lab.initdb('lvm-seed');
    // The probe reaches the VM's server through QEMU's forward: from inside, it comes from 10.0.2.2.
    appendFileSync(join(seed, 'pg_hba.conf'), 'host all all 0.0.0.0/0 trust\n');
    const disk = join(base, 'disk.img');
    execFileSync('truncate', ['-s', '1G', disk]);
    const pgctl = join(lab.bin, 'pg_ctl');
    const sshdConf = join(base, 'sshd.conf');
    writeFileSync(
      sshdConf,
      [
        'Port 22',
        `HostKey ${join(dir, 'hostkey')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'LogLevel ERROR',
      ].join('\n') + '\n',
    );
    const stage2 = join(base, 'stage2.sh');
    writeFileSync(
      stage2,
      `#!/bin/bash
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
ip link set lo up && ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
mkdir -p /dev/shm && mount -t tmpfs -o mode=1777 shm /dev/shm
# No udev in this VM: LVM makes its device nodes itself; the root file system is read-only, so no
# metadata backups under /etc/lvm.
mount -t tmpfs -o mode=755 lvm /etc/lvm
printf 'activation {\\n udev_sync = 0\\n udev_rules = 0\\n monitoring = 0\\n}\\ndevices {\\n obtain_device_list_from_udev = 0\\n}\\nbackup {\\n backup = 0\\n archive = 0\\n}\\n' > /etc/lvm/lvm.conf
mkdir -p /run/lock /run/sshd /run/postgresql && chown postgres:postgres /run/postgresql
set -e
pvcreate -q /dev/vda
vgcreate -q ${vg} /dev/vda
lvcreate -q -y -L 384M -n data ${vg}
mkfs.ext4 -q /dev/${vg}/data
mount /dev/${vg}/data ${join(base, 'mnt')}
cp -a ${seed} ${dataDir}
chown -R postgres:postgres ${dataDir}
runuser -u postgres -- ${pgctl} -D ${dataDir} -l /run/postgresql/pg.log -w -t 180 -o "-c listen_addresses=* -p 5432 -k /run/postgresql -c fsync=on" start || { cat /run/postgresql/pg.log; exit 1; }
# sshd forks once it listens: "ready" means the node answers.
/usr/sbin/sshd -f ${sshdConf}
echo "corral-vm: ready"
exec sleep infinity
`,
      { mode: 0o755 },
    );
    const vm = await startLvmVm({
      dir: base,
      shares: [dir, lab.base],
      stage2,
      disk,
      forwards: [`tcp:${sshHost}:${SSH_PORT}-:22`, `tcp:127.0.0.1:${pgPort}-:5432`],
    });
    try {
      await vm.waitFor('corral-vm: ready', 400_000);
      h().repos.store.write((journal) =>
        h().repos.nodes.insertIn(journal, {
          mac: '52:54:00:17:00:0c',
          name: 'node-lvm',
          seqNo: 3,
          state: 'deployed',
          ip: sshHost,
        }),
      );
      const c = await lab.start(await lab.initdb('lvm-c'), PG_A + 4);
      const conn = { host: '127.0.0.1', port: pgPort, user: 'postgres', database: 'postgres' };
      await lab.psql(conn, 'CREATE TABLE probe (id bigserial PRIMARY KEY)');
      for (const body of [
        {
          name: 'pglvm',
          node: 'node-lvm',
          kind: 'postgresql',
          path: dataDir,
          connection: { host: '/run/postgresql', port: 5432, user: 'postgres' },
        },
        {
          name: 'pglvm-c',
          node: 'node-b',
          kind: 'postgresql',
          path: c.dataDir,
          connection: { host: c.conn.host, port: PG_A + 4, user: 'postgres' },
          stopCommand: `runuser -u postgres -- ${pgctl} -D ${c.dataDir} -m fast -w -t 60 stop`,
          startCommand: `runuser -u postgres -- ${pgctl} -D ${c.dataDir} -l ${lab.path('pglvm-c.log')} -w -t 60 -o "-k ${c.conn.host} -c listen_addresses= -p ${PG_A + 4}" start`,
        },
      ]) {
        const r = await api(target, 'POST', '/data-sets', body);
        assert.equal(r.status, 201, r.text);
      }
      const { acked, stop: stopProbe } = startPgProbe(conn);
      await sleep(3000);
      const t0 = Date.now();
      const reply = await api(target, 'POST', '/data-sets/pglvm/snapshots', {}, { timeoutMs: 600_000 });
      const t1 = Date.now();
      await sleep(1000);
      await stopProbe();
      assert.equal(reply.status, 201, reply.text);
      const snap = reply.json.snapshot as DataSnapshotRecord;
      assert.equal(snap.method, 'lvm-snapshot');
      assert.ok(snap.position?.walEnd, 'the flush LSN before the snapshot is recorded');
      assert.equal(typeof snap.writerStallMs, 'number', 'the hold (lvcreate) is measured on the node');
      const hold = snap.writerStallMs!;
      const gap = maxGapDuring(
        acked.map((x) => x.at),
        t0,
        t1,
      );
      const baseline = maxGapDuring(
        acked.map((x) => x.at),
        t0 - 3000,
        t0 - 1,
      );
      const during = acked.filter((x) => x.at > t0 && x.at < t1).length;
      console.log(
        `# PostgreSQL on LVM (VM, TCG): snapshot ${snap.durationMs} ms (${snap.bytes} bytes gzip), lvcreate hold ${hold} ms; ` +
          `probe: ${during} commits during the snapshot, longest gap ${gap.toFixed(0)} ms (${baseline.toFixed(0)} ms in the 3 s before)`,
      );
      // Writers wait only while lvcreate sets the snapshot up, never for the copy: the longest commit
      // gap fits in the hold plus the writer's own jitter, and is far shorter than the snapshot.
      assert.ok(
        gap <= hold + baseline + 1000,
        `longest commit gap ${gap} ms > hold ${hold} ms + jitter ${baseline} ms + 1 s`,
      );
      assert.ok(gap < (snap.durationMs ?? 0) / 2, 'writers went on during the copy');
      assert.ok(during > 10, `${during} commits while the snapshot ran`);
      const end = lsn(snap.position.walEnd);
      const mustHave = acked.filter((x) => x.flushed <= end);
      assert.ok(mustHave.length > 0 && mustHave.length < acked.length);
      const restore = await api(
        target,
        'POST',
        `/data-snapshots/${snap.name}/restore`,
        { confirm: snap.name, dataSet: 'pglvm-c', node: 'node-b', safety: false },
        { timeoutMs: 300_000 },
      );
      assert.equal(restore.status, 200, restore.text);
      assert.match(restore.json.checks.join(' '), /pg_amcheck/);
      const present = new Set(
        (await lab.psql(c.conn, 'SELECT id FROM probe')).split('\n').filter(Boolean).map(Number),
      );
      const missing = mustHave.filter((x) => !present.has(x.id));
      assert.deepEqual(
        missing.slice(0, 5),
        [],
        `${missing.length} commits flushed before the snapshot are missing`,
      );
      console.log(
        `# ${mustHave.length} commits flushed at or before ${snap.position.walEnd} all present after restore (${present.size} rows, ${acked.length} committed)`,
      );
      // The snapshot volume and its mount are gone (the node script's exit trap).
      const left = execFileSync('ssh', [
        '-i',
        masterKeyPath(h().masterDataDir),
        '-p',
        String(SSH_PORT),
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-o',
        'LogLevel=ERROR',
        `root@${sshHost}`,
        `lvs --noheadings -o lv_name ${vg}; grep -c /lvsnap /proc/mounts || true`,
      ]).toString();
      assert.deepEqual(left.split(/\s+/).filter(Boolean), ['data', '0'], `left on the node: ${left}`);
    } finally {
      await vm.stop();
      await lab.cleanup();
    }
  });

  it('a file tree: tar snapshots, their diff (files and sizes), restore onto node-b after a safety snapshot', async () => {
    const a = join(dir, 'files-a');
    const b = join(dir, 'files-b');
    mkdirSync(join(a, 'sub'), { recursive: true });
    mkdirSync(b);
    writeFileSync(join(a, 'sub', 'b.txt'), '0123456789');
    writeFileSync(join(a, 'c.bin'), Buffer.alloc(1000, 1));
    writeFileSync(join(b, 'only-on-b.txt'), 'b');
    for (const [name, node, path] of [
      ['fs-a', 'node-a', a],
      ['fs-b', 'node-b', b],
    ] as const) {
      const r = await api(target, 'POST', '/data-sets', { name, node, kind: 'files', path });
      assert.equal(r.status, 201, r.text);
    }
    const first = await api(target, 'POST', '/data-sets/fs-a/snapshots', {});
    assert.equal(first.status, 201, first.text);
    assert.equal(first.json.snapshot.method, 'tar');
    rmSync(join(a, 'sub', 'b.txt'));
    writeFileSync(join(a, 'c.bin'), Buffer.alloc(2000, 2));
    writeFileSync(join(a, 'd.txt'), 'new');
    const second = await api(target, 'POST', '/data-sets/fs-a/snapshots', {});
    assert.equal(second.status, 201, second.text);
    const diff = await api(target, 'GET', `/data-snapshots/${second.json.snapshot.name}/diff`);
    assert.equal(diff.json.to.name, first.json.snapshot.name, 'against the previous snapshot by default');
    assert.deepEqual(diff.json.diff, {
      added: [{ path: 'd.txt', size: 3 }],
      removed: [{ path: 'sub/b.txt', size: 10 }],
      changed: [{ path: 'c.bin', from: 1000, to: 2000 }],
      same: 0,
    });
    const name = second.json.snapshot.name as string;
    const restore = await api(target, 'POST', `/data-snapshots/${name}/restore`, {
      confirm: name,
      dataSet: 'fs-b',
    });
    assert.equal(restore.status, 200, restore.text);
    assert.equal(restore.json.target.node, 'node-b');
    assert.deepEqual(readdirSync(b).sort(), ['c.bin', 'd.txt', 'sub']);
    assert.equal(readFileSync(join(b, 'c.bin')).length, 2000);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith('files-b.corral-old')),
      [],
      'the previous tree, moved aside, is removed once the restore succeeded',
    );
    const safety = await api(target, 'GET', `/data-snapshots/${restore.json.safety.name}`);
    assert.deepEqual(
      safety.json.files,
      [{ path: 'only-on-b.txt', size: 1 }],
      "the safety snapshot holds node-b's tree",
    );
  });

  it('in Chromium: Snapshot now shows the running snapshot live (bytes, rate), then its finished page', async () => {
    requirePeers(CHROMIUM);
    const data = join(dir, 'live');
    mkdirSync(data);
    // Random bytes: gzip cannot shrink them, so the transfer lasts long enough to watch (≈100 MiB).
    execFileSync('bash', ['-c', `head -c 100000000 /dev/urandom > ${join(data, 'blob')}`]);
    const chromium = await launchChromium();
    try {
      const page = await (await chromium.newContext()).newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`${h().consoleUrl}/login`);
      await page.fill('#user', 'admin');
      await page.fill('#password', CONSOLE_PASSWORD);
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      await page.goto(`${h().consoleUrl}/snapshots/data`);
      await page.fill('input[name=name]', 'live');
      await page.selectOption('select[name=kind]', 'files');
      await page.fill('input[name=path]', data);
      await page.fill('input[name=target]', 'node-a');
      await Promise.all([
        page.waitForNavigation(),
        page.click('form[action="/snapshots/data/sets"] button[type=submit]'),
      ]);
      await Promise.all([page.waitForNavigation(), page.click('tr[data-data-set=live] button')]);
      assert.match(page.url(), /\/snapshots\/data\/\d+$/);
      let reloaded = false;
      page.on('load', () => (reloaded = true));
      const panel: string[] = [];
      for (const t0 = Date.now(); !reloaded && Date.now() - t0 < 300_000;) {
        const text = await page
          .locator('.progress-list')
          .innerText()
          .catch(() => '');
        if (text && text !== panel.at(-1)) panel.push(text);
        await sleep(300);
      }
      assert.ok(reloaded, `the page reloaded when the snapshot ended: ${panel.join(' | ')}`);
      await page.waitForLoadState();
      const live = panel.filter((t) => /MiB\/s/.test(t) && !/done/.test(t));
      assert.ok(live.length >= 2, `the panel changed while the snapshot ran: ${panel.join(' | ')}`);
      assert.match(await page.locator('dl.facts').innerText(), /Status\s+ok/);
      assert.deepEqual(errors, []);
      console.log(`# Chromium, Running panel: ${live.join(' | ')}`);
    } finally {
      await chromium.close();
    }
  });

  it('SQLite in the console: declare, snapshot now under writes, restore onto node-b with the name typed back', async () => {
    const browser = new Browser(h().consoleUrl);
    assert.equal((await browser.login('admin', CONSOLE_PASSWORD)).status, 303);
    const csrf = await browser.csrfToken();
    const paths = { a: join(dir, 'sqlite-a', 'app.db'), b: join(dir, 'sqlite-b', 'app.db') };
    mkdirSync(join(dir, 'sqlite-a'));
    mkdirSync(join(dir, 'sqlite-b'));
    const live = new Database(paths.a);
    live.pragma('journal_mode = WAL');
    live.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, at INTEGER); INSERT INTO t (at) VALUES (0)');
    const other = new Database(paths.b);
    other.exec('CREATE TABLE only_on_b (x); INSERT INTO only_on_b VALUES (1)');
    other.close();
    for (const [name, node, path] of [
      ['sq-a', 'node-a', paths.a],
      ['sq-b', 'node-b', paths.b],
    ] as const) {
      const r = await browser.post('/snapshots/data/sets', {
        _csrf: csrf,
        name,
        kind: 'sqlite',
        path,
        on: 'node',
        target: node,
      });
      assert.equal(r.status, 303, await r.text());
    }
    const bad = await browser.post('/snapshots/data/sets', {
      _csrf: csrf,
      name: 'bad',
      kind: 'sqlite',
      path: 'relative',
      on: 'node',
      target: 'node-a',
    });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /path: must be an absolute path/);

    const insert = live.prepare('INSERT INTO t (at) VALUES (?)');
    const writer = setInterval(() => insert.run(Date.now()), 2);
    const sqA = (await api(target, 'GET', '/data-sets/sq-a')).json.dataSet;
    const before = (live.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
    const now = await browser.post(`/snapshots/data/sets/${sqA.id}/snapshot`, {
      _csrf: csrf,
      node: 'node-a',
    });
    assert.equal(now.status, 303, await now.text());
    const page = now.headers.get('location') ?? '';
    const snap = await finished(page.split('/').at(-1) ?? '', 120_000);
    clearInterval(writer);
    assert.equal(snap.method, 'sqlite-backup');
    assert.equal(snap.files, 1);
    const after = (live.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
    live.close();
    assert.ok(after > before, 'the writer committed while the snapshot ran');

    const wrong = await browser.post(`${page}/restore`, {
      _csrf: csrf,
      confirm: 'sq-a',
      target: 'sq-b@node-b',
    });
    assert.equal(wrong.status, 400);
    assert.match(await wrong.text(), /Type the snapshot&#x27;s name|Type the snapshot's name/);
    const done = await browser.post(`${page}/restore`, {
      _csrf: csrf,
      confirm: snap.name,
      target: 'sq-b@node-b',
    });
    const html = await done.text();
    assert.equal(done.status, 200, html);
    assert.match(html, /Restored into sq-b on node-b/);
    assert.match(html, /PRAGMA integrity_check: ok/);
    const restored = new Database(paths.b, { readonly: true });
    const n = (restored.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
    const onlyB = restored
      .prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'only_on_b'")
      .get() as { n: number };
    restored.close();
    assert.ok(
      n >= before && n <= after,
      `restored rows ${n} between ${before} (before) and ${after} (after)`,
    );
    assert.equal(onlyB.n, 0, "node-b's file is node-a's now");
    // A schedule: one scheduled snapshot per due period, none again within the same hour.
    const patched = await api(target, 'PATCH', '/data-sets/sq-a', {
      schedule: { hourly: true, daily: false, weekly: false },
    });
    assert.equal(patched.status, 200, patched.text);
    await h().feature.service.tick();
    await h().feature.service.tick();
    const scheduled = (await api(target, 'GET', '/data-snapshots?dataSet=sq-a')).json.snapshots.filter(
      (x: DataSnapshotRecord) => x.snapshotKind === 'scheduled',
    );
    assert.equal(scheduled.length, 1, 'one scheduled snapshot for the hour');
    const preview = await api(target, 'POST', '/data-sets/sq-a/retention/preview', {
      retention: { keepLast: 0, keepHourly: 0, keepDaily: 0, keepWeekly: 0 },
    });
    assert.deepEqual(
      preview.json.remove.map((r: { id: string }) => r.id),
      [scheduled[0].name],
      'retention would remove the scheduled snapshot, never the manual one',
    );
    console.log(
      `# SQLite: snapshot ${snap.durationMs} ms under a writer; restored ${n} rows (${before} before the snapshot, ${after} after) with integrity_check ok`,
    );
  });

  it('MariaDB under continuous writes: read lock only for a btrfs snapshot; restore to node-b with every commit before the binlog position', async () => {
    const base = join(dir, 'maria');
    mkdirSync(base, { recursive: true, mode: 0o755 });
    // node-a's data on btrfs (a sparse loop-mounted image), node-b's on the plain temp file system.
    const img = join(base, 'btrfs.img');
    const mnt = join(base, 'mnt');
    mkdirSync(mnt);
    let mounted = false;
    let a: MariaServer | undefined;
    let b: MariaServer | undefined;
    try {
      execFileSync('truncate', ['-s', '3G', img]);
      execFileSync('mkfs.btrfs', ['-q', img]);
      execFileSync('mount', ['-o', 'loop', img, mnt]);
      mounted = true;
      execFileSync('btrfs', ['subvolume', 'create', join(mnt, 'vol')], { stdio: 'ignore' });
      chmodSync(mnt, 0o755);
      chmodSync(join(mnt, 'vol'), 0o755);
      a = await installMaria(join(mnt, 'vol', 'mysql'), join(base, 'run-a'));
      b = await installMaria(join(base, 'b-data'), join(base, 'run-b'));
      await startMaria(a);
      await startMaria(b);
      await mariaQuery(
        a,
        'CREATE DATABASE app; CREATE TABLE app.probe (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB; ' +
          'CREATE TABLE app.bulk (id BIGINT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(200)) ENGINE=InnoDB; ' +
          "INSERT INTO app.bulk (pad) SELECT REPEAT('x', 200) FROM app.seq_1_to_100000",
      );
      await mariaQuery(b, 'CREATE DATABASE only_on_b');
      for (const [name, node, s] of [
        ['my-a', 'node-a', a],
        ['my-b', 'node-b', b],
      ] as const) {
        const reply = await api(target, 'POST', '/data-sets', {
          name,
          node,
          kind: 'mysql',
          path: s.dataDir,
          connection: { host: s.socket, user: 'root' },
          stopCommand: s.stopCommand,
          startCommand: s.startCommand,
        });
        assert.equal(reply.status, 201, reply.text);
      }

      // Writers: a probe (one row per transaction, then the binlog position, which is past its commit)
      // and a bulk writer (100-row transactions).
      const probe = new MariaSession(a);
      const bulk = new MariaSession(a);
      const acked: { id: number; file: string; pos: number; at: number }[] = [];
      let stop = false;
      const probing = (async () => {
        while (!stop) {
          const [[id = ''] = []] = await probe.query(
            'INSERT INTO app.probe (v) VALUES (1); SELECT LAST_INSERT_ID()',
          );
          const [[file = '', pos = '0'] = []] = await probe.query('SHOW MASTER STATUS');
          acked.push({ id: Number(id), file, pos: Number(pos), at: Date.now() });
        }
      })();
      const bulkDone: number[] = [];
      const bulking = (async () => {
        while (!stop) {
          await bulk.query("INSERT INTO app.bulk (pad) SELECT REPEAT('y', 200) FROM app.seq_1_to_100");
          bulkDone.push(Date.now());
        }
      })();
      await sleep(2000);
      const t0 = Date.now();
      const reply = await api(target, 'POST', '/data-sets/my-a/snapshots', {}, { timeoutMs: 600_000 });
      const t1 = Date.now();
      assert.equal(reply.status, 201, reply.text);
      await sleep(1000);
      stop = true;
      await Promise.all([probing, bulking]);
      probe.close();
      bulk.close();
      const snap = reply.json.snapshot as DataSnapshotRecord;
      assert.equal(snap.method, 'flush-lock+btrfs-snapshot');
      assert.ok(
        snap.position?.binlogFile && snap.position.binlogPos,
        `binlog position recorded: ${JSON.stringify(snap.position)}`,
      );
      assert.equal(typeof snap.writerStallMs, 'number');
      const before = (x: { file: string; pos: number }): boolean =>
        x.file < (snap.position?.binlogFile ?? '') ||
        (x.file === snap.position?.binlogFile && x.pos <= (snap.position.binlogPos ?? 0));
      const mustHave = acked.filter(before);
      const probeStall = maxGapDuring(
        acked.map((x) => x.at),
        t0,
        t1,
      );
      const bulkStall = maxGapDuring(bulkDone, t0, t1);
      console.log(
        `# MariaDB: snapshot ${snap.durationMs} ms over SSH, ${snap.bytes} bytes gzip of ${snap.rawBytes} (${snap.files} files), binlog ${snap.position.binlogFile}:${snap.position.binlogPos}; ` +
          `read lock held ${snap.writerStallMs} ms (measured on the node); longest commit stall seen by writers: probe ${probeStall.toFixed(1)} ms, bulk ${bulkStall.toFixed(1)} ms`,
      );
      assert.ok(
        mustHave.length > 0 && mustHave.length < acked.length,
        'some commits before the position, some after',
      );

      const restore = await api(
        target,
        'POST',
        `/data-snapshots/${snap.name}/restore`,
        { confirm: snap.name, dataSet: 'my-b', node: 'node-b' },
        { timeoutMs: 600_000 },
      );
      assert.equal(restore.status, 200, restore.text);
      assert.equal(
        restore.json.safety.method,
        'mariadb-dump',
        'node-b is not on btrfs: its safety snapshot is a dump',
      );
      assert.ok(restore.json.safety.position?.binlogFile, 'the dump recorded its binlog position');
      assert.match(restore.json.checks.join(' '), /mysqlcheck/);
      const present = new Set(
        (await mariaQuery(b, 'SELECT id FROM app.probe')).split('\n').filter(Boolean).map(Number),
      );
      const missing = mustHave.filter((x) => !present.has(x.id));
      assert.deepEqual(
        missing.slice(0, 5),
        [],
        `${missing.length} rows committed before the binlog position are missing`,
      );
      assert.equal(
        (await mariaQuery(b, "SHOW DATABASES LIKE 'only_on_b'")).trim(),
        '',
        "node-b holds node-a's data now",
      );
      console.log(
        `# restored onto node-b in ${restore.json.durationMs} ms (safety: ${restore.json.safety.method}, ${restore.json.safety.bytes} bytes): ` +
          `${mustHave.length} rows committed at or before the binlog position all present (${present.size} in the copy, ${acked.length} committed)`,
      );
    } finally {
      if (a) await stopMaria(a);
      if (b) await stopMaria(b);
      if (mounted) {
        // The btrfs snapshot was deleted by the node script; a leftover would show here.
        const left = execFileSync('btrfs', ['subvolume', 'list', mnt]).toString();
        execFileSync('umount', [mnt]);
        assert.doesNotMatch(left, /corral-snap/, 'the btrfs snapshot was removed after the copy');
      }
    }
  });
});
