/**
 * Master restore points: create, list, show, diff, restore, delete, and retention over them.
 *
 * Restore while the master runs is row-level and journaled (see SnapshotStore.restoreFrom): the store
 * file is never swapped under the running daemon, every subsystem keeps its open handle, sessions stay,
 * and a backup master follows the restore through its change feed. A restore first takes a safety
 * restore point. A restore point from an older schema is migrated on a temporary copy first; one with a
 * migration this Corral does not know is refused (SNAPSHOT_INCOMPATIBLE); one whose files no longer match
 * the manifest's checksums, or whose database fails SQLite's integrity check, is refused before anything
 * is changed (SNAPSHOT_CORRUPT).
 */
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import type { Repos } from '../store/repos.js';
import { openStore, type Store } from '../store/db.js';
import { SCHEMA_VERSION } from '../store/migrations.js';
import {
  databaseContents,
  diffDatabaseFiles,
  integrityOfFile,
  isRestoredTable,
  unknownMigrations,
  type RestoreSummary,
  type SnapshotStore,
  type TableDiff,
} from '../store/snapshots.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { VERSION } from '../util/version.js';
import {
  checksumRestorePoint,
  CONFIG_FILE,
  DB_FILE,
  listManifests,
  newSnapshotId,
  TEMPLATES_DIR,
  verifyFile,
  verifyRestorePoint,
  writeManifest,
  type Manifest,
} from './manifest.js';
import { planRetention, type RetentionPlan, type RetentionPolicy, type SnapshotKind } from './retention.js';
import { redactSetting } from '../util/redact.js';

export interface RestorePointsOptions {
  repos: Repos;
  /** Where restore points live (config snapshots.dir, default DATA_DIR/snapshots). */
  dir: string;
  logger: Logger;
  /** The master's effective config, kept in each restore point (omitted by offline tools). */
  config?: unknown;
  /** Templates folder copied into each restore point (none when absent). */
  templatesDir?: string;
  now?: () => Date;
  /** A new id for a time (default newSnapshotId: the second and 4 random hex digits). */
  newId?: (at: Date) => string;
}

/** Draws of a new id before giving up: two restore points in one second may draw the same suffix. */
const ID_DRAWS = 64;

export interface CreateOptions {
  name?: string;
  note?: string;
  kind?: SnapshotKind;
  reason?: string;
  actor?: string | null;
  /** A database file to keep instead of a backup of the live one (the pre-migration copy). */
  sourceDb?: string;
}

export interface ConfigChange {
  key: string;
  from: unknown;
  to: unknown;
}

export interface TemplateChange {
  file: string;
  change: 'added' | 'removed' | 'changed';
}

export interface SnapshotDiff {
  from: string;
  to: string;
  /** `restored`: whether a restore puts this table back (logs and live state are kept, see NOT_RESTORED). */
  tables: (TableDiff & { restored: boolean })[];
  config: ConfigChange[];
  templates: TemplateChange[];
}

