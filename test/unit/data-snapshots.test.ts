/**
 * Data snapshots of nodes (issue 17), the parts without a node: the tar lister (ustar prefix, GNU long
 * names, pax paths, base-256 sizes), listing diffs, the node script's report lines, its quoting and
 * syntax, and the service's declarations (validation, sealed password, coverage by role) and retention.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { diffListings, TarLister, tarNumber } from '../../master/data-snapshots/archive.js';
import { nodeCommand, shq } from '../../master/data-snapshots/node-script.js';
import { DataSnapshots, parseScriptLine, publicDataSet } from '../../master/data-snapshots/service.js';
import { DATA_SNAPSHOTS_CONFIG_DEFAULTS } from '../../master/data-snapshots/config.js';
import { HostKeyPins } from '../../master/remote/host-keys.js';
import { SecretBox } from '../../master/remote/secrets.js';
import { DataSetStore } from '../../master/store/data-sets.js';
import { isCorralError } from '../../master/util/errors.js';
import { silentLogger } from '../../master/util/logger.js';
import { installPath } from '../../master/util/paths.js';
import { tempRepos } from '../helpers/repos.js';

/** One 512-byte tar header (POSIX ustar layout), checksum filled in. */
function header(name: string, size: number, type: string, prefix = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.write(prefix, 345, 155, 'utf8');
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}
function data(bytes: Buffer): Buffer {
  return Buffer.concat([bytes, Buffer.alloc((512 - (bytes.length % 512)) % 512)]);
}

test('the tar lister reads ustar prefixes, GNU long names, pax paths and skips data', async () => {
  const long = `${'d/'.repeat(70)}file.dat`;
  const pax = Buffer.from(`${'30'} path=pax/named/file.txt\n`);
  const parts = [
    header('./PG_VERSION', 3, '0'),
    data(Buffer.from('15\n')),
    header('base', 0, '5'),
    header('1/2619', 1000, '0', 'base'),
    data(Buffer.alloc(1000, 7)),
    header('././@LongLink', long.length + 1, 'L'),
    data(Buffer.from(`${long}\0`)),
    header('truncated-name', 5, '0'),
    data(Buffer.from('hello')),
    header('PaxHeader', pax.length, 'x'),
    data(pax),
    header('short', 2, '0'),
    data(Buffer.from('hi')),
    header('link', 0, '2'),
    Buffer.alloc(1024),
  ];
  const lister = new TarLister();
  // Fed in odd-sized chunks: headers and data cross chunk boundaries.
  const all = Buffer.concat(parts);
  const chunks: Buffer[] = [];
  for (let i = 0; i < all.length; i += 333) chunks.push(all.subarray(i, i + 333));
  await pipeline(Readable.from(chunks), lister);
  assert.deepEqual(lister.files, [
    { path: 'PG_VERSION', size: 3 },
    { path: 'base/1/2619', size: 1000 },
    { path: long, size: 5 },
    { path: 'pax/named/file.txt', size: 2 },
  ]);
});

test('tar sizes: octal, and GNU base-256 for files over 8 GiB', () => {
  assert.equal(tarNumber(Buffer.from('00000001750\0')), 1000);
  const big = Buffer.alloc(12);
  big[0] = 0x80;
  big.writeUIntBE(20 * 1024 ** 3, 6, 6);
  assert.equal(tarNumber(big), 20 * 1024 ** 3);
});

test('a diff of two listings: added, removed, changed size, same', () => {
  const d = diffListings(
    [
      { path: 'a', size: 1 },
      { path: 'b', size: 2 },
      { path: 'c', size: 3 },
    ],
    [
      { path: 'a', size: 1 },
      { path: 'b', size: 20 },
      { path: 'd', size: 4 },
    ],
  );
  assert.deepEqual(d, {
    added: [{ path: 'd', size: 4 }],
    removed: [{ path: 'c', size: 3 }],
    changed: [{ path: 'b', from: 2, to: 20 }],
    same: 1,
  });
});

