/**
 * "Run command" (issue #11), admins only: runs a command on nodes over SSH like `corral node exec`. The
 * run starts in the background and the browser is sent to its page, which shows the output so far and
 * refreshes itself each second until the summary is in (no script needed; the CSP stays strict). Every
 * run is recorded (output in exec_runs, a row in the audit log naming it).
 */
import type { Router } from 'express';
import { clientIp } from '../../master/util/client-ip.js';
import { execOnNodes, resolveTargets } from '../../master/remote/exec-service.js';
import { formatSummary, type ExecSummary } from '../../master/remote/exec.js';
import { isCorralError } from '../../master/util/errors.js';
import { flash, formField, withFlash } from '../form.js';
import { requireConsoleRole, sendPage, type ConsoleContext } from '../page.js';

interface LiveRun {
  output: string[];
  done: boolean;
}

/** Runs still streaming (and a few finished ones); the database has every run's final record. */
const MAX_LIVE = 20;

export function mountExec(router: Router, ctx: ConsoleContext, privateKeyPath: string): void {
  const live = new Map<number, LiveRun>();

  router.get('/exec', (req, res) => {
    requireConsoleRole(res, 'admin');
    const roles = [
      ...new Set(
        ctx.repos.nodes
          .list()
          .map((n) => n.role)
          .filter((r): r is string => !!r),
      ),
    ].sort();
    const tags = [...new Set(ctx.repos.nodes.list().flatMap((n) => n.tags))].sort();
    sendPage(ctx, res, 'exec', {
      title: 'Run command',
      nav: 'exec',
      roles,
      tags,
      runs: ctx.repos.execRuns.list(20).map((r) => ({ ...r, line: summaryLine(r.summary) })),
      ...flash(req),
    });
  });

  router.post('/exec', async (req, res) => {
    const who = requireConsoleRole(res, 'admin');
    const nodes = formField(req, 'nodes', 4000)
      .split(/[\s,]+/)
      .filter(Boolean);
    const role = formField(req, 'role', 32) || undefined;
    const tag = formField(req, 'tag', 32) || undefined;
    const command = formField(req, 'command', 4000).trim();
    try {
      if (!command) throw new Error('Give a command to run.');
      resolveTargets(ctx.repos, { nodes, role, tag });
    } catch (err) {
      return void res.redirect(
        303,
        withFlash(
          '/exec',
          'err',
          isCorralError(err) ? `${err.message}. ${err.hint}` : (err as Error).message,
        ),
      );
    }
    const started = new Promise<number>((resolve, reject) => {
      let run: LiveRun | undefined;
      execOnNodes(
        { repos: ctx.repos, config: ctx.config, privateKeyPath },
        { nodes, role, tag, command, actor: who.user.name, via: 'console', ip: clientIp(req) },
        {
          start: (id) => {
            run = { output: [], done: false };
            live.set(id, run);
            for (const old of [...live.keys()].slice(0, Math.max(0, live.size - MAX_LIVE))) live.delete(old);
            resolve(id);
          },
          line: (text) => run?.output.push(text),
        },
      ).then(
        (r) => {
          if (run) {
            run.output.push('', ...r.summaryLines);
            run.done = true;
          }
        },
        (err: unknown) => {
          ctx.logger.warn({ err }, 'console exec failed');
          if (run) run.done = true;
          reject(err as Error);
        },
      );
    });
    const id = await started;
    res.redirect(303, `/exec/runs/${id}`);
  });

  router.get('/exec/runs/:id', (req, res) => {
    requireConsoleRole(res, 'admin');
    const id = Number(req.params['id']);
    const rec = Number.isInteger(id) ? ctx.repos.execRuns.get(id) : undefined;
    if (!rec) return void res.redirect(303, withFlash('/exec', 'err', `No run ${String(req.params['id'])}.`));
    const running = live.get(id);
    const finished = rec.finishedAt !== null;
    const text = finished
      ? `${rec.output}\n${formatSummary(rec.summary as unknown as ExecSummary).join('\n')}`
      : (running?.output.join('\n') ?? '');
    if (!finished && running) res.set('Refresh', '1');
    sendPage(ctx, res, 'exec-run', {
      title: `Run #${rec.id}`,
      nav: 'exec',
      run: rec,
      output: text,
      running: !finished && running !== undefined,
      lost: !finished && running === undefined,
    });
  });
}

function summaryLine(s: Record<string, unknown> | null): string {
  const x = s as { ok: number; failed: number; unreachable: number; timeout: number } | null;
  return x
    ? `${x.ok} ok, ${x.failed} failed, ${x.unreachable} unreachable, ${x.timeout} timed out`
    : 'running';
}
