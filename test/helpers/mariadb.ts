/**
 * A real MariaDB server for the data-snapshot test and bench: mariadb-install-db into a temp dir,
 * mariadbd as the `mysql` user on a Unix socket only (--skip-networking), binary log on (the snapshot
 * records its position). Started detached (setsid) so the same start command works from an SSH session
 * (a restore starts the server again there); `stop()` shuts down whatever runs on the data dir.
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export function mysqlIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('mysql:'));
  if (!line) throw new Error('no mysql user (installed with the mariadb-server package)');
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

export interface MariaServer {
  dataDir: string;
  socket: string;
  pidFile: string;
  log: string;
  startCommand: string;
  stopCommand: string;
}

/** A data dir and the commands that start and stop a server on it (as a data set declares them). */
export function mariaServer(dataDir: string, runDir: string): MariaServer {
  const socket = join(runDir, 'mysqld.sock');
  const pidFile = join(runDir, 'mysqld.pid');
  const log = join(runDir, 'mysqld.log');
  const args = [
    '--no-defaults',
    `--datadir=${dataDir}`,
    `--socket=${socket}`,
    `--pid-file=${pidFile}`,
    `--log-error=${log}`,
    '--skip-networking',
    '--user=mysql',
    '--log-bin=mysql-bin',
    '--server-id=1',
    '--innodb-buffer-pool-size=64M',
    '--innodb-log-file-size=48M',
  ];
  return {
    dataDir,
    socket,
    pidFile,
    log,
    startCommand: `setsid -f /usr/sbin/mariadbd ${args.join(' ')} </dev/null >/dev/null 2>&1`,
    // shutdown returns before the server has gone; the pid file goes last.
    stopCommand: `mariadb-admin --no-defaults --socket=${socket} shutdown; for i in $(seq 1 300); do [ -e ${pidFile} ] || exit 0; sleep 0.2; done; exit 1`,
  };
}

export async function installMaria(dataDir: string, runDir: string): Promise<MariaServer> {
  const { uid, gid } = mysqlIds();
  for (const d of [dataDir, runDir]) {
    mkdirSync(d, { recursive: true, mode: 0o750 });
    chownSync(d, uid, gid);
  }
  await exec(
    'mariadb-install-db',
    [
      '--no-defaults',
      `--datadir=${dataDir}`,
      '--user=mysql',
      '--skip-test-db',
      '--auth-root-authentication-method=socket',
    ],
    { timeout: 120_000 },
  );
  return mariaServer(dataDir, runDir);
}

export async function startMaria(s: MariaServer): Promise<void> {
  await exec('bash', ['-c', s.startCommand], { timeout: 30_000 });
  const until = Date.now() + 60_000;
  for (;;) {
    try {
      await exec('mariadb-admin', ['--no-defaults', `--socket=${s.socket}`, 'ping'], { timeout: 5000 });
      return;
    } catch {
      if (Date.now() > until) {
        const tail = existsSync(s.log) ? readFileSync(s.log, 'utf8').split('\n').slice(-15).join('\n') : '';
        throw new Error(`mariadbd on ${s.dataDir} did not answer within 60 s\n${tail}`);
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

/** Stops the server on this data dir, whoever started it (the test, or a restore over SSH). */
export async function stopMaria(s: MariaServer): Promise<void> {
  await exec('bash', ['-c', s.stopCommand], { timeout: 90_000 }).catch(() => undefined);
  if (existsSync(s.pidFile)) {
    const pid = Number(readFileSync(s.pidFile, 'utf8').trim());
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

export async function mariaQuery(s: MariaServer, sql: string): Promise<string> {
  const { stdout } = await exec('mariadb', ['--no-defaults', `--socket=${s.socket}`, '-N', '-B', '-e', sql], {
    timeout: 300_000,
    maxBuffer: 64 << 20,
  });
  return stdout;
}

/** One client session kept open; each statement is followed by a marker SELECT that ends its rows. */
export class MariaSession {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffer = '';
  private waiting: {
    marker: string;
    lines: string[];
    resolve: (rows: string[][]) => void;
    reject: (e: Error) => void;
  }[] = [];
  private seq = 0;
  private dead: Error | undefined;

  constructor(s: MariaServer) {
    this.child = spawn('mariadb', ['--no-defaults', `--socket=${s.socket}`, '-N', '-B', '--unbuffered'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout.setEncoding('utf8');
    let err = '';
    this.child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    this.child.stdout.on('data', (c: string) => {
      this.buffer += c;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        const head = this.waiting[0];
        if (!head) continue;
        if (line === head.marker) {
          this.waiting.shift();
          head.resolve(head.lines.map((l) => l.split('\t')));
        } else head.lines.push(line);
      }
    });
    this.child.on('exit', () => {
      this.dead = new Error(`mariadb client exited: ${err.trim()}`);
      for (const w of this.waiting.splice(0)) w.reject(this.dead);
    });
  }

  query(sql: string): Promise<string[][]> {
    if (this.dead) return Promise.reject(this.dead);
    const marker = `__m${++this.seq}__`;
    return new Promise((resolve, reject) => {
      this.waiting.push({ marker, lines: [], resolve, reject });
      this.child.stdin.write(`${sql};\nSELECT '${marker}';\n`);
    });
  }

  close(): void {
    this.child.stdin.end();
    setTimeout(() => this.child.kill('SIGKILL'), 5000).unref();
  }
}
