import { sqliteOf, type Journal, type SqliteStore, type Store } from './db.js';

export const IMAGE_FORMATS = ['tar', 'tar.gz', 'tar.zst', 'raw', 'raw.gz'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export interface ImageRecord {
  sha256: string;
  name: string;
  format: ImageFormat;
  sizeBytes: number;
  osName: string | null;
  osVersion: string | null;
  /** Smallest root (tarballs: unpacked size plus headroom) or disk (raw: image size) it fits on. */
  minDiskBytes: number;
  /** File name inside DATA_DIR/images (content-addressed: `<sha256>.<format>`). */
  file: string;
  createdAt: string;
}

interface ImageRow {
  sha256: string;
  name: string;
  format: ImageFormat;
  size_bytes: number;
  os_name: string | null;
  os_version: string | null;
  min_disk_bytes: number;
  file: string;
  created_at: string;
}

function fromRow(r: ImageRow): ImageRecord {
  return {
    sha256: r.sha256,
    name: r.name,
    format: r.format,
    sizeBytes: r.size_bytes,
    osName: r.os_name,
    osVersion: r.os_version,
    minDiskBytes: r.min_disk_bytes,
    file: r.file,
    createdAt: r.created_at,
  };
}

/** The image catalogue. Files live in DATA_DIR/images; master/images/ keeps rows and files in step. */
export class ImageStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  list(): ImageRecord[] {
    return (this.store.db.prepare('SELECT * FROM images ORDER BY name').all() as ImageRow[]).map(fromRow);
  }

  getByName(name: string): ImageRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM images WHERE name = ?').get(name) as ImageRow | undefined;
    return r ? fromRow(r) : undefined;
  }

  get(sha256: string): ImageRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM images WHERE sha256 = ?').get(sha256) as
      ImageRow | undefined;
    return r ? fromRow(r) : undefined;
  }

  insertIn(journal: Journal, img: Omit<ImageRecord, 'createdAt'>): ImageRecord {
    this.store.db
      .prepare(
        `INSERT INTO images (sha256, name, format, size_bytes, os_name, os_version, min_disk_bytes, file, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        img.sha256,
        img.name,
        img.format,
        img.sizeBytes,
        img.osName,
        img.osVersion,
        img.minDiskBytes,
        img.file,
        this.store.now().toISOString(),
      );
    const row = this.store.row('images', img.sha256) as unknown as ImageRow;
    journal('images', img.sha256, 'upsert', row as unknown as Record<string, unknown>);
    return fromRow(row);
  }

  deleteIn(journal: Journal, sha256: string): void {
    this.store.db.prepare('DELETE FROM images WHERE sha256 = ?').run(sha256);
    journal('images', sha256, 'delete');
  }

  /** Names of nodes whose `image` is this one (deployed or being deployed). */
  usedBy(sha256: string): string[] {
    return (
      this.store.db.prepare('SELECT name FROM nodes WHERE image = ? ORDER BY name').all(sha256) as {
        name: string;
      }[]
    ).map((r) => r.name);
  }
}
