/**
 * http.bind (issue 18): IPv4 and IPv6 listeners, their validation, and the URLs a node is handed in the
 * address family its request came in on (RFC 3986 §3.2.2 brackets).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig } from '../../master/config.js';
import { baseUrlFor, bindCovers, ipv6Arrival, localHttpHost, urlHost } from '../../master/http-bind.js';
import { ipv6NodeArg } from '../../master/dhcp6/node-address.js';
import { CorralError } from '../../master/util/errors.js';

const BASE = { dataDir: '/d', address: '10.0.0.1' };
const DHCP6 = {
  enabled: true,
  address: 'fd00:55::1',
  prefix: 'fd00:55::/64',
  range: 'fd00:55::100-fd00:55::1ff',
};

function configError(raw: unknown): string {
  try {
    buildConfig(raw, {});
  } catch (err) {
    assert.ok(err instanceof CorralError, String(err));
    assert.equal(err.code, 'CONFIG_INVALID');
    return err.message;
  }
  assert.fail('expected a config error');
}

test('http.bind: unset is IPv4 only, or dual-stack when DHCPv6 is on; a string or a list is accepted', () => {
  assert.deepEqual(buildConfig(BASE, {}).http.bind, ['0.0.0.0']);
  assert.deepEqual(buildConfig({ ...BASE, dhcp6: DHCP6 }, {}).http.bind, ['0.0.0.0', '::']);
  assert.deepEqual(buildConfig({ ...BASE, http: { bind: '10.0.0.1' } }, {}).http.bind, ['10.0.0.1']);
  const c = buildConfig({ ...BASE, http: { bind: ['10.0.0.1', 'fd00:55::1'] }, dhcp6: DHCP6 }, {});
  assert.deepEqual(c.http.bind, ['10.0.0.1', 'fd00:55::1']);
  assert.ok(Object.isFrozen(c.http.bind));
});

test('http.bind: bad addresses, duplicates and a DHCPv6 master without an IPv6 listener are refused by key', () => {
  assert.match(configError({ ...BASE, http: { bind: 'localhost' } }), /^config error: http\.bind: /);
  assert.match(
    configError({ ...BASE, http: { bind: ['10.0.0.1', 'fe80::1%eth0'] } }),
    /^config error: http\.bind/,
  );
  assert.match(configError({ ...BASE, http: { bind: [] } }), /http\.bind.*at least one/);
  assert.match(
    configError({ ...BASE, http: { bind: ['FD00:55::1', 'fd00:55:0::1'] } }),
    /http\.bind: fd00:55:0::1 is listed twice/,
  );
  assert.match(
    configError({ ...BASE, http: { bind: ['0.0.0.0'] }, dhcp6: DHCP6 }),
    /http\.bind: dhcp6 is enabled but no listener is on IPv6 \(fd00:55::1 or ::\)/,
  );
  // `::` or the DHCPv6 address itself (any spelling) both satisfy it.
  assert.doesNotThrow(() => buildConfig({ ...BASE, http: { bind: '::' }, dhcp6: DHCP6 }, {}));
  assert.doesNotThrow(() => buildConfig({ ...BASE, http: { bind: 'FD00:55:0:0::1' }, dhcp6: DHCP6 }, {}));
});

test('URL hosts: IPv6 literals bracketed; the local host for the master itself', () => {
  assert.equal(urlHost('10.0.0.1'), '10.0.0.1');
  assert.equal(urlHost('fd00:55::1'), '[fd00:55::1]');
  assert.equal(localHttpHost(['0.0.0.0', '::']), '127.0.0.1');
  assert.equal(localHttpHost(['::']), '[::1]');
  assert.equal(localHttpHost(['fd00:55::1']), '[fd00:55::1]');
  assert.ok(bindCovers(['0.0.0.0'], '10.0.0.7'));
  assert.ok(!bindCovers(['::'], '10.0.0.7'), ':: is IPv6 only (ipv6Only listeners)');
  assert.ok(bindCovers(['10.0.0.7'], '10.0.0.7'));
});

test('a node is answered in the family it came in on', () => {
  const v4 = 'http://10.0.0.1:8080';
  assert.equal(ipv6Arrival('::ffff:10.0.0.1'), null, 'IPv4 on a dual-stack socket is IPv4');
  assert.equal(baseUrlFor({ localAddress: '10.0.0.1', localPort: 8080 }, v4, {}), v4);
  assert.equal(baseUrlFor({ localAddress: '::ffff:10.0.0.1', localPort: 8080 }, v4, {}), v4);
  assert.equal(
    baseUrlFor({ localAddress: 'fd00:55::1', localPort: 8080 }, v4, {}),
    'http://[fd00:55::1]:8080',
  );
  assert.equal(baseUrlFor({ localAddress: 'fd00:55::1', localPort: 80 }, v4, {}), 'http://[fd00:55::1]');
  // Link-local needs a zone no URL can carry: the configured DHCPv6 address instead.
  assert.equal(
    baseUrlFor({ localAddress: 'fe80::1', localPort: 8080 }, v4, { address: 'fd00:55::1' }),
    'http://[fd00:55::1]:8080',
  );
  assert.equal(
    baseUrlFor({ localAddress: 'fd00:55::1', localPort: 8080 }, v4, { httpBaseUrl: 'http://[fd00:55::2]/' }),
    'http://[fd00:55::2]',
  );
});

test('corral.ip for a node that fetched its script from inside the DHCPv6 prefix', () => {
  assert.equal(ipv6NodeArg('fd00:55::1a4', DHCP6), 'corral.ip=fd00:55::1a4/64');
  assert.equal(ipv6NodeArg('FD00:55:0:0:0:0:0:1A4', DHCP6), 'corral.ip=fd00:55::1a4/64');
  assert.equal(ipv6NodeArg('fd00:99::5', DHCP6), null, 'another prefix');
  assert.equal(ipv6NodeArg('fe80::5054:ff:fe5a:1', DHCP6), null, 'link-local');
  assert.equal(ipv6NodeArg('10.0.0.5', DHCP6), null, 'IPv4');
  assert.equal(ipv6NodeArg('fd00:55::1a4', { ...DHCP6, enabled: false }), null, 'DHCPv6 off');
});
