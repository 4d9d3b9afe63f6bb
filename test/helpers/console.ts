/**
 * One console harness for the console's integration tests: a temporary store with users, the real
 * console router on a loopback port, and a signed-in Browser (login form with its CSRF token; pages
 * fetched and forms posted through test/helpers/browser.ts). Each test adds the feature deps it needs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { hashPassword } from '../../master/auth/passwords.js';
import { Authenticator } from '../../master/auth/users.js';
import { buildConfig, type FrozenConfig } from '../../master/config.js';
import { openRepos, type Repos } from '../../master/store/repos.js';
import type { Role } from '../../master/store/users.js';
import { silentLogger, type Logger } from '../../master/util/logger.js';
import { createConsoleRouter, type ConsoleDeps } from '../../web-ui/console.js';
import { Browser } from './browser.js';

export interface ConsoleHarness {
  /** `http://127.0.0.1:PORT` of the console. */
  base: string;
  dir: string;
  repos: Repos;
  config: FrozenConfig;
  /** The console's clock (epoch ms); tests move it to expire sessions. */
  clock: { ms: number };
  /** A Browser signed in through the login form (asserts the 303 of a good sign-in). */
  signIn(user: string, password: string): Promise<Browser>;
  close(): Promise<void>;
}

export interface ConsoleHarnessOptions {
  /** Users created before the console starts: name, role, password (hashed for real, as the product does). */
  users: readonly (readonly [name: string, role: Role, password: string])[];
  /** Config file content (the data directory and addresses are set by the harness). */
  config?: Record<string, unknown>;
  /** Start of the console's clock; the store and the authenticator share it. Default: real time. */
  startMs?: number;
  /** Rows and files the test needs before the console starts. */
  seed?(repos: Repos, dir: string, config: FrozenConfig): void | Promise<void>;
  /** The feature deps of the console under test (shared roots, deploy, power, ...). */
  deps?(h: { repos: Repos; config: FrozenConfig; logger: Logger; dir: string }): Partial<ConsoleDeps>;
  secureCookies?: boolean;
}

export async function startConsoleHarness(options: ConsoleHarnessOptions): Promise<ConsoleHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'corral-console-'));
  const clock = { ms: options.startMs ?? Date.now() };
  const now = options.startMs === undefined ? Date.now : (): number => clock.ms;
  const logger = silentLogger();
  const repos = openRepos({ path: join(dir, 'corral.db'), logger, now: () => new Date(now()) });
  try {
    const hashes = new Map<string, string>();
    for (const [, , password] of options.users) {
      if (!hashes.has(password)) hashes.set(password, await hashPassword(password));
    }
    repos.store.write((journal) => {
      for (const [name, role, password] of options.users) {
        repos.users.upsertIn(journal, name, hashes.get(password) ?? '', role);
      }
    });
    const config = buildConfig(
      { dataDir: dir, ...options.config },
      { address: '10.9.0.1', dhcpRange: '10.9.0.100-10.9.0.199' },
    );
    await options.seed?.(repos, dir, config);
    const app = express();
    app.use(
      createConsoleRouter({
        repos,
        config,
        logger,
        authenticator: new Authenticator(repos, now),
        now,
        ...(options.secureCookies ? { secureCookies: true } : {}),
        ...options.deps?.({ repos, config, logger, dir }),
      }),
    );
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      base,
      dir,
      repos,
      config,
      clock,
      signIn: async (user, password) => {
        const b = new Browser(base);
        assert.equal((await b.login(user, password)).status, 303, `${user} signs in`);
        return b;
      },
      close: async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        repos.store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    repos.store.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
