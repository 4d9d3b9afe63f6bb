/**
 * Debian's docker-registry (distribution v2.8) as a supervised child of the master: `docker-registry
 * serve CONFIG`, in the foreground, restarted with backoff by the shared supervisor when it dies.
 *
 * The registry has no check mode (`garbage-collect --dry-run` fails on an empty store, and the parser
 * ignores unknown keys), so, as for nfs-ganesha, the check of the shared install step is a trial start:
 *
 *   render → config.yml.next → stop the running registry → serve config.yml.next → GET /v2/ answers 200
 *   → config.yml.prev keeps the old → rename over config.yml
 *
 * A config that does not serve is refused (REGISTRY_FAILED) and the previous one started again. The
 * registry reads its config only at start, so "reload" is that restart.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { installByTrialStart } from '../daemons/config-install.js';
import { Supervisor, type SupervisorStatus } from '../daemons/supervisor.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

export interface RegistrySettings {
  bind: string;
  port: number;
  /** config.yml, its .prev/.next, the HTTP secret and `storage/` go here. */
  dir: string;
}

/** A YAML double-quoted scalar (JSON strings are valid YAML 1.2). */
const q = (s: string): string => JSON.stringify(s);

/**
 * The registry's config.yml (docs/configuration.md of distribution). `secret` signs upload state between
 * requests; kept in a file so that it stays the same across restarts. Storage deletes are allowed so an
 * operator can remove tags; the storage health check makes /v2/ answer 503 when the store is unusable.
 */
export function renderRegistryConfig(s: RegistrySettings, secret: string): string {
  return `# Written by Corral (master/registry/daemon.ts); changes are overwritten at the next start.
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${q(join(s.dir, 'storage'))}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: true
      age: 24h
      interval: 1h
      dryrun: false
http:
  addr: ${q(`${s.bind}:${s.port}`)}
  secret: ${q(secret)}
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`;
}

/** GET /v2/ answers 200 (the API's version check, spec "API Version Check"). */
export function apiAnswers(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/v2/', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * logrus' `level=` field to a pino level: the registry logs every request at info, and a HEAD for a blob
 * it lacks (how every push starts) at error with `blob unknown`: that is an answer, not a fault.
 */
function lineLevel(line: string): 'debug' | 'info' | 'warn' {
  if (/err\.code="?(blob|manifest) unknown/.test(line)) return 'debug';
  return /level=(warning|error|fatal|panic)/.test(line) ? 'warn' : 'debug';
}

export class RegistryDaemon {
  readonly configPath: string;
  private readonly daemon: Supervisor;
  private conf: string;

  constructor(
    private readonly settings: RegistrySettings,
    bin: string,
    logger: Logger,
  ) {
    this.configPath = join(settings.dir, 'config.yml');
    this.conf = this.configPath;
    const probeHost = settings.bind === '0.0.0.0' ? '127.0.0.1' : settings.bind;
    this.daemon = new Supervisor({
      name: 'docker-registry',
      bin,
      args: () => ['serve', this.conf],
      logger,
      backoff: { initialMs: 1000, maxMs: 30_000 },
      readyTimeoutMs: 10_000,
      ready: async ({ child }) => {
        while (!(await apiAnswers(probeHost, settings.port, 1000))) {
          if (child.exitCode !== null || child.signalCode !== null) return;
          await sleep(100);
        }
      },
      lineLevel,
      codes: { missing: 'REGISTRY_FAILED', failed: 'REGISTRY_FAILED' },
    });
  }

  /** `http://BIND:PORT`: where Corral pushes (the engine nodes pull from the same address). */
  get url(): string {
    return `http://${this.settings.bind}:${this.settings.port}`;
  }

  get running(): boolean {
    return this.daemon.running;
  }

  status(): SupervisorStatus {
    return this.daemon.status();
  }

  /** The child's pid (tests kill it to check the supervisor and a re-push). */
  get pid(): number | undefined {
    return this.daemon.pid;
  }

  private async secret(): Promise<string> {
    const file = join(this.settings.dir, 'http-secret');
    if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
    const secret = randomBytes(24).toString('hex');
    await writeFile(file, `${secret}\n`, { mode: 0o600 });
    return secret;
  }

  /** Renders, trial-starts and installs the config; resolves once the registry serves it. */
  async start(): Promise<void> {
    await mkdir(join(this.settings.dir, 'storage'), { recursive: true });
    const text = renderRegistryConfig(this.settings, await this.secret());
    await installByTrialStart(
      { path: this.configPath, text, mode: 0o600 },
      {
        daemon: this.daemon,
        use: (path) => (this.conf = path),
        rejected: (err) =>
          new CorralError(
            'REGISTRY_FAILED',
            `docker-registry did not serve the rendered config: ${err.message}`,
          ),
      },
    );
  }

  stop(): Promise<void> {
    return this.daemon.stop();
  }
}
