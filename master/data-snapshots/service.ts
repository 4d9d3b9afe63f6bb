/**
 * Data sets and their snapshots (issue 17): one service for the API, the console, the CLI and the
 * scheduler. A snapshot runs on the node (node-script.ts over runner.ts), streams a gzip archive into
 * DIR/<name>/, and is recorded with its size, SHA-256, database position and writer stall. A restore
 * checks the archive's SHA-256 first (a corrupted archive is refused before the node is touched), takes
 * a safety snapshot of the target, then lays the archive on the node, which stops, lays, starts and checks.
 */
import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { NodeRecord } from '../store/nodes.js';
import type { Repos } from '../store/repos.js';
import {
  DATA_SET_KINDS,
  type DataSetRecord,
  type DataSetStore,
  type DataSnapshotKind,
  type DataSnapshotPosition,
  type DataSnapshotRecord,
} from '../store/data-sets.js';
import type { SecretBox } from '../remote/secrets.js';
import { findNode } from '../nodes/service.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import {
  dueSchedules,
  planRetention,
  RetentionPolicySchema,
  ScheduleSchema,
  type RetentionPlan,
  type RetentionPolicy,
} from '../snapshots/retention.js';
import {
  diffListings,
  gzSize,
  listTarGz,
  sha256File,
  type ArchiveDiff,
  type ArchiveFile,
} from './archive.js';
import type { DataSnapshotsConfig } from './config.js';
import { defaultServiceCommands, nodeCommand, type NodeScriptParams } from './node-script.js';
import { ProgressBoard } from './progress.js';
import { runNodeScript, type SshSettings } from './runner.js';

const NAME = /^[a-z0-9][a-z0-9-]{0,47}$/;

/** The declaration as the API and console send it (the password in clear, sealed before it is stored). */
export const DataSetBody = z
  .object({
    name: z.string().regex(NAME, 'must be 1-48 lower-case letters, digits or -'),
    node: z.string().min(1).max(64).optional(),
    role: z.string().min(1).max(32).optional(),
    tag: z.string().min(1).max(64).optional(),
    kind: z.enum(DATA_SET_KINDS),
    path: z
      .string()
      .max(4096)
      .refine(
        (p) => p.startsWith('/') && !p.split('/').includes('..'),
        'must be an absolute path without ..',
      ),
    connection: z
      .object({
        host: z.string().max(4096).optional(),
        port: z.number().int().min(1).max(65535).optional(),
        user: z.string().max(128).optional(),
        database: z.string().max(128).optional(),
        password: z.string().max(1024).optional(),
      })
      .strict()
      .default({}),
    stopCommand: z.string().max(2000).optional(),
    startCommand: z.string().max(2000).optional(),
    schedule: ScheduleSchema.default({ hourly: false, daily: false, weekly: false }),
    retention: RetentionPolicySchema.default({ keepLast: 5, keepHourly: 24, keepDaily: 7, keepWeekly: 4 }),
  })
  .strict();
export type DataSetDeclaration = z.input<typeof DataSetBody>;

/** A data set as clients see it: the sealed password is replaced by whether one is set. */
export type PublicDataSet = Omit<DataSetRecord, 'secret'> & { hasPassword: boolean };

export function publicDataSet(d: DataSetRecord): PublicDataSet {
  const { secret, ...rest } = d;
  return { ...rest, hasPassword: secret !== null };
}

export interface RestoreResult {
  snapshot: DataSnapshotRecord;
  target: { node: string; dataSet: string };
  safety: DataSnapshotRecord | null;
  steps: string[];
  checks: string[];
  durationMs: number;
}

export interface DataSnapshotsDeps {
  store: DataSetStore;
  repos: Pick<Repos, 'nodes' | 'events'>;
  config: DataSnapshotsConfig;
  dir: string;
  secrets: () => SecretBox;
  ssh: SshSettings;
  logger: Logger;
  now?: () => Date;
}

/** The facts a node script reports on stderr, and its other output (for error messages). */
interface ScriptReport {
  method?: string;
  format?: 'tar' | 'sql';
  stallMs?: number;
  position: DataSnapshotPosition;
  steps: string[];
  checks: string[];
  errors: string[];
  warnings: string[];
  other: string[];
}

