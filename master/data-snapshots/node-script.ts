/**
 * The part of a data snapshot that runs ON THE NODE, as one bash script sent over SSH (the node needs no
 * Corral agent: bash, tar, gzip and the database's own client tools, which a node running that database
 * has). The script writes the gzip-compressed archive to stdout (the SSH channel, streamed to the master)
 * and reports facts on stderr as `CORRAL <key> <value>` lines; anything else on stderr is the tools' own
 * output, kept for the error message. The database password is never on a command line (the node's `ps`
 * would show it): the master sends it as the first line of stdin.
 *
 * Consistency per kind (docs/data-snapshots.md):
 * - files: a read-only btrfs snapshot of the subvolume holding the path when there is one (instant, so the
 *   tree is copied as of one moment); else tar of the live tree.
 * - sqlite: SQLite's online backup API (`sqlite3 .backup`, or Python's sqlite3 where the CLI is missing).
 * - postgresql: `pg_basebackup -Ft -X fetch` to stdout, no lock on writers; a temporary physical
 *   replication slot made with immediately_reserve keeps every WAL segment the backup needs until it is
 *   fetched (PostgreSQL manual §27.2.6, replication slots; §26.3.2 for fetch mode's need of kept WAL).
 * - mysql (MariaDB/MySQL): on btrfs, `FLUSH TABLES WITH READ LOCK` held only while the subvolume snapshot is
 *   taken, then released and the snapshot copied at leisure; elsewhere `mariadb-dump --single-transaction`
 *   (one consistent InnoDB read view, no lock held for the dump).
 *
 * Restore: stop the service, move the current data aside, lay the archive, fix ownership to the target's,
 * start, check (pg_amcheck / mysqlcheck / PRAGMA integrity_check). On any failure after the move the old
 * data is put back and the service started again, so a failed restore leaves the node as it was.
 */

import { readFileSync } from 'node:fs';
import { installPath } from '../util/paths.js';

/** POSIX shell single-quoting: safe for any byte string except NUL. */
export function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

export interface NodeScriptParams {
  kind: 'files' | 'sqlite' | 'postgresql' | 'mysql';
  /** Snapshot id (letters, digits, underscore): names the btrfs snapshot, the replication slot, the aside copy. */
  id: string;
  path: string;
  host?: string | undefined;
  port?: number | undefined;
  user?: string | undefined;
  database?: string | undefined;
  stopCommand?: string | null | undefined;
  startCommand?: string | null | undefined;
  /** Restore only: the archive's format. */
  format?: 'tar' | 'sql' | undefined;
  /** Seconds to wait for the database to answer after start. */
  startWaitSeconds?: number | undefined;
}

/** The command line the master sends over SSH: `env VAR=... bash -c SCRIPT corral-data OP`. */
export function nodeCommand(op: 'snapshot' | 'restore', p: NodeScriptParams): string {
  if (!/^[a-z0-9_]{1,48}$/.test(p.id)) throw new Error(`bad snapshot id for a node script: ${p.id}`);
  const vars: Record<string, string> = {
    CORRAL_KIND: p.kind,
    CORRAL_ID: p.id,
    CORRAL_PATH: p.path,
    CORRAL_HOST: p.host ?? '',
    CORRAL_PORT: p.port === undefined ? '' : String(p.port),
    CORRAL_USER: p.user ?? '',
    CORRAL_DB: p.database ?? '',
    CORRAL_STOP: p.stopCommand ?? '',
    CORRAL_START: p.startCommand ?? '',
    CORRAL_FORMAT: p.format ?? '',
    CORRAL_WAIT: String(p.startWaitSeconds ?? 120),
  };
  const env = Object.entries(vars)
    .map(([k, v]) => `${k}=${shq(v)}`)
    .join(' ');
  return `env ${env} bash -c ${shq(nodeScript())} corral-data ${op}`;
}

/** Default service control when a data set names none (systemd units of Debian's packages). */
export function defaultServiceCommands(
  kind: NodeScriptParams['kind'],
): { stop: string; start: string } | null {
  if (kind === 'postgresql')
    return { stop: 'systemctl stop postgresql', start: 'systemctl start postgresql' };
  if (kind === 'mysql') return { stop: 'systemctl stop mariadb', start: 'systemctl start mariadb' };
  return null;
}

let script: string | undefined;
/** The script (templates/data-snapshots/node.sh), read once. */
export function nodeScript(): string {
  script ??= readFileSync(installPath('templates', 'data-snapshots', 'node.sh'), 'utf8');
  return script;
}
