import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FailureLimiter } from '../../master/auth/failure-limiter.js';
import { HashSlots } from '../../master/auth/hash-slots.js';

describe('sign-in limiter reservations and password-check slots', () => {
  it('reserved attempts count against the limit until released or failed', () => {
    let now = 1_000_000;
    const l = new FailureLimiter({ maxFailures: 3, windowMs: 60_000, now: () => now });
    l.reserve('ip:a');
    l.reserve('ip:a');
    assert.equal(l.retryAfterMs('ip:a'), 0);
    l.reserve('ip:a');
    assert.equal(l.retryAfterMs('ip:a'), 1000, 'full of checks in flight: retry in a second');
    l.release('ip:a');
    assert.equal(l.retryAfterMs('ip:a'), 0, 'a right password frees its place');
    l.release('ip:a');
    l.fail('ip:a');
    l.release('ip:a');
    l.fail('ip:a');
    l.fail('ip:a');
    assert.equal(l.retryAfterMs('ip:a'), 60_000);
    now += 60_001;
    assert.equal(l.retryAfterMs('ip:a'), 0, 'the window passed');
  });

  it('runs at most N at once, queues a bounded number, refuses the rest without running them', async () => {
    const slots = new HashSlots(2, 1);
    let running = 0;
    let peak = 0;
    const releases: (() => void)[] = [];
    const job = (): Promise<number> =>
      new Promise((resolve) => {
        peak = Math.max(peak, ++running);
        releases.push(() => {
          running--;
          resolve(1);
        });
      });
    const a = slots.run(job);
    const b = slots.run(job);
    const c = slots.run(job); // queued
    const d = await slots.run(job); // queue full
    assert.equal(d, undefined);
    assert.equal(releases.length, 2);
    releases.shift()?.();
    await a;
    await new Promise((r) => setImmediate(r));
    assert.equal(releases.length, 2, 'the queued one took the freed slot');
    for (const r of releases.splice(0)) r();
    assert.deepEqual(await Promise.all([b, c]), [{ value: 1 }, { value: 1 }]);
    assert.equal(peak, 2);
  });
});
