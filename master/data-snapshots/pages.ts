/**
 * Console pages for data snapshots of nodes, under the Snapshots page: the list with filters by node and
 * data set, the form that declares a data set, "snapshot now" per data set and node, and one snapshot with
 * its files and diff, the restore form (the name typed back; another node of the same kind may be chosen)
 * and delete. Thin: parse the form → call the service → render.
 *
 * Long operations show live progress as the monitor's pages show theirs: server-sent events
 * (`/snapshots/data/progress`, event `progress` with every operation that moved since the last one),
 * read by /static/data-snapshots.js. "Snapshot now" therefore answers at once with the running snapshot's
 * page; a restore keeps its form post (its result is the page it answers), and the page it was sent from
 * shows the transfer and the node's steps while it runs. Without JavaScript the pages still work.
 */
import express, { type Response, type Router } from 'express';
import { roleAllows } from '../api/auth.js';
import type { Role } from '../store/users.js';
import { CorralError, isCorralError } from '../util/errors.js';
import { requireConsoleRole, sendPage, signedIn, type ConsoleContext } from '../../web-ui/page.js';
import { resolveSession, sessionCookie } from '../../web-ui/session-guard.js';
import type { DataSnapshotRecord } from '../store/data-sets.js';
import { formatBytes } from '../../web-ui/format.js';
import { describeProgress, type OperationProgress } from './progress.js';
import { publicDataSet, type DataSnapshots } from './service.js';

/** An operation as the page and its stream carry it: the facts and the line to show. */
function shown(o: OperationProgress): OperationProgress & { text: string } {
  return { ...o, text: describeProgress(o, formatBytes) };
}

function field(body: unknown, name: string): string {
  const v = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  return typeof v === 'string' ? v.trim() : '';
}

const BASE = '/snapshots/data';
/** How often a progress stream looks at the board (and re-checks its session). */
const STREAM_TICK_MS = 1000;
const KEEPALIVE_MS = 20_000;

