import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { impossibleSource } from '../../master/util/udp-source.js';

describe('impossibleSource()', () => {
  test('ordinary peers pass', () => {
    assert.equal(impossibleSource('10.0.0.5', 68, true), null);
    assert.equal(impossibleSource('10.0.0.5', 2070, false), null);
    assert.equal(impossibleSource('fd00::5', 2070, false), null);
    assert.equal(impossibleSource('::ffff:10.0.0.5', 1, false), null);
  });

  test('source port 0 (RFC 768: "none") and out-of-range ports are impossible', () => {
    assert.equal(impossibleSource('10.0.0.5', 0, true), 'source port 0');
    assert.equal(impossibleSource('10.0.0.5', 65536, true), 'source port 65536');
    assert.equal(impossibleSource('10.0.0.5', -1, false), 'source port -1');
  });

  test('broadcast, multicast and class E source addresses are impossible (RFC 1122 3.2.1.3)', () => {
    assert.equal(impossibleSource('255.255.255.255', 68, true), 'broadcast source address');
    assert.equal(impossibleSource('224.0.0.9', 68, true), 'multicast source address');
    assert.equal(impossibleSource('239.255.255.250', 1900, false), 'multicast source address');
    assert.equal(impossibleSource('240.0.0.1', 68, true), 'reserved (class E) source address');
    assert.equal(impossibleSource('ff02::1', 547, false), 'multicast source address');
  });

  test('0.0.0.0 is a DHCP client without an address (RFC 2131 4.1), never a TFTP peer', () => {
    assert.equal(impossibleSource('0.0.0.0', 68, true), null);
    assert.equal(impossibleSource('0.0.0.0', 2070, false), 'unspecified source address');
    assert.equal(impossibleSource('::', 2070, false), 'unspecified source address');
    assert.equal(impossibleSource('0.1.2.3', 68, true), 'source address in 0.0.0.0/8');
  });
});
