import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseNetDev, readNetBytes } from '../../master/monitor/net-dev.js';

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
