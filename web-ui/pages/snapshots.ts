/**
 * Console pages for restore points (issue #9): the list with a create form and the retention policy
 * (preview shows what would be kept and removed, and why, before apply), and one restore point with its
 * diff against the live master, the restore form that asks for the name typed back, and delete.
 */
import type { Response, Router } from 'express';
import { roleAllows } from '../../master/api/auth.js';
import type { Snapshots } from '../../master/snapshots/index.js';
import { RETENTION_SETTING } from '../../master/snapshots/index.js';
import type { Manifest } from '../../master/snapshots/manifest.js';
import type { SnapshotDiff } from '../../master/snapshots/restore-points.js';
import {
  RetentionPolicySchema,
  type RetentionPlan,
  type RetentionPolicy,
} from '../../master/snapshots/retention.js';
import type { Role } from '../../master/store/users.js';
import { CorralError, isCorralError } from '../../master/util/errors.js';
import { sendPage, signedIn, type ConsoleContext } from '../page.js';

function field(body: unknown, name: string): string {
  const v = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  return typeof v === 'string' ? v.trim() : '';
}

export function policyFromForm(body: unknown): RetentionPolicy {
  const num = (n: string): number | undefined => (field(body, n) === '' ? undefined : Number(field(body, n)));
  const r = RetentionPolicySchema.safeParse({
    keepLast: num('keepLast'),
    keepHourly: num('keepHourly'),
    keepDaily: num('keepDaily'),
    keepWeekly: num('keepWeekly'),
  });
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new CorralError(
      'BODY_INVALID',
      `${issue?.path.join('.') ?? 'policy'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return r.data;
}

export function mountSnapshots(router: Router, ctx: ConsoleContext, snapshots: Snapshots): void {
  const { points } = snapshots;
  const role = (res: Response): Role => signedIn(res)?.user.role ?? 'viewer';
  const need = (res: Response, min: Role): void => {
    if (!roleAllows(role(res), min)) throw new CorralError('FORBIDDEN', `this needs the ${min} role`);
  };
  const actor = (res: Response): string | null => signedIn(res)?.user.name ?? null;
  const href = (m: Manifest): string => `/snapshots/${encodeURIComponent(m.id)}`;

  const listPage = (
    res: Response,
    extra: { policy?: RetentionPolicy; plan?: RetentionPlan; applied?: boolean },
  ): void => {
    const list = points.list();
    const plan = extra.plan;
    const removing = new Set(plan?.remove.map((r) => r.id) ?? []);
    const keepReasons = new Map(plan?.keep.map((k) => [k.id, k.reasons.join(', ')]) ?? []);
    sendPage(ctx, res, 'snapshots', {
      title: 'Snapshots',
      nav: 'snapshots',
      canAdmin: roleAllows(role(res), 'admin'),
      policy: extra.policy ?? snapshots.retention(),
      preview: plan && !extra.applied ? { keep: plan.keep.length, remove: plan.remove.length } : null,
      applied: extra.applied && plan ? { removed: plan.remove.length } : null,
      snapshots: list.map((m) => ({
        ...m,
        href: href(m),
        imageCount: m.images.length,
        verdict:
          plan && !extra.applied ? (removing.has(m.id) ? 'remove' : (keepReasons.get(m.id) ?? '')) : null,
        removing: removing.has(m.id) && !extra.applied,
      })),
    });
  };

  router.get('/snapshots', (_req, res) => listPage(res, {}));

  router.post('/snapshots', async (req, res) => {
    need(res, 'admin');
    const name = field(req.body, 'name');
    const note = field(req.body, 'note');
    const m = await points.create({
      ...(name ? { name } : {}),
      ...(note ? { note } : {}),
      kind: 'manual',
      actor: actor(res),
    });
    res.redirect(303, href(m));
  });

  router.post('/snapshots/retention', async (req, res) => {
    const policy = policyFromForm(req.body);
    if (field(req.body, 'action') === 'apply') {
      need(res, 'admin');
      ctx.repos.settings.set(RETENTION_SETTING, policy);
      const plan = await points.applyRetention(policy, actor(res));
      return listPage(res, { policy, plan, applied: true });
    }
    listPage(res, { policy, plan: points.previewRetention(policy) });
  });

  const detailPage = (res: Response, m: Manifest, error?: string): void => {
    let diff: SnapshotDiff | undefined;
    let diffError: string | undefined;
    try {
      diff = points.diff(m.id, 'current');
    } catch (err) {
      // A damaged database copy must not hide the page that says so.
      diffError = (err as Error).message;
    }
    sendPage(
      ctx,
      res,
      'snapshot',
      {
        title: `Snapshot ${m.name}`,
        nav: 'snapshots',
        snapshot: m,
        files: Object.entries(m.files ?? {}).map(([file, f]) => ({ file, size: f.bytes, sha256: f.sha256 })),
        canAdmin: roleAllows(role(res), 'admin'),
        diff,
        diffError,
        unchanged:
          diff !== undefined &&
          !diff.tables.some((t) => t.restored) &&
          !diff.config.length &&
          !diff.templates.length,
        configChanges: (diff?.config ?? []).map((c) => ({
          key: c.key,
          from: JSON.stringify(c.from),
          to: JSON.stringify(c.to),
        })),
        error,
      },
      error ? 400 : 200,
    );
  };

  router.get('/snapshots/:id', (req, res) => detailPage(res, points.get(String(req.params['id'] ?? ''))));

  router.post('/snapshots/:id/restore', async (req, res) => {
    need(res, 'admin');
    const m = points.get(String(req.params['id'] ?? ''));
    if (field(req.body, 'confirm') !== m.name) {
      return detailPage(res, m, `Type the restore point's name "${m.name}" exactly to confirm the restore.`);
    }
    let result;
    try {
      result = await points.restore(m.id, actor(res));
    } catch (err) {
      // Refused before anything changed: said on the restore point's own page, with what to do.
      if (isCorralError(err) && (err.code === 'SNAPSHOT_CORRUPT' || err.code === 'SNAPSHOT_INCOMPATIBLE')) {
        return detailPage(res, m, `${err.message}. ${err.hint}`);
      }
      throw err;
    }
    sendPage(ctx, res, 'snapshot-restored', {
      title: `Restored ${m.name}`,
      nav: 'snapshots',
      result,
      safetyHref: href(result.safety),
      tables: Object.entries(result.summary.tables).map(([table, c]) => ({ table, ...c })),
      skipped: Object.entries(result.summary.skipped).map(([table, why]) => ({ table, why })),
    });
  });

  router.post('/snapshots/:id/delete', async (req, res) => {
    need(res, 'admin');
    await points.delete(String(req.params['id'] ?? ''), actor(res));
    res.redirect(303, '/snapshots');
  });
}
