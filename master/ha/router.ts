/**
 * /api/v1/ha: the replication feed and clone downloads (Bearer token shared by the masters), status for
 * users (Basic auth), the keepalived track probe (loopback, no secrets) and operator confirmation.
 */
import express, { type RequestHandler, type Router } from 'express';
import { createReadStream, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Authenticator } from '../auth/users.js';
import type { FrozenConfig } from '../config.js';
import { requireBasicAuth, requireRole } from '../api/auth.js';
import { zodToCorral } from '../api/errors.js';
import { openStore, type Store } from '../store/db.js';
import type { Repos } from '../store/repos.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { installPath } from '../util/paths.js';
import { VERSION } from '../util/version.js';
import type { HaController } from './controller.js';
import { fileManifest, sha256File, syncedFilePath, syncLayout, type FileEntry } from './files.js';
import { divergencePoint, HISTORY_KEY, type EpochStart } from './history.js';
import { tokenMatches } from './witness.js';
import { sendFile } from '../boot/send-file.js';

export interface HaRouterDeps {
  controller: HaController;
  repos: Repos;
  config: FrozenConfig;
  logger: Logger;
  authenticator: Authenticator;
}

const FeedQuery = z.object({
  since: z.coerce.number().int().min(0),
  epoch: z.coerce.number().int().min(0),
  node: z.string().max(64).optional(),
  wait: z.coerce.number().int().min(0).max(20_000).default(0),
});

const Discarded = z.object({
  nodeId: z.string().max(64),
  epoch: z.number().int().min(0),
  count: z.number().int().min(0),
  afterSeq: z.number().int().min(0),
  lastSeq: z.number().int().min(0),
  entities: z.array(z.string().max(200)).max(50),
});

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw zodToCorral(r.error);
  return r.data;
}

/** Secret material a backup needs besides the database: generated passwords and key folders. */
export function secretFiles(dataDir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dataDir, { withFileTypes: true })) {
    if (e.isFile() && !/^corral\.(db|json)|\.(log|part|tmp)$|^clone-/.test(e.name)) out.push(e.name);
    // tls/: both masters present the same certificate, so each can pin the other's (ha/peer-http.ts) and a
    // browser that accepted it keeps working after a fail-over to the VIP.
    if (e.isDirectory() && (e.name === 'keys' || e.name === 'secrets' || e.name === 'tls')) {
      for (const f of readdirSync(join(dataDir, e.name), { withFileTypes: true })) {
        if (f.isFile()) out.push(`${e.name}/${f.name}`);
      }
    }
  }
  return out.sort();
}

export async function templateManifest(): Promise<FileEntry[]> {
  const root = installPath('templates');
  const out: FileEntry[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p, `${prefix}${e.name}/`);
      else if (e.isFile())
        out.push({ path: `${prefix}${e.name}`, size: statSync(p).size, sha256: await sha256File(p) });
    }
  };
  await walk(root, '');
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

