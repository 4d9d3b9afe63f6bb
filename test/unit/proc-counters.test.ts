import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  cpuBusyPercent,
  parseNetDev,
  parseProcStat,
  readCpuTimes,
  readNetBytes,
} from '../../master/monitor/proc-counters.js';

// /proc/net/dev as Linux 6.1 prints it (values made up), two interfaces besides loopback.
const CAPTURE = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 9123456789  912345    0    0    0     0          0         0 9123456789  912345    0    0    0     0       0          0
  eth0: 1500000000 1000000    0    0    0     0          0         0 250000000  500000    0    0    0     0       0          0
veth-bs0:      42       1    0    0    0     0          0         0      100       2    0    0    0     0       0          0
`;

test('parseNetDev sums bytes over every interface but loopback', () => {
  assert.deepEqual(parseNetDev(CAPTURE), { rx: 1_500_000_042, tx: 250_000_100 });
  assert.equal(parseNetDev('Inter-|\n face |\n    lo: 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n'), undefined);
  assert.equal(parseNetDev('not the format'), undefined);
});

test("readNetBytes reads this host's counters as the file says", async () => {
  const now = parseNetDev(readFileSync('/proc/net/dev', 'utf8'));
  const read = await readNetBytes();
  // Counters only grow between the two reads (other traffic may run meanwhile).
  if (now === undefined) assert.equal(read, undefined, 'only loopback here');
  else {
    assert.ok(read && read.rx >= now.rx && read.tx >= now.tx);
  }
  assert.equal(await readNetBytes('/nonexistent/net/dev'), undefined);
});

test('parseProcStat and cpuBusyPercent: busy share between two readings of the cpu line', async () => {
  const a = parseProcStat('cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\nintr 1\n');
  const b = parseProcStat('cpu  160 0 90 860 90 0 0 0 0 0\ncpu0 80 0 45 430 45 0 0 0 0 0\nintr 2\n');
  assert.deepEqual(a, { total: 1000, idle: 850 });
  assert.deepEqual(b, { total: 1200, idle: 950 });
  // 200 ticks passed, 100 of them idle or waiting on I/O: 50 % busy.
  assert.equal(cpuBusyPercent(a!, b!), 50);
  assert.equal(cpuBusyPercent(a!, a!), null, 'no time between the readings');
  assert.equal(parseProcStat('intr 1\n'), undefined);
  const now = await readCpuTimes();
  assert.ok(now && now.total > 0 && now.idle <= now.total, 'this host has a cpu line');
  assert.equal(await readCpuTimes('/nonexistent/stat'), undefined);
});
