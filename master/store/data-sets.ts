/**
 * Data sets of nodes and their snapshots (issue 17). Data sets are journaled (a backup master keeps the
 * declarations); snapshot rows are per master, like exec_runs, because their archives live on this
 * master's disk.
 */
import { sqliteOf, type SqliteStore, type Store } from './db.js';

export const DATA_SET_KINDS = ['files', 'sqlite', 'postgresql', 'mysql'] as const;
export type DataSetKind = (typeof DATA_SET_KINDS)[number];

/** How the node's database is reached; the password is sealed apart (`secret`). */
export interface DataSetConnection {
  /** Host name, or the Unix socket directory (PostgreSQL) / socket file (MySQL). */
  host?: string | undefined;
  port?: number | undefined;
  user?: string | undefined;
  database?: string | undefined;
}

export interface DataSetSchedule {
  hourly: boolean;
  daily: boolean;
  weekly: boolean;
}

export interface DataSetRetention {
  keepLast: number;
  keepHourly: number;
  keepDaily: number;
  keepWeekly: number;
}

export interface DataSetRecord {
  id: number;
  name: string;
  nodeMac: string | null;
  role: string | null;
  tag: string | null;
  kind: DataSetKind;
  path: string;
  connection: DataSetConnection;
  /** Sealed password (remote/secrets.ts), never sent to clients. */
  secret: string | null;
  stopCommand: string | null;
  startCommand: string | null;
  schedule: DataSetSchedule;
  retention: DataSetRetention;
  createdAt: string;
  updatedAt: string;
}

export type DataSetInput = Omit<DataSetRecord, 'id' | 'createdAt' | 'updatedAt'>;

interface SetRow {
  id: number;
  name: string;
  node_mac: string | null;
  role: string | null;
  tag: string | null;
  kind: DataSetKind;
  path: string;
  connection: string;
  secret: string | null;
  stop_command: string | null;
  start_command: string | null;
  schedule: string;
  retention: string;
  created_at: string;
  updated_at: string;
}

