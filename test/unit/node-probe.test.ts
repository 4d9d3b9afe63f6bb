import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  NODE_PROBE_COMMAND,
  nodeSample,
  parseNodeProbe,
  type NodeProbe,
} from '../../master/monitor/node-probe.js';

// Compiled to dist/test/unit/; the fixtures stay in the source tree.
const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/node-probe/', import.meta.url));
const fixture = (name: string): string => readFileSync(`${FIXTURES}${name}`, 'utf8');

test('parses a GNU/Linux probe: jiffies, meminfo kB, df 1024-blocks, non-loopback bytes, load', () => {
  assert.deepEqual(parseNodeProbe(fixture('gnu-1.txt')), {
    // user..steal = 168631+33+21309+75030+666+0+1819+82; busy = that − idle − iowait.
    cpuTotal: 267570,
    cpuBusy: 191874,
    memTotal: 24684084 * 1024,
    memAvailable: 23059872 * 1024,
    diskUsed: 24435828 * 1024,
    diskTotal: 264212084 * 1024,
    netRxBytes: 373230282,
    netTxBytes: 994928,
    load1: 7.34,
  } satisfies NodeProbe);
});

test('parses an old kernel and busybox: 7 cpu fields, no MemAvailable, no space after the colon', () => {
  assert.deepEqual(parseNodeProbe(fixture('old-busybox.txt')), {
    cpuTotal: 1000,
    cpuBusy: 150,
    memTotal: 1017876 * 1024,
    memAvailable: null,
    diskUsed: 250 * 1024,
    diskTotal: 1000 * 1024,
    netRxBytes: 5300,
    netTxBytes: 7400,
    load1: 0,
  } satisfies NodeProbe);
});

test('df block size comes from the header (GNU df under POSIXLY_CORRECT gives 512-byte blocks)', () => {
  const p = parseNodeProbe(
    '@df\nFilesystem     512-blocks     Used Available Capacity Mounted on\n/dev/vda 2000 500 1500 25% /\n',
  );
  assert.equal(p.diskTotal, 2000 * 512);
  assert.equal(p.diskUsed, 500 * 512);
});

test('garbage or missing sections leave fields null, never NaN', () => {
  const p = parseNodeProbe(
    '@stat\ncpu a b c d\n@meminfo\nMemTotal: lots kB\n@df\nnope\n@net\n  eth0: x y\n@loadavg\n-1\n',
  );
  assert.ok(Object.values(p).every((v) => v === null));
  assert.ok(Object.values(parseNodeProbe('')).every((v) => v === null));
  const s = nodeSample({ at: 0, probe: p });
  assert.ok(Object.values(s).every((v) => v === null));
});

test('rates come from the difference of two readings; the first reading and a reboot give none', () => {
  const first = { at: 1_000_000, probe: parseNodeProbe(fixture('gnu-1.txt')) };
  const second = { at: 1_010_000, probe: parseNodeProbe(fixture('gnu-2.txt')) };
  assert.deepEqual(nodeSample(first), {
    cpu: null,
    memUsed: (24684084 - 23059872) * 1024,
    memTotal: 24684084 * 1024,
    diskUsed: 24435828 * 1024,
    diskTotal: 264212084 * 1024,
    netRx: null,
    netTx: null,
    load1: 7.34,
  });
  // Δtotal 400 jiffies, Δbusy 200; eth0 +1 000 000 / +50 000 bytes in 10 s (lo's +1 000 000 not counted).
  assert.deepEqual(nodeSample(second, first), {
    cpu: 50,
    memUsed: (24684084 - 22059872) * 1024,
    memTotal: 24684084 * 1024,
    diskUsed: 24436828 * 1024,
    diskTotal: 264212084 * 1024,
    netRx: 100_000,
    netTx: 5_000,
    load1: 6.9,
  });
  // Counters went backwards (the node rebooted between readings): no made-up rate.
  const rebooted = nodeSample({ at: 1_020_000, probe: parseNodeProbe(fixture('old-busybox.txt')) }, second);
  assert.equal(rebooted.cpu, null);
  assert.equal(rebooted.netRx, null);
  assert.equal(rebooted.memTotal, 1017876 * 1024);
});

test('the probe command runs under a POSIX sh on this machine and parses completely', () => {
  const out = execFileSync('sh', ['-c', NODE_PROBE_COMMAND], { encoding: 'utf8', timeout: 10_000 });
  const p = parseNodeProbe(out);
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const total = Number(/^MemTotal:\s+(\d+) kB$/m.exec(meminfo)?.[1]) * 1024;
  assert.equal(p.memTotal, total);
  for (const [k, v] of Object.entries(p)) assert.equal(typeof v, 'number', `${k} missing`);
  assert.ok(p.diskTotal! > 0 && p.cpuTotal! > 0);
});