export function createDataSnapshotPages(ctx: ConsoleContext, service: DataSnapshots): Router {
  const router = express.Router();
  const role = (res: Response): Role => signedIn(res)?.user.role ?? 'viewer';
  const need = (res: Response): void => {
    if (!roleAllows(role(res), 'admin')) throw new CorralError('FORBIDDEN', 'this needs the admin role');
  };
  const actor = (res: Response): string | null => signedIn(res)?.user.name ?? null;
  const href = (s: DataSnapshotRecord): string => `${BASE}/${s.id}`;

  const listPage = (
    res: Response,
    q: { node?: string; dataSet?: string },
    error?: string,
    form?: unknown,
  ): void => {
    const sets = service.sets();
    let snapshots: DataSnapshotRecord[] = [];
    let filterError: string | undefined;
    try {
      snapshots = service.list(q);
    } catch (err) {
      filterError = (err as Error).message;
    }
    const nodes = ctx.repos.nodes.list();
    sendPage(
      ctx,
      res,
      'data-snapshots',
      {
        title: 'Data snapshots',
        nav: 'snapshots',
        canAdmin: roleAllows(role(res), 'admin'),
        // A filtered list shows only the operations of that node or data set, as its table does.
        progress: service.board
          .list()
          .filter((o) => (!q.node || o.node === q.node) && (!q.dataSet || o.dataSet === q.dataSet))
          .map(shown),
        filter: q,
        filterError,
        error,
        form: form ?? {},
        nodes: nodes.map((n) => ({ name: n.name, selected: n.name === q.node })),
        dataSets: sets.map((d) => ({
          ...publicDataSet(d),
          selected: d.name === q.dataSet,
          on: d.nodeMac
            ? `node ${nodes.find((n) => n.mac === d.nodeMac)?.name ?? d.nodeMac}`
            : d.role
              ? `role ${d.role}`
              : `tag ${d.tag}`,
          covered: service.nodesOf(d).map((n) => ({ name: n.name })),
          scheduleText:
            (['hourly', 'daily', 'weekly'] as const).filter((p) => d.schedule[p]).join(', ') || 'manual only',
        })),
        snapshots: snapshots.map((s) => ({
          ...s,
          href: href(s),
          position: s.position?.walEnd
            ? `LSN ${s.position.walEnd}`
            : s.position?.binlogFile
              ? `${s.position.binlogFile}:${s.position.binlogPos}`
              : '',
        })),
      },
      error ? 400 : 200,
    );
  };

  router.get(BASE, (req, res) => {
    const node = typeof req.query['node'] === 'string' ? req.query['node'] : '';
    const dataSet = typeof req.query['dataSet'] === 'string' ? req.query['dataSet'] : '';
    listPage(res, { ...(node ? { node } : {}), ...(dataSet ? { dataSet } : {}) });
  });

  router.post(`${BASE}/sets`, (req, res) => {
    need(res);
    const b = req.body as Record<string, unknown>;
    const target = field(b, 'target');
    const on = field(b, 'on');
    const port = field(b, 'port');
    const decl = {
      name: field(b, 'name'),
      kind: field(b, 'kind'),
      path: field(b, 'path'),
      ...(on === 'node' ? { node: target } : on === 'role' ? { role: target } : { tag: target }),
      connection: {
        ...(field(b, 'host') ? { host: field(b, 'host') } : {}),
        ...(port ? { port: Number(port) } : {}),
        ...(field(b, 'user') ? { user: field(b, 'user') } : {}),
        ...(field(b, 'database') ? { database: field(b, 'database') } : {}),
        ...(field(b, 'password') ? { password: field(b, 'password') } : {}),
      },
      ...(field(b, 'stopCommand') ? { stopCommand: field(b, 'stopCommand') } : {}),
      ...(field(b, 'startCommand') ? { startCommand: field(b, 'startCommand') } : {}),
      schedule: { hourly: b['hourly'] === 'on', daily: b['daily'] === 'on', weekly: b['weekly'] === 'on' },
    };
    try {
      service.declare(decl);
    } catch (err) {
      if (isCorralError(err)) {
        const kept: Record<string, unknown> = { ...b };
        delete kept['password'];
        return listPage(res, {}, `${err.message}. ${err.hint}`, kept);
      }
      throw err;
    }
    res.redirect(303, `${BASE}?dataSet=${encodeURIComponent(decl.name)}`);
  });

  router.post(`${BASE}/sets/:id/snapshot`, (req, res) => {
    need(res);
    const node = field(req.body, 'node');
    try {
      const started = service.begin(String(req.params['id'] ?? ''), {
        ...(node ? { node } : {}),
        actor: actor(res),
      });
      // Its end (or failure) reaches the page through the progress stream, the log and the event log.
      started.done.catch(() => undefined);
      res.redirect(303, href(started.snapshot));
    } catch (err) {
      if (isCorralError(err)) return listPage(res, {}, `${err.message}. ${err.hint}`);
      throw err;
    }
  });

  router.post(`${BASE}/sets/:id/delete`, (req, res) => {
    need(res);
    try {
      service.deleteSet(String(req.params['id'] ?? ''));
    } catch (err) {
      if (isCorralError(err)) return listPage(res, {}, `${err.message}. ${err.hint}`);
      throw err;
    }
    res.redirect(303, BASE);
  });

  const detailPage = (res: Response, s: DataSnapshotRecord, error?: string, result?: unknown): void => {
    const d = service.diff(s.id);
    const set = service.sets().find((x) => x.id === s.dataSetId);
    const sameKind = service
      .sets()
      .filter((x) => x.kind === s.kind)
      .flatMap((x) =>
        service.nodesOf(x).map((n) => ({
          value: `${x.name}@${n.name}`,
          label: `${n.name} (${x.name})`,
          selected: x.id === s.dataSetId && n.mac === s.nodeMac,
        })),
      );
    sendPage(
      ctx,
      res,
      'data-snapshot',
      {
        title: `Data snapshot ${s.name}`,
        nav: 'snapshots',
        snapshot: s,
        dataSet: set ? publicDataSet(set) : null,
        files: service.files(s.id).slice(0, 500),
        fileCount: s.files,
        diff: d.diff,
        diffAgainst: d.to,
        targets: sameKind,
        running: s.status === 'running',
        progress: service.board
          .list()
          .filter((o) => o.snapshotId === s.id || o.forSnapshotId === s.id)
          .map(shown),
        canAdmin: roleAllows(role(res), 'admin'),
        error,
        result,
      },
      error ? 400 : 200,
    );
  };

  router.get(`${BASE}/progress`, (req, res) => {
    requireConsoleRole(res, 'viewer');
    const sessionId = sessionCookie(req);
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 5000\n\n');
    let seen = -1;
    const tick = (): void => {
      // As the monitor's stream: a stream outlives the session check made at connect, so peek again.
      if (!resolveSession(ctx, sessionId, 'peek')) {
        res.write(`event: session-ended\ndata: ${JSON.stringify({ login: '/login?expired=1' })}\n\n`);
        end();
        res.end();
        return;
      }
      const all = service.board.list();
      const moved = all.filter((o) => o.version > seen);
      if (!moved.length && seen >= 0) return;
      seen = Math.max(seen, 0, ...all.map((o) => o.version));
      res.write(`event: progress\ndata: ${JSON.stringify(moved.map(shown))}\n\n`);
    };
    const poll = setInterval(tick, STREAM_TICK_MS);
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    const end = (): void => {
      clearInterval(poll);
      clearInterval(keepalive);
    };
    tick();
    req.on('close', end);
    res.on('error', end);
  });

  router.get(`${BASE}/:id`, (req, res) => detailPage(res, service.get(String(req.params['id'] ?? ''))));

  router.post(`${BASE}/:id/restore`, async (req, res) => {
    need(res);
    const s = service.get(String(req.params['id'] ?? ''));
    if (field(req.body, 'confirm') !== s.name) {
      return detailPage(res, s, `Type the snapshot's name "${s.name}" exactly to confirm the restore.`);
    }
    const [dataSet, node] = field(req.body, 'target').split('@');
    try {
      const result = await service.restore(s.id, {
        ...(dataSet ? { dataSet } : {}),
        ...(node ? { node } : {}),
        actor: actor(res),
      });
      detailPage(res, s, undefined, result);
    } catch (err) {
      // Refused (corrupt archive) or failed and rolled back: said on the snapshot's own page.
      if (isCorralError(err)) return detailPage(res, s, `${err.message}. ${err.hint}`);
      throw err;
    }
  });

  router.post(`${BASE}/:id/delete`, (req, res) => {
    need(res);
    service.delete(String(req.params['id'] ?? ''));
    res.redirect(303, BASE);
  });
  return router;
}
