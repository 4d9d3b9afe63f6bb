import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  bucketOf,
  dueSchedules,
  planRetention,
  type RetentionPolicy,
  type SnapshotRef,
} from '../../master/snapshots/retention.js';

const none: RetentionPolicy = { keepLast: 0, keepHourly: 0, keepDaily: 0, keepWeekly: 0 };

function snap(id: string, createdAt: string, kind: SnapshotRef['kind'] = 'scheduled'): SnapshotRef {
  return { id, createdAt, kind };
}

describe('retention', () => {
  it('buckets by UTC hour, day and ISO week (the week of 1 Jan 2021 belongs to 2020)', () => {
    assert.equal(bucketOf('hourly', new Date('2025-03-01T12:59:59Z')), '2025-03-01T12');
    assert.equal(bucketOf('daily', new Date('2025-03-01T23:59:59Z')), '2025-03-01');
    assert.equal(bucketOf('weekly', new Date('2021-01-01T00:00:00Z')), '2020-W53');
    assert.equal(bucketOf('weekly', new Date('2025-12-29T00:00:00Z')), '2026-W01');
    assert.equal(bucketOf('weekly', new Date('2025-03-02T23:00:00Z')), '2025-W09'); // a Sunday
    assert.equal(bucketOf('weekly', new Date('2025-03-03T00:00:00Z')), '2025-W10'); // the Monday after
  });

  it('keeps the newest N, then the newest in each of the N newest days, with reasons', () => {
    const list = [
      snap('a', '2025-03-01T01:00:00Z'),
      snap('b', '2025-03-01T13:00:00Z'),
      snap('c', '2025-03-02T09:00:00Z'),
      snap('d', '2025-03-03T08:00:00Z'),
      snap('e', '2025-03-03T20:00:00Z'),
    ];
    const plan = planRetention(list, { ...none, keepLast: 1, keepDaily: 2 });
    assert.deepEqual(plan.keep, [
      { id: 'e', reasons: ['last 1/1', 'daily 2025-03-03'] },
      { id: 'c', reasons: ['daily 2025-03-02'] },
    ]);
    assert.deepEqual(
      plan.remove.map((r) => r.id),
      ['d', 'b', 'a'],
    );
  });

  it('never removes manual restore points', () => {
    const plan = planRetention(
      [snap('m', '2020-01-01T00:00:00Z', 'manual'), snap('s', '2020-01-01T00:00:00Z')],
      none,
    );
    assert.deepEqual(plan.keep, [{ id: 'm', reasons: ['manual'] }]);
    assert.deepEqual(
      plan.remove.map((r) => r.id),
      ['s'],
    );
  });

  it('property: every restore point is either kept or removed, once; keepLast newest are kept', () => {
    const arbSnap = fc.record({
      id: fc.uuid(),
      createdAt: fc.integer({ min: 1.6e12, max: 1.8e12 }).map((ms) => new Date(ms).toISOString()),
      kind: fc.constantFrom('manual', 'scheduled', 'auto', 'safety') as fc.Arbitrary<SnapshotRef['kind']>,
    });
    const arbPolicy = fc.record({
      keepLast: fc.nat(5),
      keepHourly: fc.nat(5),
      keepDaily: fc.nat(5),
      keepWeekly: fc.nat(5),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(arbSnap, { selector: (s) => s.id, maxLength: 40 }),
        arbPolicy,
        (list, policy) => {
          const plan = planRetention(list, policy);
          const ids = [...plan.keep.map((k) => k.id), ...plan.remove.map((r) => r.id)].sort();
          assert.deepEqual(ids, list.map((s) => s.id).sort());
          const newest = list
            .filter((s) => s.kind !== 'manual')
            .sort((a, b) =>
              a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1,
            )
            .slice(0, policy.keepLast);
          for (const s of newest) assert.ok(plan.keep.some((k) => k.id === s.id));
          if (Object.values(policy).every((v) => v === 0)) {
            assert.ok(plan.keep.every((k) => k.reasons.includes('manual')));
          }
        },
      ),
    );
  });

  it('a schedule is due once per period bucket; one restore point covers every due period', () => {
    const now = new Date('2025-03-03T10:30:00Z');
    const schedule = { hourly: true, daily: true, weekly: true };
    assert.deepEqual(dueSchedules(now, schedule, []), ['hourly', 'daily', 'weekly']);
    const taken = [snap('x', '2025-03-03T10:00:00Z')];
    assert.deepEqual(dueSchedules(now, schedule, taken), []);
    assert.deepEqual(dueSchedules(new Date('2025-03-03T11:00:00Z'), schedule, taken), ['hourly']);
    assert.deepEqual(dueSchedules(now, schedule, [snap('m', '2025-03-03T10:00:00Z', 'manual')]), [
      'hourly',
      'daily',
      'weekly',
    ]);
    assert.deepEqual(dueSchedules(now, { hourly: false, daily: false, weekly: false }, []), []);
  });
});
