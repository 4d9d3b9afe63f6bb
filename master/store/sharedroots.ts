import { sqliteOf, type Journal, type SqliteStore, type Store } from './db.js';

/**
 * Shared roots (issue 6): a named tree with numbered versions under DATA_DIR/sharedroot/roots/NAME/,
 * one of them current (the one new boots get), and the diskless nodes assigned to a root. Files live on
 * disk; master/sharedroot/ keeps rows and directories in step (rows written after the tree is complete).
 */
export const VERSION_STATES = ['draft', 'ready'] as const;
export type VersionState = (typeof VERSION_STATES)[number];

export interface SharedRootRecord {
  name: string;
  currentVersion: number;
  source: string;
  createdAt: string;
  updatedAt: string;
}

export interface SharedRootVersion {
  /** `NAME@VERSION`: the journal key. */
  key: string;
  name: string;
  version: number;
  /** The content of /etc/corral-root-id in this version: what booted nodes report. */
  rootId: string;
  state: VersionState;
  note: string | null;
  createdAt: string;
}

export interface DisklessAssignment {
  mac: string;
  rootName: string;
  /** A read-write per-node directory on the master, mounted at /var/lib/corral-persist. */
  persistent: boolean;
  /** 32 hex digits, fixed per node: /etc/machine-id of the booted node. */
  machineId: string;
  /** Version the node last reported booting, and when. */
  bootedVersion: number | null;
  bootedAt: string | null;
  createdAt: string;
}

type Row = Record<string, unknown>;

function rootFromRow(r: Row): SharedRootRecord {
  return {
    name: r['name'] as string,
    currentVersion: r['current_version'] as number,
    source: r['source'] as string,
    createdAt: r['created_at'] as string,
    updatedAt: r['updated_at'] as string,
  };
}

function versionFromRow(r: Row): SharedRootVersion {
  return {
    key: r['key'] as string,
    name: r['name'] as string,
    version: r['version'] as number,
    rootId: r['root_id'] as string,
    state: r['state'] as VersionState,
    note: (r['note'] as string | null) ?? null,
    createdAt: r['created_at'] as string,
  };
}

function assignmentFromRow(r: Row): DisklessAssignment {
  return {
    mac: r['mac'] as string,
    rootName: r['root_name'] as string,
    persistent: r['persistent'] === 1,
    machineId: r['machine_id'] as string,
    bootedVersion: (r['booted_version'] as number | null) ?? null,
    bootedAt: (r['booted_at'] as string | null) ?? null,
    createdAt: r['created_at'] as string,
  };
}

export function versionKey(name: string, version: number): string {
  return `${name}@${version}`;
}

export class SharedRootStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  list(): SharedRootRecord[] {
    return (this.store.db.prepare('SELECT * FROM shared_roots ORDER BY name').all() as Row[]).map(
      rootFromRow,
    );
  }

  get(name: string): SharedRootRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM shared_roots WHERE name = ?').get(name) as Row | undefined;
    return r ? rootFromRow(r) : undefined;
  }

  versions(name: string): SharedRootVersion[] {
    return (
      this.store.db
        .prepare('SELECT * FROM shared_root_versions WHERE name = ? ORDER BY version')
        .all(name) as Row[]
    ).map(versionFromRow);
  }

  allVersions(): SharedRootVersion[] {
    return (
      this.store.db.prepare('SELECT * FROM shared_root_versions ORDER BY name, version').all() as Row[]
    ).map(versionFromRow);
  }

  version(name: string, version: number): SharedRootVersion | undefined {
    const r = this.store.db
      .prepare('SELECT * FROM shared_root_versions WHERE key = ?')
      .get(versionKey(name, version)) as Row | undefined;
    return r ? versionFromRow(r) : undefined;
  }

  upsertRootIn(journal: Journal, root: Omit<SharedRootRecord, 'createdAt' | 'updatedAt'>): SharedRootRecord {
    const now = this.store.now().toISOString();
    this.store.db
      .prepare(
        `INSERT INTO shared_roots (name, current_version, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET current_version = excluded.current_version, source = excluded.source,
         updated_at = excluded.updated_at`,
      )
      .run(root.name, root.currentVersion, root.source, now, now);
    const row = this.store.row('shared_roots', root.name);
    journal('shared_roots', root.name, 'upsert', row);
    return rootFromRow(row as Row);
  }

  upsertVersionIn(journal: Journal, v: Omit<SharedRootVersion, 'key' | 'createdAt'>): SharedRootVersion {
    const key = versionKey(v.name, v.version);
    this.store.db
      .prepare(
        `INSERT INTO shared_root_versions (key, name, version, root_id, state, note, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(key) DO UPDATE SET root_id = excluded.root_id, state = excluded.state, note = excluded.note`,
      )
      .run(key, v.name, v.version, v.rootId, v.state, v.note, this.store.now().toISOString());
    const row = this.store.row('shared_root_versions', key);
    journal('shared_root_versions', key, 'upsert', row);
    return versionFromRow(row as Row);
  }

  deleteIn(journal: Journal, name: string): void {
    for (const v of this.versions(name)) this.deleteVersionIn(journal, v.key);
    this.store.db.prepare('DELETE FROM shared_roots WHERE name = ?').run(name);
    journal('shared_roots', name, 'delete');
  }

  /** Removes one version row by its key (`name@version`); the root itself stays. */
  deleteVersionIn(journal: Journal, key: string): void {
    this.store.db.prepare('DELETE FROM shared_root_versions WHERE key = ?').run(key);
    journal('shared_root_versions', key, 'delete');
  }

  assignments(): DisklessAssignment[] {
    return (this.store.db.prepare('SELECT * FROM diskless_nodes ORDER BY mac').all() as Row[]).map(
      assignmentFromRow,
    );
  }

  assignment(mac: string): DisklessAssignment | undefined {
    const r = this.store.db.prepare('SELECT * FROM diskless_nodes WHERE mac = ?').get(mac) as Row | undefined;
    return r ? assignmentFromRow(r) : undefined;
  }

  usedBy(rootName: string): string[] {
    return (
      this.store.db
        .prepare('SELECT mac FROM diskless_nodes WHERE root_name = ? ORDER BY mac')
        .all(rootName) as { mac: string }[]
    ).map((r) => r.mac);
  }

  assignIn(
    journal: Journal,
    a: { mac: string; rootName: string; persistent: boolean; machineId: string },
  ): DisklessAssignment {
    this.store.db
      .prepare(
        `INSERT INTO diskless_nodes (mac, root_name, persistent, machine_id, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(mac) DO UPDATE SET root_name = excluded.root_name, persistent = excluded.persistent`,
      )
      .run(a.mac, a.rootName, a.persistent ? 1 : 0, a.machineId, this.store.now().toISOString());
    const row = this.store.row('diskless_nodes', a.mac);
    journal('diskless_nodes', a.mac, 'upsert', row);
    return assignmentFromRow(row as Row);
  }

  markBootedIn(journal: Journal, mac: string, version: number): void {
    this.store.db
      .prepare('UPDATE diskless_nodes SET booted_version = ?, booted_at = ? WHERE mac = ?')
      .run(version, this.store.now().toISOString(), mac);
    journal('diskless_nodes', mac, 'upsert', this.store.row('diskless_nodes', mac));
  }

  unassignIn(journal: Journal, mac: string): void {
    this.store.db.prepare('DELETE FROM diskless_nodes WHERE mac = ?').run(mac);
    journal('diskless_nodes', mac, 'delete');
  }
}