test("the node script's report: WAL points from pg_basebackup -v, binlog, lock time, steps, errors", () => {
  const r = { position: {}, steps: [], checks: [], errors: [], warnings: [], other: [] } as Parameters<
    typeof parseScriptLine
  >[0];
  for (const line of [
    'pg_basebackup: initiating base backup, waiting for checkpoint to complete',
    'pg_basebackup: write-ahead log start point: 0/3000028 on timeline 1',
    'pg_basebackup: write-ahead log end point: 0/38DB108',
    'CORRAL method flush-lock+btrfs-snapshot',
    'CORRAL stall 144',
    'CORRAL binlog mysql-bin.000001 26296181',
    'CORRAL format tar',
    'CORRAL step stopped',
    'CORRAL check mysqlcheck --all-databases: ok',
    'CORRAL error the database did not answer within 90 s after start',
  ])
    parseScriptLine(r, line);
  assert.deepEqual(r.position, {
    walStart: '0/3000028',
    walEnd: '0/38DB108',
    binlogFile: 'mysql-bin.000001',
    binlogPos: 26296181,
  });
  assert.equal(r.method, 'flush-lock+btrfs-snapshot');
  assert.equal(r.stallMs, 144);
  assert.equal(r.format, 'tar');
  assert.deepEqual(r.steps, ['stopped']);
  assert.deepEqual(r.checks, ['mysqlcheck --all-databases: ok']);
  assert.deepEqual(r.errors, ['the database did not answer within 90 s after start']);
  assert.equal(r.other.length, 1);
  const fs = { position: {}, steps: [], checks: [], errors: [], warnings: [], other: [] } as Parameters<
    typeof parseScriptLine
  >[0];
  parseScriptLine(fs, 'CORRAL pgflushed 0/15283C0');
  parseScriptLine(fs, 'CORRAL pgflushed not-an-lsn');
  assert.deepEqual(fs.position, { walEnd: '0/15283C0' });
});

test('the node script parses (bash -n) and its parameters are quoted for the remote shell', () => {
  execFileSync('bash', ['-n', installPath('templates', 'data-snapshots', 'node.sh')]);
  assert.equal(shq("it's"), `'it'\\''s'`);
  const path = `/srv/it's $HOME; rm -rf /`;
  const cmd = nodeCommand('snapshot', { kind: 'files', id: 's1_abc', path, stopCommand: 'echo "x"' });
  // The remote shell sees CORRAL_PATH as exactly the path: check by letting bash expand the same words.
  const seen = execFileSync('bash', ['-c', `${cmd.split(' bash -c ')[0]} printenv CORRAL_PATH CORRAL_STOP`], {
    encoding: 'utf8',
  });
  assert.equal(seen, `${path}\necho "x"\n`);
  assert.throws(() => nodeCommand('snapshot', { kind: 'files', id: 'bad id', path: '/x' }));
});

function service(dir: string, repos: ReturnType<typeof tempRepos>['repos']): DataSnapshots {
  return new DataSnapshots({
    store: new DataSetStore(repos.store),
    repos,
    config: DATA_SNAPSHOTS_CONFIG_DEFAULTS,
    dir: join(dir, 'data-snapshots'),
    secrets: () => SecretBox.forDataDir(dir),
    ssh: {
      user: 'root',
      port: 22,
      privateKeyPath: join(dir, 'none'),
      connectTimeoutMs: 1000,
      hostKeys: new HostKeyPins(dir, join(dir, 'roots')),
    },
    logger: silentLogger(),
  });
}

