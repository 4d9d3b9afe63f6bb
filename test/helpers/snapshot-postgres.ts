/**
 * A real PostgreSQL for the data-snapshot tests and bench: initdb in a temp dir, listening only on a
 * unix socket in that dir (no TCP), run as the `postgres` user when we are root (PostgreSQL refuses
 * root). Every process started here is stopped by `stop()`; callers put it in after()/finally.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { psqlArgs, type PgConnection } from './psql-session.js';

const exec = promisify(execFile);

export function pgBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const v = versions.find((x) => existsSync(join(root, x, 'bin', 'postgres')));
  if (!v)
    throw new Error('PostgreSQL server not installed (apt-get install postgresql; scripts/setup.sh does it)');
  return join(root, v, 'bin');
}

const asRoot = process.getuid?.() === 0;

/** Runs a PostgreSQL server-side tool as the database user. */
export async function asPg(bin: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const { stdout } = await exec(cmd, argv, { timeout: timeoutMs, maxBuffer: 16 << 20 });
  return stdout;
}

function ownToPg(path: string): void {
  if (!asRoot) return;
  const { uid, gid } = pgIds();
  chownSync(path, uid, gid);
}

let ids: { uid: number; gid: number } | undefined;
export function pgIds(): { uid: number; gid: number } {
  if (!ids) {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('postgres:'));
    if (!line) throw new Error('no postgres user (installed with the postgresql package)');
    const f = line.split(':');
    ids = { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return ids;
}

export interface PgServer {
  dataDir: string;
  conn: PgConnection;
  stop(): Promise<void>;
}

export class PgLab {
  readonly base: string;
  readonly bin = pgBinDir();
  private readonly servers: PgServer[] = [];
  private readonly children = new Set<ChildProcess>();

  constructor() {
    this.base = mkdtempSync(join(tmpdir(), 'corral-pgsnap-'));
    ownToPg(this.base);
  }

  path(...p: string[]): string {
    return join(this.base, ...p);
  }

  async initdb(name: string): Promise<string> {
    const dir = this.path(name);
    await asPg(join(this.bin, 'initdb'), [
      '-D',
      dir,
      '-A',
      'trust',
      '-U',
      'postgres',
      '--no-sync',
      '-E',
      'UTF8',
      '--locale=C',
    ]);
    return dir;
  }

  /** Starts a server on `dataDir` with its socket in a fresh dir of its own. */
  async start(dataDir: string, port: number): Promise<PgServer> {
    const sock = this.path(`sock-${port}`);
    mkdirSync(sock, { recursive: true });
    ownToPg(sock);
    const log = this.path(`pg-${port}.log`);
    await asPg(
      join(this.bin, 'pg_ctl'),
      [
        '-D',
        dataDir,
        '-l',
        log,
        '-w',
        '-t',
        '60',
        '-o',
        `-k ${sock} -c listen_addresses= -p ${port} -c max_wal_size=1GB -c fsync=on`,
        'start',
      ],
      90_000,
    ).catch((err: Error) => {
      const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '(no log)';
      throw new Error(`${err.message.split('\n')[0]}\n--- ${log}:\n${tail}`);
    });
    const server: PgServer = {
      dataDir,
      conn: { host: sock, port, user: 'postgres', database: 'postgres' },
      stop: async () => {
        await asPg(join(this.bin, 'pg_ctl'), [
          '-D',
          dataDir,
          '-m',
          'immediate',
          '-w',
          '-t',
          '30',
          'stop',
        ]).catch(() => undefined);
      },
    };
    this.servers.push(server);
    return server;
  }

  /** A client process whose lifetime this lab bounds (pgbench). */
  spawnClient(cmd: string, args: string[]): ChildProcess {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  async psql(conn: PgConnection, sql: string): Promise<string> {
    const { stdout } = await exec('psql', [...psqlArgs(conn), '-c', sql], {
      timeout: 120_000,
      maxBuffer: 64 << 20,
    });
    return stdout;
  }

  async cleanup(): Promise<void> {
    for (const c of this.children) c.kill('SIGKILL');
    for (const s of this.servers.splice(0).reverse()) await s.stop();
    rmSync(this.base, { recursive: true, force: true });
  }
}

/** Whoever we are, for messages. */
export function runningAs(): string {
  return asRoot ? 'root (servers as postgres via runuser)' : userInfo().username;
}

/** Completion times (epoch ms) from pgbench `-l` logs: `client txn latency_us script epoch_s epoch_us`. */
export function pgbenchCompletions(dir: string, prefix: string): number[] {
  const out: number[] = [];
  for (const f of readdirSync(dir).filter((n) => n.startsWith(`${prefix}.`))) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      const p = line.trim().split(/\s+/);
      if (p.length < 6) continue;
      out.push(Number(p[4]) * 1000 + Number(p[5]) / 1000);
    }
  }
  return out.sort((a, b) => a - b);
}

/** Longest time without a completed transaction that overlaps [from, to]. */
export function maxGapDuring(times: readonly number[], from: number, to: number): number {
  let max = 0;
  for (let i = 1; i < times.length; i++) {
    const a = times[i - 1] ?? 0;
    const b = times[i] ?? 0;
    if (b >= from && a <= to) max = Math.max(max, b - a);
  }
  return max;
}