export function createHaRouter(deps: HaRouterDeps): Router {
  const { controller, repos, config } = deps;
  const store = repos.store;
  const router = express.Router();
  const token = config.ha.token ?? '';
  const requireToken: RequestHandler = (req, res, next) => {
    if (!tokenMatches(req.headers.authorization, token))
      return next(new CorralError('HA_TOKEN_INVALID', 'replication token missing or wrong'));
    // The token holder is the peer master or `corral clone`: it gets config and keys by design, so the
    // response check of master/http.ts (which hides registered secrets) lets these answers through.
    res.locals['secretsAllowed'] = true;
    next();
  };

  // keepalived's track script (curl over loopback): 200 while this master may hold the VIP.
  router.get('/track', (_req, res) => {
    res.status(controller.trackOk() ? 200 : 503).json({ ok: controller.trackOk(), role: controller.role });
  });

  router.get('/feed', requireToken, async (req, res) => {
    const q = parse(FeedQuery, req.query);
    if (q.epoch > store.epoch()) {
      // A follower from a later epoch: its journal holds writes ours lacks, so its `since` says nothing
      // about our writes (and its request is no sign of a following backup). Acknowledge nothing, step down.
      controller.learnEpoch(q.epoch);
      throw new CorralError(
        'NOT_PRIMARY',
        `this master is in epoch ${store.epoch()}, older than the follower's ${q.epoch}: it steps down`,
        { primary: controller.peerUrl },
      );
    }
    controller.assertWritable();
    const history = repos.settings.get<EpochStart[]>(HISTORY_KEY) ?? [];
    const base = () => ({
      epoch: store.epoch(),
      nodeId: controller.nodeId,
      lastSeq: store.lastChangeSeq(),
      history,
    });
    const cut = divergencePoint(history, store.lastChangeSeq(), q.epoch, q.since);
    if (cut !== undefined) {
      controller.acks.contact(undefined);
      res.json({ ...base(), truncateAfter: cut, changes: [] });
      return;
    }
    controller.acks.contact(q.since);
    let changes = repos.changes.since(q.since, 1000);
    if (!changes.length && q.wait > 0) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          off();
          clearTimeout(timer);
          resolve();
        };
        const off = store.onCommit(done);
        const timer = setTimeout(done, q.wait);
        req.once('close', done);
      });
      changes = repos.changes.since(q.since, 1000);
    }
    if (controller.role !== 'primary')
      throw new CorralError('NOT_PRIMARY', 'this master stopped being primary');
    res.json({ ...base(), changes });
  });

  router.post('/discarded', requireToken, express.json({ limit: '64kb' }), (req, res) => {
    const d = parse(Discarded, req.body);
    repos.events.append({
      kind: 'ha.tail-discarded',
      severity: 'warning',
      message: `${d.nodeId} rejoined as backup and discarded ${d.count} unreplicated change(s) of epoch ${d.epoch} (seq ${d.afterSeq + 1}-${d.lastSeq})`,
      actor: 'ha',
      data: d,
    });
    res.status(204).end();
  });

  router.get('/clone/info', requireToken, async (_req, res) => {
    const secrets = secretFiles(config.dataDir).map((name) => {
      const p = join(config.dataDir, name);
      return { name, mode: statSync(p).mode & 0o777, base64: readFileSync(p).toString('base64') };
    });
    res.json({
      version: VERSION,
      schemaVersion: store.schemaVersion(),
      epoch: store.epoch(),
      lastSeq: store.lastChangeSeq(),
      config,
      secrets,
      templates: await templateManifest(),
    });
  });

  // A consistent online copy (SQLite backup API): pages changed while it runs are copied again.
  router.get('/clone/db', requireToken, async (_req, res) => {
    const tmp = join(config.dataDir, `clone-${randomBytes(4).toString('hex')}.db`);
    try {
      await store.backup(tmp);
      const copy = openStore({ path: tmp, logger: deps.logger });
      const lastSeq = copy.lastChangeSeq();
      const integrity = copy.integrityCheck();
      copy.close();
      if (integrity !== 'ok')
        throw new CorralError('CLONE_FAILED', `backup copy failed its integrity check: ${integrity}`);
      const sha = await sha256File(tmp);
      res.setHeader('content-type', 'application/vnd.sqlite3');
      res.setHeader('content-length', String(statSync(tmp).size));
      res.setHeader('x-corral-sha256', sha);
      res.setHeader('x-corral-last-seq', String(lastSeq));
      await new Promise<void>((resolve, reject) => {
        const s = createReadStream(tmp);
        s.on('error', reject);
        res.on('close', resolve);
        s.pipe(res);
      });
    } finally {
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${tmp}${suffix}`, { force: true });
    }
  });

  router.get('/files', requireToken, async (_req, res) => {
    res.json({ files: await fileManifest(syncLayout(config)) });
  });

  router.get('/file', requireToken, (req, res) => {
    const p = typeof req.query['path'] === 'string' ? req.query['path'] : '';
    const file = syncedFilePath(syncLayout(config), p);
    if (!file) throw new CorralError('PATH_REFUSED', `not a replicated file: ${p}`);
    sendFile(res, file, deps.logger);
  });

  router.use(requireBasicAuth(deps.authenticator));
  router.get('/status', (_req, res) => {
    res.json(controller.status());
  });
  router.post('/promote', requireRole('admin'), express.json(), async (req, res) => {
    const body = parse(z.object({ confirm: z.literal(true) }).strict(), req.body);
    void body;
    await controller.confirmPromotion(req.user?.name ?? 'admin');
    res.json(controller.status());
  });
  return router;
}

/**
 * The write gate of API v1 and of the console (after its sign-in): a backup refuses writes (503
 * NOT_PRIMARY); on the primary, the answer to a request that wrote is held until the backup has
 * acknowledged the journal up to that write (sync mode).
 */
export function haWriteGate(controller: HaController, store: Store): RequestHandler {
  return (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
    if (controller.role !== 'primary') {
      return next(
        new CorralError('NOT_PRIMARY', `this master (${controller.nodeId}) is a read-only backup`, {
          primary: controller.peerUrl,
        }),
      );
    }
    const before = store.lastChangeSeq();
    const end = res.end.bind(res) as (...a: unknown[]) => typeof res;
    res.end = ((...args: unknown[]) => {
      const last = store.lastChangeSeq();
      if (last <= before || res.statusCode >= 400) return end(...args);
      controller.waitForAck(last).then(
        () => end(...args),
        (err: unknown) => {
          const e = err instanceof CorralError ? err : new CorralError('INTERNAL', 'replication wait failed');
          const body = JSON.stringify({
            error: {
              code: e.code,
              message: e.message,
              hint: e.hint,
              ...(e.details ? { details: e.details } : {}),
            },
          });
          if (res.headersSent) return end();
          res.statusCode = e.status;
          res.removeHeader('etag');
          res.setHeader('content-type', 'application/json; charset=utf-8');
          res.setHeader('content-length', String(Buffer.byteLength(body)));
          end(body);
        },
      );
      return res;
    }) as typeof res.end;
    next();
  };
}
