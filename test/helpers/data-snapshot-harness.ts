/**
 * What the data-snapshot test and bench share: "a node Corral manages" as a real OpenSSH server on a
 * loopback port of its own (the master's key its only authorized key, a fresh host key pinned on first
 * contact), a store with two node records pointing at it (node-a, node-b), and the data-snapshots
 * feature's real API routes on a loopback HTTP port (the caller is an admin; Basic auth is tested
 * elsewhere). `close()` stops everything it started, by the child's own handle.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createConnection, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { apiErrorHandler } from '../../master/api/errors.js';
import { hashPassword } from '../../master/auth/passwords.js';
import { Authenticator } from '../../master/auth/users.js';
import { createConsoleRouter } from '../../web-ui/console.js';
import { startDataSnapshots, type DataSnapshotsFeature } from '../../master/data-snapshots/index.js';
import { ensureMasterKey } from '../../master/deploy/ssh.js';
import { openRepos, type Repos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';
import type { ApiTarget } from './api.js';
import { hasCommand } from './netns.js';
import { testConfig } from './repos.js';

export const SSHD = '/usr/sbin/sshd';
export const CONSOLE_PASSWORD = 'data snapshots console test';

export interface DataSnapshotHarness {
  /** A temp dir (mode 0755, so database users can traverse it) removed by close(). */
  dir: string;
  masterDataDir: string;
  target: ApiTarget;
  /** The console (the real router with the feature's pages), signed in as admin with CONSOLE_PASSWORD. */
  consoleUrl: string;
  repos: Repos;
  feature: DataSnapshotsFeature;
  close(): Promise<void>;
}

export function harnessSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (sshd, servers as postgres/mysql)';
  if (!hasCommand(SSHD)) return 'openssh-server is not installed (scripts/setup.sh --test)';
  if (!hasCommand('/usr/sbin/mariadbd')) return 'mariadb-server is not installed (scripts/setup.sh --test)';
  if (!hasCommand('pgbench')) return 'postgresql is not installed (scripts/setup.sh --test)';
  return false;
}

async function waitForBanner(port: number): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port });
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('SSH-'));
      });
      s.once('error', () => resolve(false));
      s.setTimeout(1000, () => {
        s.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`sshd did not answer on 127.0.0.1:${port}`);
    await sleep(100);
  }
}

export async function startHarness(sshPort: number): Promise<DataSnapshotHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'corral-datasnap-'));
  chmodSync(dir, 0o755);
  let sshd: ChildProcess | undefined;
  let repos: Repos | undefined;
  let feature: DataSnapshotsFeature | undefined;
  let http: Server | undefined;
  let consoleHttp: Server | undefined;
  const close = async (): Promise<void> => {
    await feature?.close();
    await new Promise((r) => (http ? http.close(r) : r(undefined)));
    await new Promise((r) => (consoleHttp ? consoleHttp.close(r) : r(undefined)));
    sshd?.kill('SIGTERM');
    repos?.store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const masterDataDir = join(dir, 'master');
    const key = await ensureMasterKey(masterDataDir);
    writeFileSync(join(dir, 'authorized_keys'), `${key.publicKey}\n`, { mode: 0o600 });
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'hostkey')]);
    const conf = join(dir, 'sshd.conf');
    writeFileSync(
      conf,
      [
        `Port ${sshPort}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(dir, 'hostkey')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'LogLevel ERROR',
      ].join('\n') + '\n',
    );
    execFileSync(SSHD, ['-t', '-f', conf]);
    sshd = spawn(SSHD, ['-D', '-e', '-f', conf], { stdio: 'ignore' });
    await waitForBanner(sshPort);

    repos = openRepos({ path: join(masterDataDir, 'corral.db'), logger: silentLogger() });
    const r = repos;
    const adminHash = await hashPassword(CONSOLE_PASSWORD);
    r.store.write((journal) => r.users.upsertIn(journal, 'admin', adminHash, 'admin'));
    r.store.write((journal) => {
      r.nodes.insertIn(journal, {
        mac: '52:54:00:17:00:0a',
        name: 'node-a',
        seqNo: 1,
        state: 'deployed',
        ip: '127.0.0.1',
      });
      r.nodes.insertIn(journal, {
        mac: '52:54:00:17:00:0b',
        name: 'node-b',
        seqNo: 2,
        state: 'deployed',
        ip: '127.0.0.1',
      });
    });
    const config = testConfig({
      dataDir: masterDataDir,
      remote: { exec: { port: sshPort } },
      dataSnapshots: { progressSeconds: 1, startWaitSeconds: 90 },
    });
    feature = startDataSnapshots({ config, repos, logger: silentLogger(), schedule: false });
    const app = express();
    app.use(express.json());
    app.use((req, _res, next) => {
      req.user = { name: 'admin', role: 'admin', createdAt: '', updatedAt: '' };
      next();
    });
    app.use('/api/v1', feature.api);
    app.use(apiErrorHandler(silentLogger()));
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    http = server;
    const consoleApp = express();
    consoleApp.use(
      createConsoleRouter({
        repos,
        config,
        logger: silentLogger(),
        authenticator: new Authenticator(repos),
        pages: [feature.pages],
      }),
    );
    const consoleServer = await new Promise<Server>((resolve) => {
      const s = consoleApp.listen(0, '127.0.0.1', () => resolve(s));
    });
    consoleHttp = consoleServer;
    return {
      consoleUrl: `http://127.0.0.1:${(consoleServer.address() as AddressInfo).port}`,
      dir,
      masterDataDir,
      target: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, password: 'unused' },
      repos,
      feature,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
