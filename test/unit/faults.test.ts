import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { createLogger } from '../../master/util/logger.js';
import { Faults, installProcessBackstop } from '../../master/util/faults.js';

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } {
  let out = '';
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  return {
    logger,
    lines: () =>
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('subsystem faults', () => {
  test('guard() turns a throw into a counted fault with the last message, and returns normally', () => {
    const { logger, lines } = capture();
    let t = Date.parse('2026-12-06T13:00:00Z');
    const faults = new Faults(logger, () => t);
    const tftp = faults.subsystem('tftp');
    const handler = tftp.guard('tftp request', (n: number) => {
      if (n > 1) throw new RangeError(`bad ${n}`);
    });
    handler(1);
    assert.doesNotThrow(() => handler(2));
    t += 1000;
    handler(3);
    assert.deepEqual(faults.snapshot(), {
      tftp: {
        faults: 2,
        lastFault: { at: '2026-12-06T13:00:01.000Z', message: 'RangeError: bad 3' },
        dropped: 0,
      },
    });
    const logged = lines().filter((l) => l['msg'] === 'subsystem fault; still serving');
    assert.equal(logged.length, 2);
    assert.equal(logged[0]?.['in'], 'tftp request');
    assert.equal(logged[0]?.['subsystem'], 'tftp');
  });

  test('drops are counted, and their log lines are rate-limited (10 per 10 s, then one summary)', () => {
    const { logger, lines } = capture();
    let t = 0;
    const dhcp = new Faults(logger, () => t).subsystem('dhcp');
    for (let i = 0; i < 1000; i++) dhcp.drop('source port 0', `10.0.0.${i % 250}:0`);
    t = 10_000;
    dhcp.drop('source port 0', '10.0.0.1:0');
    assert.equal(dhcp.health().dropped, 1001);
    const drops = lines().filter((l) => l['msg'] === 'datagram from an impossible source dropped');
    assert.equal(drops.length, 11);
    const summary = lines().find((l) => l['msg'] === 'similar log lines suppressed');
    assert.equal(summary?.['suppressed'], 990);
  });

  test('the process backstop counts escaped exceptions and exits only on a burst', () => {
    const { logger } = capture();
    let t = 0;
    const target = new EventEmitter();
    const exits: number[] = [];
    const faults = new Faults(logger, () => t);
    const uninstall = installProcessBackstop(faults, logger, {
      target: target as unknown as NodeJS.Process,
      exit: (code) => exits.push(code),
      now: () => t,
      budget: 3,
      windowMs: 60_000,
    });
    target.emit('uncaughtException', new Error('one'));
    target.emit('unhandledRejection', new Error('two'));
    t = 61_000; // the first two leave the window
    target.emit('uncaughtException', new Error('three'));
    target.emit('uncaughtException', new Error('four'));
    target.emit('uncaughtException', new Error('five'));
    assert.deepEqual(exits, [], 'three within a minute is within the budget');
    assert.equal(faults.snapshot()['process']?.faults, 5);
    target.emit('uncaughtException', new Error('six'));
    assert.deepEqual(exits, [1], 'the fourth within a minute exits for a clean restart');
    uninstall();
    assert.equal(target.listenerCount('uncaughtException'), 0);
  });
});