export function parseScriptLine(report: ScriptReport, line: string): void {
  const m = /^CORRAL (\S+) ?(.*)$/.exec(line);
  if (!m) {
    // pg_basebackup -v: "write-ahead log start point: 0/2000028 on timeline 1", "... end point: 0/2000100"
    const wal = /write-ahead log (start|end) point: ([0-9A-F]+\/[0-9A-F]+)/.exec(line);
    if (wal?.[1] === 'start') report.position.walStart = wal[2]!;
    else if (wal?.[1] === 'end') report.position.walEnd = wal[2]!;
    else if (line.trim()) report.other.push(line);
    if (report.other.length > 200) report.other.shift();
    return;
  }
  const [, key = '', value = ''] = m;
  if (key === 'method') report.method = value;
  else if (key === 'format' && (value === 'tar' || value === 'sql')) report.format = value;
  else if (key === 'stall') report.stallMs = Number(value);
  // A btrfs snapshot of PostgreSQL: the flush LSN read just before it; every commit up to it is inside.
  else if (key === 'pgflushed' && /^[0-9A-F]+\/[0-9A-F]+$/.test(value)) report.position.walEnd = value;
  else if (key === 'binlog') {
    const [file, pos] = value.split(' ');
    if (file && pos) {
      report.position.binlogFile = file;
      report.position.binlogPos = Number(pos);
    }
  } else if (key === 'step') report.steps.push(value);
  else if (key === 'check') report.checks.push(value);
  else if (key === 'error') report.errors.push(value);
  else if (key === 'warning' || key === 'rollback' || key === 'rolledback')
    report.warnings.push(`${key} ${value}`);
}

function newReport(): ScriptReport {
  return { position: {}, steps: [], checks: [], errors: [], warnings: [], other: [] };
}

/** Why a node script failed, in one sentence: its own error line, else the last lines of the tools' output. */
function failure(report: ScriptReport, code: number | null, signal: string | null): string {
  const why = report.errors.at(-1) ?? (report.other.slice(-5).join(' / ') || 'no message');
  const rolled = report.warnings.filter((w) => w.startsWith('rolledback') || w.startsWith('warning'));
  return `${why} (exit ${signal ?? code})${rolled.length ? `; ${rolled.join('; ')}` : ''}`;
}

function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.(\d{3})Z$/, '$1z')
    .toLowerCase();
}

/** A snapshot under way: its row (status `running`) at once, the finished record when done. */
export interface StartedSnapshot {
  snapshot: DataSnapshotRecord;
  done: Promise<DataSnapshotRecord>;
}

/** The stream with its bytes counted as they go, for a progress report; a read error carries through. */
function counted(input: Readable, onBytes: (total: number, last: boolean) => void): Readable {
  let total = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      total += chunk.length;
      onBytes(total, false);
      done(null, chunk);
    },
    flush(done) {
      onBytes(total, true);
      done();
    },
  });
  input.on('error', (err) => counter.destroy(err));
  return input.pipe(counter);
}

export class DataSnapshots {
  private readonly busy = new Set<string>();
  private readonly now: () => Date;
  /** What runs now, with bytes, rate and ETA (the console's live stream reads it). */
  readonly board = new ProgressBoard();

  constructor(private readonly deps: DataSnapshotsDeps) {
    this.now = deps.now ?? (() => new Date());
    mkdirSync(deps.dir, { recursive: true, mode: 0o700 });
    // A master stopped mid-transfer leaves a 'running' row and a partial archive: neither can be restored.
    for (const s of deps.store.abandoned()) {
      rmSync(join(deps.dir, s.name), { recursive: true, force: true });
      deps.store.deleteSnapshot(s.id);
      deps.logger.warn({ snapshot: s.name }, 'removed a data snapshot left unfinished by a previous run');
    }
  }

  // --- data sets ---

  sets(): DataSetRecord[] {
    return this.deps.store.list();
  }