export interface RestoreResult {
  restored: Manifest;
  safety: Manifest;
  summary: RestoreSummary;
  /** Config keys that differ from the restore point's: config is applied at the next start (see docs). */
  configChanged: ConfigChange[];
  templatesChanged: TemplateChange[];
  durationMs: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class RestorePoints {
  readonly dir: string;
  private readonly repos: Repos;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly newId: (at: Date) => string;
  private readonly snapshots: SnapshotStore;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: RestorePointsOptions) {
    this.dir = options.dir;
    this.repos = options.repos;
    this.logger = options.logger.child({ module: 'snapshots' });
    this.now = options.now ?? (() => new Date());
    this.newId = options.newId ?? newSnapshotId;
    this.snapshots = options.repos.snapshots;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /** One operation at a time: a restore must not interleave with a backup or a delete. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  list(): Manifest[] {
    return listManifests(this.dir);
  }

  /** By id, or by name (the newest of that name). */
  get(idOrName: string): Manifest {
    const all = this.list();
    const found = all.find((m) => m.id === idOrName) ?? all.find((m) => m.name === idOrName);
    if (!found) throw new CorralError('SNAPSHOT_NOT_FOUND', `no restore point with id or name '${idOrName}'`);
    return found;
  }

  pathOf(m: Manifest): string {
    return join(this.dir, m.id);
  }

  /** For other subsystems (image delete, mass deploy): an automatic restore point before a risky operation. */
  takeSnapshot(reason: string, actor: string | null = null): Promise<Manifest> {
    return this.create({ kind: 'auto', reason, actor });
  }

  create(options: CreateOptions = {}): Promise<Manifest> {
    return this.serial(() => this.createNow(options));
  }

  /**
   * An id whose folder (and its `.tmp-` twin) does not exist yet. Restore points made in the same second
   * (an automatic one before a risky operation beside a scheduled one; a test's run) share the time part,
   * and the 4 hex digits after it collide once in 65,536 pairs: the rename onto an existing restore point
   * then failed with ENOTEMPTY (seen in CI run 15).
   */
  private freeId(at: Date): string {
    for (let i = 0; i < ID_DRAWS; i++) {
      const id = this.newId(at);
      if (!existsSync(join(this.dir, id)) && !existsSync(join(this.dir, `.tmp-${id}`))) return id;
    }
    throw new CorralError(
      'SNAPSHOT_FAILED',
      `restore point not created: no free id for ${at.toISOString()} in ${ID_DRAWS} draws`,
    );
  }

  private async createNow(options: CreateOptions): Promise<Manifest> {
    if (options.name !== undefined && !NAME.test(options.name)) {
      throw new CorralError('BODY_INVALID', 'name: 1-64 letters, digits, dot, dash or underscore');
    }
    const started = Date.now();
    const at = this.now();
    const id = this.freeId(at);
    const tmp = join(this.dir, `.tmp-${id}`);
    mkdirSync(tmp, { mode: 0o700 });
    try {
      if (options.sourceDb) copyFileSync(options.sourceDb, join(tmp, DB_FILE));
      else await this.repos.store.backup(join(tmp, DB_FILE));
      const hasConfig = this.options.config !== undefined;
      if (hasConfig) {
        writeFileSync(join(tmp, CONFIG_FILE), `${JSON.stringify(this.options.config, null, 2)}\n`, {
          mode: 0o600,
        });
      }
      let templates: Record<string, string> = {};
      if (this.options.templatesDir && existsSync(this.options.templatesDir)) {
        cpSync(this.options.templatesDir, join(tmp, TEMPLATES_DIR), { recursive: true });
        templates = hashTree(join(tmp, TEMPLATES_DIR));
      }
      const { images, migrations } = databaseContents(join(tmp, DB_FILE));
      const unsealed: Manifest = {
        format: 1,
        id,
        name: options.name ?? id,
        note: options.note ?? '',
        kind: options.kind ?? 'manual',
        reason: options.reason ?? '',
        createdAt: at.toISOString(),
        actor: options.actor ?? null,
        corralVersion: VERSION,
        schemaVersion: Math.max(0, ...migrations),
        migrations,
        dbBytes: statSync(join(tmp, DB_FILE)).size,
        durationMs: Date.now() - started,
        images,
        templates,
        hasConfig,
        // Last, once nothing in the folder changes any more.
        files: checksumRestorePoint(tmp),
      };
      const manifest = writeManifest(tmp, unsealed);
      renameSync(tmp, join(this.dir, id));
      this.event(
        'snapshot.created',
        `restore point ${manifest.name} created (${manifest.kind})`,
        options.actor,
        {
          id,
          kind: manifest.kind,
          reason: manifest.reason,
        },
      );
      this.logger.info(
        { id, kind: manifest.kind, ms: manifest.durationMs, bytes: manifest.dbBytes },
        'restore point created',
      );
      return manifest;
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      if (err instanceof CorralError) throw err;
      throw new CorralError('SNAPSHOT_FAILED', `restore point not created: ${(err as Error).message}`);
    }
  }

  delete(idOrName: string, actor: string | null = null): Promise<Manifest> {
    return this.serial(async () => {
      const m = this.get(idOrName);
      // Rename first: the restore point vanishes from the list at once even if the removal is slow.
      const doomed = join(this.dir, `.del-${m.id}`);
      renameSync(this.pathOf(m), doomed);
      rmSync(doomed, { recursive: true, force: true });
      this.event('snapshot.deleted', `restore point ${m.name} deleted`, actor, { id: m.id });
      return m;
    });
  }

  /** What changed from restore point `from` to `to` (another restore point, or 'current' for the live master). */
  diff(from: string, to = 'current'): SnapshotDiff {
    const a = this.get(from);
    const b = to === 'current' ? undefined : this.get(to);
    const aPath = join(this.pathOf(a), DB_FILE);
    const tables = (
      b ? diffDatabaseFiles(aPath, join(this.pathOf(b), DB_FILE)) : this.snapshots.diffFrom(aPath)
    ).map((t) => ({
      ...t,
      restored: isRestoredTable(t.table),
    }));
    return {
      from: a.id,
      to: b ? b.id : 'current',
      tables,
      config: diffConfig(this.configOf(a), b ? this.configOf(b) : this.options.config),
      templates: diffTemplates(a.templates, b ? b.templates : this.currentTemplates()),
    };
  }

  restore(idOrName: string, actor: string | null = null): Promise<RestoreResult> {
    return this.serial(async () => {
      const started = Date.now();
      const target = this.get(idOrName);
      const source = this.openMigratedCopy(target);
      try {
        const safety = await this.createNow({
          kind: 'safety',
          reason: `before restore of ${target.name}`,
          actor,
        });
        const summary = this.snapshots.restoreFrom(source.path);
        const result: RestoreResult = {
          restored: target,
          safety,
          summary,
          configChanged: diffConfig(this.options.config, this.configOf(target)),
          templatesChanged: diffTemplates(this.currentTemplates(), target.templates),
          durationMs: Date.now() - started,
        };
        this.event(
          'snapshot.restored',
          `restored restore point ${target.name} (safety copy ${safety.id})`,
          actor,
          {
            id: target.id,
            safety: safety.id,
            tables: summary.tables,
          },
        );
        this.logger.warn(
          { id: target.id, safety: safety.id, tables: summary.tables },
          'restore point restored',
        );
        return result;
      } finally {
        source.close();
      }
    });
  }

  /**
   * The restore point's database brought to this Corral's schema, on a temporary copy (the restore point
   * itself is never modified). Refuses one with migrations this Corral does not know, and one that is
   * damaged: the checksums are compared on the copy that is used, not on the file it came from.
   */
  private openMigratedCopy(m: Manifest): { path: string; close(): void } {
    // First: a damaged manifest's list of migrations is not to be believed either.
    verifyRestorePoint(this.pathOf(m), m, [DB_FILE]);
    const unknown = unknownMigrations(m.migrations);
    if (unknown.length) {
      throw new CorralError(
        'SNAPSHOT_INCOMPATIBLE',
        `restore point ${m.name} was taken by Corral ${m.corralVersion} at schema version ${m.schemaVersion} ` +
          `(migrations ${unknown.join(', ')} unknown here); this master is at schema version ${SCHEMA_VERSION}: ` +
          `upgrade Corral to at least ${m.corralVersion} to restore it`,
        { snapshotSchema: m.schemaVersion, masterSchema: SCHEMA_VERSION, unknownMigrations: unknown },
      );
    }
    const tmp = join(this.dir, `.restore-${m.id}-${process.pid}.db`);
    copyFileSync(join(this.pathOf(m), DB_FILE), tmp);
    try {
      verifyFile(m, tmp, DB_FILE, m.files?.[DB_FILE]);
      checkDatabase(m, tmp);
    } catch (err) {
      rmTemp(tmp);
      throw err;
    }
    let store: Store;
    try {
      store = openStore({ path: tmp, logger: this.logger });
    } catch (err) {
      rmTemp(tmp);
      throw new CorralError(
        'SNAPSHOT_INCOMPATIBLE',
        `restore point ${m.name} cannot be migrated: ${(err as Error).message}`,
      );
    }
    // Closed before the restore reads it: SQLite folds the migration's WAL into the file.
    store.close();
    return { path: tmp, close: () => rmTemp(tmp) };
  }

  previewRetention(policy: RetentionPolicy): RetentionPlan {
    return planRetention(this.list(), policy);
  }

  applyRetention(policy: RetentionPolicy, actor: string | null = null): Promise<RetentionPlan> {
    return this.serial(async () => {
      const plan = planRetention(this.list(), policy);
      for (const r of plan.remove) {
        const doomed = join(this.dir, `.del-${r.id}`);
        renameSync(join(this.dir, r.id), doomed);
        rmSync(doomed, { recursive: true, force: true });
      }
      if (plan.remove.length) {
        this.event('snapshot.pruned', `retention removed ${plan.remove.length} restore point(s)`, actor, {
          removed: plan.remove.map((r) => r.id),
        });
      }
      return plan;
    });
  }

  private configOf(m: Manifest): unknown {
    const path = join(this.pathOf(m), CONFIG_FILE);
    if (!m.hasConfig || !existsSync(path)) return undefined;
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  }

  private currentTemplates(): Record<string, string> {
    const d = this.options.templatesDir;
    return d && existsSync(d) ? hashTree(d) : {};
  }

  private event(
    kind: string,
    message: string,
    actor: string | null | undefined,
    data: Record<string, unknown>,
  ): void {
    try {
      this.repos.store.write((journal) =>
        this.repos.events.appendIn(journal, { kind, message, actor: actor ?? null, data }),
      );
    } catch (err) {
      // A backup master refuses writes: the restore point exists; only its event is missing.
      this.logger.warn({ err, kind }, 'snapshot event not recorded');
    }
  }
}

/**
 * `PRAGMA integrity_check` on a restore point's database (a copy of it): a checksum only proves the file
 * is the one written, and a restore point written before checksums existed has none.
 */
export function checkDatabase(m: Manifest, path: string): void {
  let result: string;
  try {
    result = integrityOfFile(path);
  } catch (err) {
    result = (err as Error).message;
  }
  if (result !== 'ok') {
    throw new CorralError(
      'SNAPSHOT_CORRUPT',
      `restore point ${m.name} (${m.id}) is damaged: ${DB_FILE} fails PRAGMA integrity_check (${result.split('\n')[0]}); nothing was restored`,
      { id: m.id, file: DB_FILE },
    );
  }
}

function rmTemp(path: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
}

/** sha256 of every file under `root`, by relative path. */
export function hashTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile())
        out[relative(root, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(root);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * Flattens JSON to dotted keys (arrays compared whole) and lists keys whose values differ. Secret values
 * (ha.token, passwords, URL user-info) are shown as "(set; hidden)": a changed token still shows as a
 * change, but the diff, read by viewers through the API and the console, never carries the value.
 */
export function diffConfig(from: unknown, to: unknown): ConfigChange[] {
  if (from === undefined || to === undefined) return [];
  const flat = (v: unknown, prefix: string, out: Map<string, string>): Map<string, string> => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, child] of Object.entries(v)) flat(child, prefix ? `${prefix}.${k}` : k, out);
    } else out.set(prefix, JSON.stringify(v));
    return out;
  };
  const a = flat(from, '', new Map());
  const b = flat(to, '', new Map());
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  const parse = (s: string | undefined): unknown =>
    s === undefined ? undefined : (JSON.parse(s) as unknown);
  return keys
    .filter((k) => a.get(k) !== b.get(k))
    .map((k) => ({ key: k, from: redactSetting(k, parse(a.get(k))), to: redactSetting(k, parse(b.get(k))) }));
}

export function diffTemplates(from: Record<string, string>, to: Record<string, string>): TemplateChange[] {
  const files = [...new Set([...Object.keys(from), ...Object.keys(to)])].sort();
  const out: TemplateChange[] = [];
  for (const file of files) {
    if (!(file in from)) out.push({ file, change: 'added' });
    else if (!(file in to)) out.push({ file, change: 'removed' });
    else if (from[file] !== to[file]) out.push({ file, change: 'changed' });
  }
  return out;
}
