import { sqliteOf, type Journal, type SqliteStore, type Store } from './db.js';

/**
 * pending: waiting for the node to boot the installer; installing: the installer reported in;
 * installed: the image is on disk, the node reboots into it; booted: the installed system reported
 * (node `deployed`); failed: see `message` and `logTail`.
 */
export const DEPLOY_STATUSES = ['pending', 'installing', 'installed', 'booted', 'failed'] as const;
export type DeployStatus = (typeof DEPLOY_STATUSES)[number];

export interface DeploymentRecord {
  id: number;
  nodeMac: string;
  imageSha256: string;
  layout: string;
  /** Everything the installer needs, rendered at deploy time (plan + files). */
  plan: Record<string, unknown>;
  token: string;
  status: DeployStatus;
  phase: string | null;
  percent: number;
  bytes: number;
  bytesPerSec: number;
  message: string | null;
  logTail: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

interface DeploymentRow {
  id: number;
  node_mac: string;
  image_sha256: string;
  layout: string;
  plan: string;
  token: string;
  status: DeployStatus;
  phase: string | null;
  percent: number;
  bytes: number;
  bytes_per_sec: number;
  message: string | null;
  log_tail: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

function fromRow(r: DeploymentRow): DeploymentRecord {
  return {
    id: r.id,
    nodeMac: r.node_mac,
    imageSha256: r.image_sha256,
    layout: r.layout,
    plan: JSON.parse(r.plan) as Record<string, unknown>,
    token: r.token,
    status: r.status,
    phase: r.phase,
    percent: r.percent,
    bytes: r.bytes,
    bytesPerSec: r.bytes_per_sec,
    message: r.message,
    logTail: r.log_tail,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
  };
}

export interface DeploymentPatch {
  status?: DeployStatus;
  phase?: string | null;
  percent?: number;
  bytes?: number;
  bytesPerSec?: number;
  message?: string | null;
  logTail?: string | null;
  finished?: boolean;
}

/** One row per deploy attempt of a node; the newest is the node's current deployment. */
export class DeploymentStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  get(id: number): DeploymentRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM deployments WHERE id = ?').get(id) as
      DeploymentRow | undefined;
    return r ? fromRow(r) : undefined;
  }

  latestFor(mac: string): DeploymentRecord | undefined {
    const r = this.store.db
      .prepare('SELECT * FROM deployments WHERE node_mac = ? ORDER BY id DESC LIMIT 1')
      .get(mac) as DeploymentRow | undefined;
    return r ? fromRow(r) : undefined;
  }

  listFor(mac: string, limit = 20): DeploymentRecord[] {
    return (
      this.store.db
        .prepare('SELECT * FROM deployments WHERE node_mac = ? ORDER BY id DESC LIMIT ?')
        .all(mac, limit) as DeploymentRow[]
    ).map(fromRow);
  }

  /** Unfinished deployments (for the stall watchdog). */
  active(): DeploymentRecord[] {
    return (
      this.store.db
        .prepare("SELECT * FROM deployments WHERE status IN ('pending', 'installing', 'installed')")
        .all() as DeploymentRow[]
    ).map(fromRow);
  }

  insertIn(
    journal: Journal,
    d: { nodeMac: string; imageSha256: string; layout: string; plan: Record<string, unknown>; token: string },
  ): DeploymentRecord {
    const now = this.store.now().toISOString();
    const info = this.store.db
      .prepare(
        `INSERT INTO deployments (node_mac, image_sha256, layout, plan, token, status, percent, bytes, bytes_per_sec, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'pending', 0, 0, 0, ?, ?)`,
      )
      .run(d.nodeMac, d.imageSha256, d.layout, JSON.stringify(d.plan), d.token, now, now);
    return this.journalRow(journal, Number(info.lastInsertRowid));
  }

  patchIn(journal: Journal, id: number, p: DeploymentPatch): DeploymentRecord {
    const sets: string[] = [];
    const args: (string | number | null)[] = [];
    const col = (name: string, value: string | number | null): void => {
      sets.push(`${name} = ?`);
      args.push(value);
    };
    if (p.status !== undefined) col('status', p.status);
    if (p.phase !== undefined) col('phase', p.phase);
    if (p.percent !== undefined) col('percent', p.percent);
    if (p.bytes !== undefined) col('bytes', p.bytes);
    if (p.bytesPerSec !== undefined) col('bytes_per_sec', p.bytesPerSec);
    if (p.message !== undefined) col('message', p.message);
    if (p.logTail !== undefined) col('log_tail', p.logTail);
    const now = this.store.now().toISOString();
    if (p.finished) col('finished_at', now);
    col('updated_at', now);
    this.store.db.prepare(`UPDATE deployments SET ${sets.join(', ')} WHERE id = ?`).run(...args, id);
    return this.journalRow(journal, id);
  }

  private journalRow(journal: Journal, id: number): DeploymentRecord {
    const row = this.store.row('deployments', id) as unknown as DeploymentRow | undefined;
    if (!row) throw new Error(`deployment ${id} vanished inside its own transaction`);
    journal('deployments', id, 'upsert', row as unknown as Record<string, unknown>);
    return fromRow(row);
  }
}