test('declarations: one target, absolute path; the password is sealed and never shown; roles cover nodes', async () => {
  const { repos, dir, cleanup } = tempRepos();
  try {
    repos.store.write((j) => {
      repos.nodes.insertIn(j, { mac: '52:54:00:00:00:01', name: 'db-1', seqNo: 1, state: 'deployed' });
      repos.nodes.insertIn(j, { mac: '52:54:00:00:00:02', name: 'db-2', seqNo: 2, state: 'deployed' });
      repos.nodes.patchIn(j, '52:54:00:00:00:01', { role: 'db' });
      repos.nodes.patchIn(j, '52:54:00:00:00:02', { role: 'db' });
    });
    const s = service(dir, repos);
    const refused = (body: unknown): string => {
      try {
        s.declare(body);
      } catch (err) {
        assert.ok(isCorralError(err));
        return `${err.code}: ${err.message}`;
      }
      return 'accepted';
    };
    assert.match(
      refused({ name: 'x', kind: 'files', path: '/srv', node: 'db-1', role: 'db' }),
      /^DATA_SET_INVALID.*exactly one/,
    );
    assert.match(refused({ name: 'x', kind: 'files', path: 'srv', node: 'db-1' }), /^DATA_SET_INVALID: path/);
    assert.match(
      refused({ name: 'x', kind: 'oracle', path: '/srv', node: 'db-1' }),
      /^DATA_SET_INVALID: kind/,
    );
    assert.match(refused({ name: 'x', kind: 'files', path: '/srv', node: 'nope' }), /^NODE_NOT_FOUND/);

    const d = s.declare({
      name: 'orders',
      kind: 'postgresql',
      path: '/var/lib/postgresql/15/main/',
      role: 'db',
      connection: { host: '/run/postgresql', user: 'postgres', password: 's3cret' },
    });
    assert.equal(d.path, '/var/lib/postgresql/15/main');
    assert.ok(d.secret?.startsWith('v1:'));
    assert.ok(!JSON.stringify(publicDataSet(d)).includes('s3cret'));
    assert.equal(publicDataSet(d).hasPassword, true);
    assert.equal(SecretBox.forDataDir(dir).open(d.secret ?? '', 'data-set:orders'), 's3cret');
    assert.throws(() => SecretBox.forDataDir(dir).open(d.secret ?? '', 'data-set:other'), /does not decrypt/);
    assert.deepEqual(
      s.nodesOf(d).map((n) => n.name),
      ['db-1', 'db-2'],
    );
    assert.match(refused({ name: 'orders', kind: 'files', path: '/srv', node: 'db-1' }), /^CONFLICT/);
    // A data set on two nodes needs the node named for a snapshot.
    await assert.rejects(s.snapshot('orders'), /covers 2 nodes: name one/);
  } finally {
    cleanup();
  }
});

test('retention per data set and node: manual snapshots kept, the oldest scheduled ones removed; unfinished rows cleared at start', () => {
  let clock = new Date('2026-12-01T00:00:00Z');
  const { repos, dir, cleanup } = tempRepos(() => clock);
  try {
    repos.store.write((j) =>
      repos.nodes.insertIn(j, { mac: '52:54:00:00:00:01', name: 'db-1', seqNo: 1, state: 'deployed' }),
    );
    const s = service(dir, repos);
    const d = s.declare({
      name: 'files',
      kind: 'files',
      path: '/srv',
      node: 'db-1',
      retention: { keepLast: 2, keepHourly: 0, keepDaily: 0, keepWeekly: 0 },
    });
    const store = new DataSetStore(repos.store);
    const node = { mac: '52:54:00:00:00:01', name: 'db-1' };
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      clock = new Date(clock.getTime() + 3600_000);
      const kind = i === 0 ? 'manual' : 'scheduled';
      const row = store.startSnapshot({
        name: `snap-${i}`,
        dataSet: d,
        node,
        snapshotKind: kind,
        reason: null,
        actor: null,
      });
      store.finishSnapshot(row.id, {
        method: 'tar',
        format: 'tar',
        bytes: 1,
        rawBytes: 1,
        files: 1,
        sha256: 'x',
        position: null,
        writerStallMs: null,
        durationMs: 1,
      });
      mkdirSync(join(dir, 'data-snapshots', `snap-${i}`), { recursive: true });
      made.push(`snap-${i}`);
    }
    const plan = s.retentionPlan('files');
    assert.deepEqual(
      plan.remove.map((r) => r.id),
      ['snap-2', 'snap-1'],
    );
    assert.deepEqual(
      plan.keep.map((k) => k.id),
      ['snap-4', 'snap-3', 'snap-0'],
    );
    s.applyRetention('files');
    assert.deepEqual(
      s.list().map((x) => x.name),
      ['snap-4', 'snap-3', 'snap-0'],
    );
    assert.equal(existsSync(join(dir, 'data-snapshots', 'snap-1')), false);

    // A master that stopped mid-transfer left a running row: the next start removes it and its files.
    store.startSnapshot({
      name: 'half',
      dataSet: d,
      node,
      snapshotKind: 'manual',
      reason: null,
      actor: null,
    });
    mkdirSync(join(dir, 'data-snapshots', 'half'), { recursive: true });
    service(dir, repos);
    assert.equal(store.snapshot('half'), undefined);
    assert.equal(existsSync(join(dir, 'data-snapshots', 'half')), false);
  } finally {
    cleanup();
  }
});