function setFromRow(r: SetRow): DataSetRecord {
  return {
    id: r.id,
    name: r.name,
    nodeMac: r.node_mac,
    role: r.role,
    tag: r.tag,
    kind: r.kind,
    path: r.path,
    connection: JSON.parse(r.connection) as DataSetConnection,
    secret: r.secret,
    stopCommand: r.stop_command,
    startCommand: r.start_command,
    schedule: JSON.parse(r.schedule) as DataSetSchedule,
    retention: JSON.parse(r.retention) as DataSetRetention,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export type DataSnapshotKind = 'manual' | 'scheduled' | 'auto' | 'safety';

/** The database's position the snapshot is consistent at. */
export interface DataSnapshotPosition {
  /** PostgreSQL: WAL LSNs where the backup started and ended (every commit before `end` is in it). */
  walStart?: string;
  walEnd?: string;
  /** MySQL/MariaDB: binary log file and position. */
  binlogFile?: string;
  binlogPos?: number;
}

export interface DataSnapshotRecord {
  id: number;
  name: string;
  dataSetId: number;
  dataSetName: string;
  nodeMac: string;
  nodeName: string;
  kind: DataSetKind;
  snapshotKind: DataSnapshotKind;
  status: 'running' | 'ok';
  method: string | null;
  /** `tar` (a file tree) or `sql` (a logical dump), gzip-compressed. */
  format: 'tar' | 'sql' | null;
  reason: string | null;
  actor: string | null;
  createdAt: string;
  finishedAt: string | null;
  /** Compressed bytes on the master (while running: received so far). */
  bytes: number;
  rawBytes: number | null;
  files: number | null;
  sha256: string | null;
  position: DataSnapshotPosition | null;
  /** How long writers were blocked, measured on the node around the lock; null where no lock is taken. */
  writerStallMs: number | null;
  durationMs: number | null;
}

interface SnapRow {
  id: number;
  name: string;
  data_set_id: number;
  data_set_name: string;
  node_mac: string;
  node_name: string;
  kind: DataSetKind;
  snapshot_kind: DataSnapshotKind;
  status: 'running' | 'ok';
  method: string | null;
  format: 'tar' | 'sql' | null;
  reason: string | null;
  actor: string | null;
  created_at: string;
  finished_at: string | null;
  bytes: number;
  raw_bytes: number | null;
  files: number | null;
  sha256: string | null;
  position: string | null;
  writer_stall_ms: number | null;
  duration_ms: number | null;
}

function snapFromRow(r: SnapRow): DataSnapshotRecord {
  return {
    id: r.id,
    name: r.name,
    dataSetId: r.data_set_id,
    dataSetName: r.data_set_name,
    nodeMac: r.node_mac,
    nodeName: r.node_name,
    kind: r.kind,
    snapshotKind: r.snapshot_kind,
    status: r.status,
    method: r.method,
    format: r.format,
    reason: r.reason,
    actor: r.actor,
    createdAt: r.created_at,
    finishedAt: r.finished_at,
    bytes: r.bytes,
    rawBytes: r.raw_bytes,
    files: r.files,
    sha256: r.sha256,
    position: r.position ? (JSON.parse(r.position) as DataSnapshotPosition) : null,
    writerStallMs: r.writer_stall_ms,
    durationMs: r.duration_ms,
  };
}

export interface DataSnapshotFinish {
  method: string;
  format: 'tar' | 'sql';
  bytes: number;
  rawBytes: number;
  files: number;
  sha256: string;
  position: DataSnapshotPosition | null;
  writerStallMs: number | null;
  durationMs: number;
}

export class DataSetStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  list(): DataSetRecord[] {
    return (this.store.db.prepare('SELECT * FROM data_sets ORDER BY name').all() as SetRow[]).map(setFromRow);
  }

  get(id: number): DataSetRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM data_sets WHERE id = ?').get(id) as SetRow | undefined;
    return r ? setFromRow(r) : undefined;
  }

  byName(name: string): DataSetRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM data_sets WHERE name = ?').get(name) as SetRow | undefined;
    return r ? setFromRow(r) : undefined;
  }

  insert(d: DataSetInput): DataSetRecord {
    return this.store.write((journal) => {
      const at = this.store.now().toISOString();
      const info = this.store.db
        .prepare(
          `INSERT INTO data_sets (name, node_mac, role, tag, kind, path, connection, secret, stop_command,
             start_command, schedule, retention, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          d.name,
          d.nodeMac,
          d.role,
          d.tag,
          d.kind,
          d.path,
          JSON.stringify(d.connection),
          d.secret,
          d.stopCommand,
          d.startCommand,
          JSON.stringify(d.schedule),
          JSON.stringify(d.retention),
          at,
          at,
        );
      const id = Number(info.lastInsertRowid);
      const row = this.store.row('data_sets', id) as SetRow | undefined;
      if (!row) throw new Error(`data set ${id} vanished inside its own transaction`);
      journal('data_sets', id, 'upsert', row as unknown as Record<string, unknown>);
      return setFromRow(row);
    });
  }

  /** Replaces the schedule and retention (the other fields are the data set's identity). */
  setPolicy(id: number, schedule: DataSetSchedule, retention: DataSetRetention): DataSetRecord {
    return this.store.write((journal) => {
      this.store.db
        .prepare('UPDATE data_sets SET schedule = ?, retention = ?, updated_at = ? WHERE id = ?')
        .run(JSON.stringify(schedule), JSON.stringify(retention), this.store.now().toISOString(), id);
      const row = this.store.row('data_sets', id) as SetRow | undefined;
      if (!row) throw new Error(`data set ${id} not found`);
      journal('data_sets', id, 'upsert', row as unknown as Record<string, unknown>);
      return setFromRow(row);
    });
  }

  delete(id: number): void {
    this.store.write((journal) => {
      this.store.db.prepare('DELETE FROM data_sets WHERE id = ?').run(id);
      journal('data_sets', id, 'delete');
    });
  }

  // --- snapshots (per master, not journaled) ---

  snapshots(filter: { dataSetId?: number; nodeMac?: string } = {}): DataSnapshotRecord[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.dataSetId !== undefined) {
      where.push('data_set_id = ?');
      args.push(filter.dataSetId);
    }
    if (filter.nodeMac !== undefined) {
      where.push('node_mac = ?');
      args.push(filter.nodeMac);
    }
    const sql = `SELECT * FROM data_snapshots ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC`;
    return (this.store.db.prepare(sql).all(...args) as SnapRow[]).map(snapFromRow);
  }

  snapshot(idOrName: string | number): DataSnapshotRecord | undefined {
    const r = (
      typeof idOrName === 'number' || /^\d+$/.test(idOrName)
        ? this.store.db.prepare('SELECT * FROM data_snapshots WHERE id = ?').get(Number(idOrName))
        : this.store.db.prepare('SELECT * FROM data_snapshots WHERE name = ?').get(idOrName)
    ) as SnapRow | undefined;
    return r ? snapFromRow(r) : undefined;
  }

  startSnapshot(s: {
    name: string;
    dataSet: DataSetRecord;
    node: { mac: string; name: string };
    snapshotKind: DataSnapshotKind;
    reason: string | null;
    actor: string | null;
  }): DataSnapshotRecord {
    const info = this.store.db
      .prepare(
        `INSERT INTO data_snapshots (name, data_set_id, data_set_name, node_mac, node_name, kind, snapshot_kind,
           status, reason, actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)`,
      )
      .run(
        s.name,
        s.dataSet.id,
        s.dataSet.name,
        s.node.mac,
        s.node.name,
        s.dataSet.kind,
        s.snapshotKind,
        s.reason,
        s.actor,
        this.store.now().toISOString(),
      );
    const made = this.snapshot(Number(info.lastInsertRowid));
    if (!made) throw new Error('data snapshot row vanished');
    return made;
  }

  progress(id: number, bytes: number): void {
    this.store.db.prepare('UPDATE data_snapshots SET bytes = ? WHERE id = ?').run(bytes, id);
  }

  finishSnapshot(id: number, f: DataSnapshotFinish): DataSnapshotRecord {
    this.store.db
      .prepare(
        `UPDATE data_snapshots SET status = 'ok', method = ?, format = ?, bytes = ?, raw_bytes = ?, files = ?,
           sha256 = ?, position = ?, writer_stall_ms = ?, duration_ms = ?, finished_at = ? WHERE id = ?`,
      )
      .run(
        f.method,
        f.format,
        f.bytes,
        f.rawBytes,
        f.files,
        f.sha256,
        f.position ? JSON.stringify(f.position) : null,
        f.writerStallMs,
        f.durationMs,
        this.store.now().toISOString(),
        id,
      );
    const done = this.snapshot(id);
    if (!done) throw new Error(`data snapshot ${id} vanished`);
    return done;
  }

  deleteSnapshot(id: number): void {
    this.store.db.prepare('DELETE FROM data_snapshots WHERE id = ?').run(id);
  }

  /** Rows left 'running' by a master that stopped mid-snapshot. */
  abandoned(): DataSnapshotRecord[] {
    return (
      this.store.db.prepare("SELECT * FROM data_snapshots WHERE status = 'running'").all() as SnapRow[]
    ).map(snapFromRow);
  }
}
