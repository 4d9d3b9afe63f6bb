import { sqliteOf, type SqliteStore, type Store } from './db.js';

export interface ExecRunRecord {
  id: number;
  startedAt: string;
  finishedAt: string | null;
  actor: string;
  via: 'api' | 'console' | 'cli';
  command: string;
  targets: string[];
  summary: Record<string, unknown> | null;
  /** Prefixed output lines, bounded (the tail is kept). */
  output: string;
}

interface Row {
  id: number;
  started_at: string;
  finished_at: string | null;
  actor: string;
  via: ExecRunRecord['via'];
  command: string;
  targets: string;
  summary: string | null;
  output: string;
}

const MAX_OUTPUT = 256 * 1024;

function fromRow(r: Row): ExecRunRecord {
  return {
    id: r.id,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    actor: r.actor,
    via: r.via,
    command: r.command,
    targets: JSON.parse(r.targets) as string[],
    summary: r.summary ? (JSON.parse(r.summary) as Record<string, unknown>) : null,
    output: r.output,
  };
}

/**
 * Commands run on nodes and their output: the audit log's long-form companion (an audit row names the
 * run). Per master and not journaled, like the audit log itself.
 */
export class ExecRunStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  start(r: { actor: string; via: ExecRunRecord['via']; command: string; targets: string[] }): number {
    const info = this.store.db
      .prepare(
        "INSERT INTO exec_runs (started_at, actor, via, command, targets, output) VALUES (?, ?, ?, ?, ?, '')",
      )
      .run(this.store.now().toISOString(), r.actor, r.via, r.command, JSON.stringify(r.targets));
    return Number(info.lastInsertRowid);
  }

  finish(id: number, summary: Record<string, unknown>, output: string): void {
    const kept =
      output.length > MAX_OUTPUT
        ? `[... ${output.length - MAX_OUTPUT} characters cut]\n${output.slice(-MAX_OUTPUT)}`
        : output;
    this.store.db
      .prepare('UPDATE exec_runs SET finished_at = ?, summary = ?, output = ? WHERE id = ?')
      .run(this.store.now().toISOString(), JSON.stringify(summary), kept, id);
  }

  get(id: number): ExecRunRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM exec_runs WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  list(limit = 50): ExecRunRecord[] {
    return (
      this.store.db.prepare('SELECT * FROM exec_runs ORDER BY id DESC LIMIT ?').all(limit) as Row[]
    ).map(fromRow);
  }
}
