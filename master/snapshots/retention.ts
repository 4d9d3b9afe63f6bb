/**
 * Schedules and retention of restore points, as pure functions of a list and a clock, so a policy can be
 * previewed (what would be kept, what deleted, and why) before it is applied.
 *
 * Rules in the style of restic/borg `forget`: keep the newest `keepLast`; for each of the `keepHourly`
 * newest hours that hold a restore point, keep the newest one in that hour; likewise days and ISO weeks.
 * Buckets are UTC so a plan does not depend on the master's time zone. Manual restore points are never
 * removed by retention (an admin made them on purpose); only scheduled, automatic and safety ones are.
 */
import { z } from 'zod';

export const SNAPSHOT_KINDS = ['manual', 'scheduled', 'auto', 'safety'] as const;
export type SnapshotKind = (typeof SNAPSHOT_KINDS)[number];

export const RetentionPolicySchema = z
  .object({
    keepLast: z.number().int().min(0).max(1000).default(5),
    keepHourly: z.number().int().min(0).max(1000).default(24),
    keepDaily: z.number().int().min(0).max(1000).default(7),
    keepWeekly: z.number().int().min(0).max(1000).default(4),
  })
  .strict();
export type RetentionPolicy = z.infer<typeof RetentionPolicySchema>;

export const ScheduleSchema = z
  .object({
    hourly: z.boolean().default(false),
    daily: z.boolean().default(false),
    weekly: z.boolean().default(false),
  })
  .strict();
export type Schedule = z.infer<typeof ScheduleSchema>;

export interface SnapshotRef {
  id: string;
  createdAt: string;
  kind: SnapshotKind;
}

export interface RetentionPlan {
  keep: { id: string; reasons: string[] }[];
  remove: { id: string; createdAt: string; kind: SnapshotKind }[];
}

export type Period = 'hourly' | 'daily' | 'weekly';

/** The UTC bucket a time falls in: hour, day, or ISO 8601 week (weeks start on Monday). */
export function bucketOf(period: Period, at: Date): string {
  const iso = at.toISOString();
  if (period === 'hourly') return iso.slice(0, 13);
  if (period === 'daily') return iso.slice(0, 10);
  // ISO week: the week's Thursday decides the year (ISO 8601 §3.2.2).
  const d = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
  const weekday = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${d.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

const RULES: { period: Period; field: keyof RetentionPolicy; label: string }[] = [
  { period: 'hourly', field: 'keepHourly', label: 'hourly' },
  { period: 'daily', field: 'keepDaily', label: 'daily' },
  { period: 'weekly', field: 'keepWeekly', label: 'weekly' },
];

export function planRetention(snapshots: readonly SnapshotRef[], policy: RetentionPolicy): RetentionPlan {
  const newestFirst = [...snapshots].sort((a, b) =>
    a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1,
  );
  const reasons = new Map<string, string[]>();
  const because = (id: string, why: string): void => {
    const list = reasons.get(id) ?? [];
    list.push(why);
    reasons.set(id, list);
  };
  const managed = newestFirst.filter((s) => s.kind !== 'manual');
  for (const s of newestFirst) if (s.kind === 'manual') because(s.id, 'manual');
  managed.slice(0, policy.keepLast).forEach((s, i) => because(s.id, `last ${i + 1}/${policy.keepLast}`));
  for (const rule of RULES) {
    const limit = policy[rule.field];
    const seen = new Set<string>();
    for (const s of managed) {
      if (seen.size >= limit) break;
      const bucket = bucketOf(rule.period, new Date(s.createdAt));
      if (seen.has(bucket)) continue;
      seen.add(bucket);
      because(s.id, `${rule.label} ${bucket}`);
    }
  }
  return {
    keep: newestFirst
      .filter((s) => reasons.has(s.id))
      .map((s) => ({ id: s.id, reasons: reasons.get(s.id) ?? [] })),
    remove: newestFirst
      .filter((s) => !reasons.has(s.id))
      .map((s) => ({ id: s.id, createdAt: s.createdAt, kind: s.kind })),
  };
}

/**
 * The scheduled periods due now: enabled, and no scheduled restore point yet in the current bucket.
 * One restore point taken now satisfies every due period.
 */
export function dueSchedules(now: Date, schedule: Schedule, snapshots: readonly SnapshotRef[]): Period[] {
  const scheduled = snapshots.filter((s) => s.kind === 'scheduled');
  return (['hourly', 'daily', 'weekly'] as const).filter(
    (p) => schedule[p] && !scheduled.some((s) => bucketOf(p, new Date(s.createdAt)) === bucketOf(p, now)),
  );
}