  set(ref: string | number): DataSetRecord {
    const d =
      typeof ref === 'number' || /^\d+$/.test(ref)
        ? this.deps.store.get(Number(ref))
        : this.deps.store.byName(ref);
    if (!d) throw new CorralError('DATA_SET_NOT_FOUND', `no data set '${ref}'`);
    return d;
  }

  declare(input: unknown): DataSetRecord {
    const r = DataSetBody.safeParse(input);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new CorralError(
        'DATA_SET_INVALID',
        `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`,
      );
    }
    const b = r.data;
    const targets = [b.node, b.role, b.tag].filter((x) => x !== undefined);
    if (targets.length !== 1) {
      throw new CorralError('DATA_SET_INVALID', 'give exactly one of node, role or tag');
    }
    if (this.deps.store.byName(b.name)) {
      throw new CorralError('CONFLICT', `a data set named '${b.name}' exists`);
    }
    const node = b.node ? findNode(this.deps.repos.nodes, b.node) : undefined;
    const { password, ...connection } = b.connection;
    return this.deps.store.insert({
      name: b.name,
      nodeMac: node?.mac ?? null,
      role: b.role ?? null,
      tag: b.tag ?? null,
      kind: b.kind,
      path: b.path.replace(/\/+$/, '') || '/',
      connection,
      // Bound to the data set's name: a sealed value copied onto another row does not open.
      secret: password ? this.deps.secrets().seal(password, `data-set:${b.name}`) : null,
      stopCommand: b.stopCommand ?? null,
      startCommand: b.startCommand ?? null,
      schedule: b.schedule,
      retention: b.retention,
    });
  }

  setPolicy(ref: string | number, schedule: unknown, retention: unknown): DataSetRecord {
    const d = this.set(ref);
    const s = ScheduleSchema.safeParse(schedule ?? d.schedule);
    const p = RetentionPolicySchema.safeParse(retention ?? d.retention);
    if (!s.success || !p.success) throw new CorralError('DATA_SET_INVALID', 'schedule or retention: invalid');
    return this.deps.store.setPolicy(d.id, s.data, p.data);
  }

  deleteSet(ref: string | number): void {
    const d = this.set(ref);
    const left = this.deps.store.snapshots({ dataSetId: d.id }).length;
    if (left) {
      throw new CorralError(
        'CONFLICT',
        `data set '${d.name}' still has ${left} snapshot(s): delete them first`,
      );
    }
    this.deps.store.delete(d.id);
  }

  /** The nodes a data set covers: its node, or every node with its role or tag. */
  nodesOf(d: DataSetRecord): NodeRecord[] {
    const all = this.deps.repos.nodes.list();
    if (d.nodeMac) return all.filter((n) => n.mac === d.nodeMac);
    if (d.role) return all.filter((n) => n.role === d.role);
    // Tags come with the enrolment rules (issue 16); a node record without them matches no tag.
    return all.filter((n) => ((n as { tags?: unknown }).tags as string[] | undefined)?.includes(d.tag ?? ''));
  }

  private nodeFor(d: DataSetRecord, nodeRef?: string): NodeRecord {
    const covered = this.nodesOf(d);
    if (nodeRef) {
      const n = findNode(this.deps.repos.nodes, nodeRef);
      if (!covered.some((c) => c.mac === n.mac)) {
        throw new CorralError('DATA_SET_INVALID', `data set '${d.name}' does not cover node ${n.name}`);
      }
      return n;
    }
    if (covered.length !== 1) {
      throw new CorralError(
        'DATA_SET_INVALID',
        covered.length
          ? `data set '${d.name}' covers ${covered.length} nodes: name one (node)`
          : `data set '${d.name}' covers no node`,
      );
    }
    return covered[0]!;
  }

  private scriptParams(d: DataSetRecord, id: string): NodeScriptParams {
    const defaults = defaultServiceCommands(d.kind);
    return {
      kind: d.kind,
      id,
      path: d.path,
      host: d.connection.host,
      port: d.connection.port,
      user: d.connection.user,
      database: d.connection.database,
      stopCommand: d.stopCommand ?? defaults?.stop,
      startCommand: d.startCommand ?? defaults?.start,
      startWaitSeconds: this.deps.config.startWaitSeconds,
    };
  }

  private secretOf(d: DataSetRecord): string {
    return d.secret ? this.deps.secrets().open(d.secret, `data-set:${d.name}`) : '';
  }

  private lock(d: DataSetRecord, node: NodeRecord): () => void {
    const key = `${d.id}@${node.mac}`;
    if (this.busy.has(key)) {
      throw new CorralError(
        'DATA_SNAPSHOT_BUSY',
        `${d.name} on ${node.name} is busy with another snapshot or restore`,
      );
    }
    this.busy.add(key);
    return () => this.busy.delete(key);
  }

  // --- snapshots ---

  list(filter: { node?: string; dataSet?: string } = {}): DataSnapshotRecord[] {
    return this.deps.store.snapshots({
      ...(filter.dataSet ? { dataSetId: this.set(filter.dataSet).id } : {}),
      ...(filter.node ? { nodeMac: findNode(this.deps.repos.nodes, filter.node).mac } : {}),
    });
  }

  get(ref: string | number): DataSnapshotRecord {
    const s = this.deps.store.snapshot(ref);
    if (!s) throw new CorralError('DATA_SNAPSHOT_NOT_FOUND', `no data snapshot '${ref}'`);
    return s;
  }

  archivePath(s: DataSnapshotRecord): string {
    return join(this.deps.dir, s.name, s.format === 'sql' ? 'dump.sql.gz' : 'data.tar.gz');
  }

  files(ref: string | number): ArchiveFile[] {
    const s = this.get(ref);
    const f = join(this.deps.dir, s.name, 'files.json');
    return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as ArchiveFile[]) : [];
  }

  /** Files and sizes against another snapshot (by default the previous one of the same data set and node). */
  diff(
    ref: string | number,
    toRef?: string,
  ): { from: DataSnapshotRecord; to: DataSnapshotRecord | null; diff: ArchiveDiff } {
    const s = this.get(ref);
    let other: DataSnapshotRecord | undefined;
    if (toRef) other = this.get(toRef);
    else {
      other = this.deps.store
        .snapshots({ dataSetId: s.dataSetId, nodeMac: s.nodeMac })
        .find((x) => x.status === 'ok' && x.createdAt < s.createdAt);
    }
    return {
      from: s,
      to: other ?? null,
      // Older → this one: "added" are files this snapshot has that the older one lacks.
      diff: diffListings(other ? this.files(other.id) : [], this.files(s.id)),
    };
  }

  async snapshot(
    dataSetRef: string | number,
    opts: { node?: string; snapshotKind?: DataSnapshotKind; reason?: string; actor?: string | null } = {},
  ): Promise<DataSnapshotRecord> {
    return this.begin(dataSetRef, opts).done;
  }

  /**
   * Starts a snapshot and answers its running row at once (the console shows its progress live); errors
   * that come before the node is contacted (unknown data set or node, busy) are thrown here.
   */
  begin(
    dataSetRef: string | number,
    opts: { node?: string; snapshotKind?: DataSnapshotKind; reason?: string; actor?: string | null } = {},
  ): StartedSnapshot {
    const d = this.set(dataSetRef);
    const node = this.nodeFor(d, opts.node);
    const unlock = this.lock(d, node);
    try {
      const started = this.take(
        d,
        node,
        opts.snapshotKind ?? 'manual',
        opts.reason ?? null,
        opts.actor ?? null,
      );
      return { snapshot: started.snapshot, done: started.done.finally(unlock) };
    } catch (err) {
      unlock();
      throw err;
    }
  }

  private take(
    d: DataSetRecord,
    node: NodeRecord,
    snapshotKind: DataSnapshotKind,
    reason: string | null,
    actor: string | null,
    forSnapshotId: number | null = null,
  ): StartedSnapshot {
    const { store } = this.deps;
    const started = this.now();
    const name = `${d.name}-${node.name}-${stamp(started)}`;
    const row = store.startSnapshot({ name, dataSet: d, node, snapshotKind, reason, actor });
    const previous = store
      .snapshots({ dataSetId: d.id, nodeMac: node.mac })
      .find((x) => x.status === 'ok' && x.bytes !== null);
    const key = `snapshot-${row.id}`;
    this.board.begin({
      key,
      op: 'snapshot',
      snapshotId: row.id,
      snapshot: name,
      forSnapshotId,
      dataSet: d.name,
      node: node.name,
      expectedBytes: previous?.bytes ?? null,
    });
    const done = this.transfer(d, node, row, started, actor).then(
      (s) => {
        this.board.finish(key, true, null, s.bytes ?? undefined);
        return s;
      },
      (err: unknown) => {
        this.board.finish(key, false, (err as Error).message);
        throw err;
      },
    );
    return { snapshot: row, done };
  }

  private async transfer(
    d: DataSetRecord,
    node: NodeRecord,
    row: DataSnapshotRecord,
    started: Date,
    actor: string | null,
  ): Promise<DataSnapshotRecord> {
    const { store, logger, config } = this.deps;
    const name = row.name;
    const board = this.board;
    const dir = join(this.deps.dir, name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const partial = join(dir, 'archive.part');
    const log = logger.child({ module: 'data-snapshots', snapshot: name, node: node.name });
    const report = newReport();
    const hash = createHash('sha256');
    let bytes = 0;
    let lastMark = Date.now();
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        bytes += chunk.length;
        board.advance(`snapshot-${row.id}`, bytes);
        const t = Date.now();
        if (t - lastMark >= config.progressSeconds * 1000) {
          lastMark = t;
          store.progress(row.id, bytes);
          log.info({ bytes, seconds: Math.round((t - started.getTime()) / 1000) }, 'data snapshot progress');
        }
        done(null, chunk);
      },
    });
    // Resolves when the archive is on disk; a disk error (ENOSPC) rejects it and stops the transfer.
    const fileDone = pipeline(meter, createWriteStream(partial, { mode: 0o600 }));
    fileDone.catch(() => undefined); // awaited below on success; a failure is reported by the run itself
    log.info({ dataSet: d.name, kind: d.kind, path: d.path }, 'data snapshot started');
    try {
      const result = await runNodeScript(this.deps.ssh, {
        node: { mac: node.mac, name: node.name, host: node.ip ?? '' },
        command: nodeCommand(
          'snapshot',
          this.scriptParams(d, `s${row.id}_${started.getTime().toString(36)}`),
        ),
        secret: this.secretOf(d),
        output: meter,
        onStderr: (l) => parseScriptLine(report, l),
        timeoutMs: config.timeoutSeconds * 1000,
      });
      if (result.code !== 0) {
        throw new CorralError(
          'DATA_SNAPSHOT_FAILED',
          `${node.name}: ${failure(report, result.code, result.signal)}`,
        );
      }
      await fileDone;
      const format = report.format ?? 'tar';
      const archive = join(dir, format === 'sql' ? 'dump.sql.gz' : 'data.tar.gz');
      renameSync(partial, archive);
      // A second pass over the archive: decompressing it all proves it whole, and lists its files.
      let files: ArchiveFile[];
      let rawBytes: number;
      if (format === 'sql') {
        rawBytes = await gzSize(archive);
        files = [{ path: 'dump.sql', size: rawBytes }];
      } else {
        const listing = await listTarGz(archive);
        files = listing.files;
        rawBytes = listing.rawBytes;
      }
      writeFileSync(join(dir, 'files.json'), JSON.stringify(files), { mode: 0o600 });
      const position = Object.keys(report.position).length ? report.position : null;
      const done = store.finishSnapshot(row.id, {
        method: report.method ?? 'unknown',
        format,
        bytes,
        rawBytes,
        files: files.length,
        sha256: hash.digest('hex'),
        position,
        writerStallMs: report.stallMs ?? null,
        durationMs: Date.now() - started.getTime(),
      });
      writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(done, null, 2)}\n`, { mode: 0o600 });
      log.info(
        {
          bytes,
          rawBytes,
          files: files.length,
          position,
          writerStallMs: done.writerStallMs,
          durationMs: done.durationMs,
        },
        'data snapshot taken',
      );
      this.event(
        node,
        'data-snapshot.taken',
        'info',
        `data snapshot ${name} of ${d.name} (${d.kind}) taken: ${bytes} bytes`,
        actor,
      );
      return done;
    } catch (err) {
      meter.destroy();
      rmSync(dir, { recursive: true, force: true });
      store.deleteSnapshot(row.id);
      const e =
        err instanceof CorralError
          ? err
          : new CorralError('DATA_SNAPSHOT_FAILED', `${node.name}: ${(err as Error).message}`);
      log.error({ err: e }, 'data snapshot failed');
      this.event(
        node,
        'data-snapshot.failed',
        'warning',
        `data snapshot of ${d.name} failed: ${e.message}`,
        actor,
      );
      throw e;
    }
  }

  /** Refuses an archive whose SHA-256 differs from the one recorded when it was made; names the file. */
  async verify(s: DataSnapshotRecord): Promise<void> {
    const file = this.archivePath(s);
    if (!existsSync(file)) throw new CorralError('DATA_SNAPSHOT_CORRUPT', `${file} is missing`);
    const sum = await sha256File(file);
    if (sum !== s.sha256) {
      throw new CorralError(
        'DATA_SNAPSHOT_CORRUPT',
        `${file} does not match its checksum (sha256 ${sum}, recorded ${s.sha256}): refused, nothing on the node was touched`,
      );
    }
  }

  /**
   * Restores onto the snapshot's own node and data set, or another node (of the same data set, or of
   * another data set of the same kind). A safety snapshot of the target comes first, unless the target
   * has nothing to keep (`safety: false`).
   */
  async restore(
    ref: string | number,
    opts: { node?: string; dataSet?: string; safety?: boolean; actor?: string | null } = {},
  ): Promise<RestoreResult> {
    const s = this.get(ref);
    if (s.status !== 'ok') throw new CorralError('CONFLICT', `data snapshot ${s.name} is not complete`);
    const started = Date.now();
    const target = opts.dataSet ? this.set(opts.dataSet) : this.set(s.dataSetId);
    if (target.kind !== s.kind) {
      throw new CorralError(
        'DATA_SET_INVALID',
        `data set '${target.name}' is ${target.kind}, the snapshot is ${s.kind}`,
      );
    }
    const node = this.nodeFor(target, opts.node ?? (opts.dataSet ? undefined : s.nodeMac));
    // Before anything else: a corrupted archive must not cost the target its data (nor its safety snapshot's time).
    await this.verify(s);
    const unlock = this.lock(target, node);
    const log = this.deps.logger.child({ module: 'data-snapshots', snapshot: s.name, node: node.name });
    try {
      const safety =
        opts.safety === false
          ? null
          : await this.take(target, node, 'safety', `before restoring ${s.name}`, opts.actor ?? null, s.id)
              .done;
      const report = newReport();
      log.info({ target: target.name, safety: safety?.name ?? null }, 'data restore started');
      const key = `restore-${s.id}-${started}`;
      this.board.begin({
        key,
        op: 'restore',
        snapshotId: s.id,
        snapshot: s.name,
        forSnapshotId: null,
        dataSet: target.name,
        node: node.name,
        expectedBytes: statSync(this.archivePath(s)).size,
      });
      const result = await runNodeScript(this.deps.ssh, {
        node: { mac: node.mac, name: node.name, host: node.ip ?? '' },
        command: nodeCommand('restore', {
          ...this.scriptParams(target, `r${s.id}_${started.toString(36)}`),
          format: s.format ?? 'tar',
        }),
        secret: this.secretOf(target),
        input: counted(createReadStream(this.archivePath(s)), (n, last) => this.board.advance(key, n, last)),
        onStderr: (l) => {
          parseScriptLine(report, l);
          if (l.startsWith('CORRAL step') || l.startsWith('CORRAL check')) {
            log.info({ line: l.slice(7) }, 'restore');
            this.board.step(key, l.slice(7).replace(/^step /, ''));
          }
        },
        timeoutMs: this.deps.config.timeoutSeconds * 1000,
      }).catch((err: unknown) => {
        this.board.finish(key, false, (err as Error).message);
        throw err;
      });
      if (result.code !== 0) {
        const e = new CorralError(
          'DATA_RESTORE_FAILED',
          `${node.name}: ${failure(report, result.code, result.signal)}`,
        );
        this.board.finish(key, false, e.message);
        throw e;
      }
      this.board.finish(key, true, report.checks.join('; '));
      const out: RestoreResult = {
        snapshot: s,
        target: { node: node.name, dataSet: target.name },
        safety,
        steps: report.steps,
        checks: report.checks,
        durationMs: Date.now() - started,
      };
      log.info({ steps: out.steps, checks: out.checks, durationMs: out.durationMs }, 'data restore done');
      this.event(
        node,
        'data-snapshot.restored',
        'info',
        `data snapshot ${s.name} restored into ${target.name} on ${node.name}: ${out.checks.join('; ')}`,
        opts.actor ?? null,
      );
      return out;
    } catch (err) {
      if (err instanceof CorralError) {
        this.event(
          node,
          'data-snapshot.restore-failed',
          'warning',
          `restore of ${s.name} failed: ${err.message}`,
          opts.actor ?? null,
        );
      }
      throw err;
    } finally {
      unlock();
    }
  }

  delete(ref: string | number): void {
    const s = this.get(ref);
    if (s.status !== 'ok')
      throw new CorralError('DATA_SNAPSHOT_BUSY', `data snapshot ${s.name} is still running`);
    rmSync(join(this.deps.dir, s.name), { recursive: true, force: true });
    this.deps.store.deleteSnapshot(s.id);
  }

  // --- schedules and retention (the restore points' pure functions, per data set and node) ---

  retentionPlan(ref: string | number, nodeRef?: string, policy?: RetentionPolicy): RetentionPlan {
    const d = this.set(ref);
    const p = policy ?? d.retention;
    const nodes = nodeRef ? [this.nodeFor(d, nodeRef)] : this.nodesOf(d);
    const plan: RetentionPlan = { keep: [], remove: [] };
    for (const n of nodes) {
      const refs = this.deps.store
        .snapshots({ dataSetId: d.id, nodeMac: n.mac })
        .filter((s) => s.status === 'ok')
        .map((s) => ({ id: s.name, createdAt: s.createdAt, kind: s.snapshotKind }));
      const one = planRetention(refs, p);
      plan.keep.push(...one.keep);
      plan.remove.push(...one.remove);
    }
    return plan;
  }

  applyRetention(ref: string | number, nodeRef?: string): RetentionPlan {
    const plan = this.retentionPlan(ref, nodeRef);
    for (const r of plan.remove) this.delete(r.id);
    return plan;
  }

  /** One scheduler pass: a snapshot for every covered node with a due period, then its retention. */
  async tick(): Promise<void> {
    for (const d of this.sets()) {
      if (!d.schedule.hourly && !d.schedule.daily && !d.schedule.weekly) continue;
      for (const n of this.nodesOf(d)) {
        const refs = this.deps.store
          .snapshots({ dataSetId: d.id, nodeMac: n.mac })
          .map((s) => ({ id: s.name, createdAt: s.createdAt, kind: s.snapshotKind }));
        const due = dueSchedules(this.now(), d.schedule, refs);
        if (!due.length || this.busy.has(`${d.id}@${n.mac}`)) continue;
        try {
          await this.snapshot(d.id, {
            node: n.mac,
            snapshotKind: 'scheduled',
            reason: `scheduled (${due.join(', ')})`,
          });
          const plan = this.applyRetention(d.id, n.mac);
          if (plan.remove.length) {
            this.deps.logger.info(
              { dataSet: d.name, node: n.name, removed: plan.remove.map((r) => r.id) },
              'data snapshot retention applied',
            );
          }
        } catch (err) {
          this.deps.logger.error({ err, dataSet: d.name, node: n.name }, 'scheduled data snapshot failed');
        }
      }
    }
  }

  private event(
    node: NodeRecord,
    kind: string,
    severity: 'info' | 'warning',
    message: string,
    actor: string | null,
  ): void {
    try {
      this.deps.repos.events.append({ kind, severity, message, actor: actor ?? 'system', nodeMac: node.mac });
    } catch (err) {
      // A backup master refuses writes; the log line still records it.
      this.deps.logger.warn({ err, kind }, 'event not recorded');
    }
  }
}
