/**
 * One PostgreSQL session held open through `psql` (no client library needed, so the same code can run on
 * a node through the agent later). A non-exclusive backup lives and dies with its session: if this
 * process or psql exits, the server aborts the backup and nothing is left behind.
 *
 * Each query is followed by `\echo <marker>`; the lines before the marker are the result rows (unaligned,
 * tuples only, '|' between fields). With ON_ERROR_STOP, a failing statement makes psql exit, which
 * rejects the pending query with psql's message.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CorralError } from '../../master/util/errors.js';

export interface PgConnection {
  /** Unix socket directory or host name. */
  host: string;
  port: number;
  user: string;
  database: string;
  /** psql binary; defaults to `psql` on PATH. */
  psql?: string;
}

export function psqlArgs(conn: PgConnection): string[] {
  return [
    '-X',
    '-q',
    '-A',
    '-t',
    '-v',
    'ON_ERROR_STOP=1',
    '-h',
    conn.host,
    '-p',
    String(conn.port),
    '-U',
    conn.user,
    '-d',
    conn.database,
  ];
}

interface Pending {
  marker: string;
  resolve: (rows: string[][]) => void;
  reject: (err: Error) => void;
  lines: string[];
}

export class PsqlSession {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffer = '';
  private stderr = '';
  private queue: Pending[] = [];
  private seq = 0;
  private exited: Error | undefined;

  constructor(conn: PgConnection) {
    this.child = spawn(conn.psql ?? 'psql', psqlArgs(conn), {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PGAPPNAME: 'corral-snapshot', PGCONNECT_TIMEOUT: '10' },
    });
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => this.onData(chunk));
    this.child.stderr.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
    this.child.stdin.on('error', () => undefined);
    this.child.on('error', (err) => this.fail(err));
    this.child.on('exit', (code, signal) =>
      this.fail(new Error(`psql exited (${signal ?? code}): ${this.stderr.trim() || 'no message'}`)),
    );
  }

  private fail(err: Error): void {
    this.exited ??= err;
    for (const p of this.queue.splice(0)) p.reject(err);
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      const head = this.queue[0];
      if (!head) continue;
      if (line === head.marker) {
        this.queue.shift();
        head.resolve(head.lines.filter((l) => l !== '').map((l) => l.split('|')));
      } else head.lines.push(line);
    }
  }

  /** Runs one SQL statement (no trailing semicolon needed) and returns its rows as split fields. */
  query(sql: string, timeoutMs = 300_000): Promise<string[][]> {
    if (this.exited) return Promise.reject(this.exited);
    const marker = `__corral_done_${process.pid}_${++this.seq}__`;
    return new Promise<string[][]>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new CorralError(
            'DATA_SNAPSHOT_FAILED',
            `query timed out after ${timeoutMs} ms: ${sql.slice(0, 80)}`,
          ),
        );
        this.close();
      }, timeoutMs);
      this.queue.push({
        marker,
        lines: [],
        resolve: (rows) => {
          clearTimeout(timer);
          resolve(rows);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.child.stdin.write(`${sql.replace(/;\s*$/, '')};\n\\echo ${marker}\n`);
    });
  }

  /** Ends the session (and with it any backup still open in it). */
  close(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.stdin.end();
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      t.unref();
      this.child.once('exit', () => clearTimeout(t));
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }
}
