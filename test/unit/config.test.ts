import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig, publicUrl } from '../../master/config.js';
import { CorralError } from '../../master/util/errors.js';

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CorralError, `expected CorralError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.ok(!err.message.includes('\n'), 'one line');
    return err.message;
  }
  assert.fail('expected a config error');
}

test('defaults fill every section and the result is frozen', () => {
  const c = buildConfig(undefined, { dataDir: '/d', address: '10.0.0.1' });
  assert.equal(c.http.port, 80);
  assert.equal(c.dhcp.mode, 'off');
  assert.equal(c.tftp.port, 69);
  assert.equal(c.nodes.namePattern, 'node-{n}');
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.http) && Object.isFrozen(c.dhcp.reservations));
  assert.equal(publicUrl(c), 'http://10.0.0.1');
});

test('flags override the file', () => {
  const c = buildConfig(
    { dataDir: '/file', address: '10.0.0.1', http: { port: 8080 } },
    { dataDir: '/flag', httpPort: '9090', dhcpRange: '10.0.0.100-10.0.0.200' },
  );
  assert.equal(c.dataDir, '/flag');
  assert.equal(c.http.port, 9090);
  assert.equal(c.dhcp.mode, 'server');
  assert.equal(c.dhcp.subnet, '10.0.0.0/24');
  assert.equal(publicUrl(c), 'http://10.0.0.1:9090');
});

test('bad values name the key and what is wrong', () => {
  assert.match(
    configError(() => buildConfig({}, { dataDir: '/d', address: '10.0.0.256' })),
    /^config error: address: expected an IPv4/,
  );
  assert.match(
    configError(() => buildConfig({}, { address: '10.0.0.1' })),
    /^config error: dataDir: /,
  );
  assert.match(
    configError(() =>
      buildConfig({}, { dataDir: '/d', address: '10.0.0.1', dhcpRange: '10.0.0.9-10.0.0.1' }),
    ),
    /dhcp\.range: expected FIRST-LAST/,
  );
  assert.match(
    configError(() =>
      buildConfig({}, { dataDir: '/d', address: '10.0.0.1', dhcpRange: '10.0.5.1-10.0.5.9' }),
    ),
    /dhcp\.range: is not inside subnet 10\.0\.0\.0\/24/,
  );
  assert.match(
    configError(() => buildConfig({ dataDir: '/d', address: '10.0.0.1', htp: {} }, {})),
    /unknown key\(s\) htp/,
  );
  assert.match(
    configError(() => buildConfig({ dataDir: '/d', address: '10.0.0.1', http: { port: 70000 } }, {})),
    /^config error: http\.port: /,
  );
  assert.match(
    configError(() => buildConfig({}, { dataDir: '/d', address: '10.0.0.1', httpPort: 'eighty' })),
    /http\.port \(--http-port\): expected a port number/,
  );
  assert.match(
    configError(() =>
      buildConfig(
        {},
        { dataDir: '/d', address: '10.0.0.1', dhcpRange: '10.0.0.2-10.0.0.3', proxyDhcp: true },
      ),
    ),
    /exclude each other/,
  );
  assert.match(
    configError(() => buildConfig({ dataDir: '/d', address: '10.0.0.1', dhcp: { mode: 'server' } }, {})),
    /dhcp\.range: is required when DHCP mode is server/,
  );
  assert.match(
    configError(() =>
      buildConfig({ dataDir: '/d', address: '10.0.0.1', nodes: { namePattern: 'fixed' } }, {}),
    ),
    /nodes\.namePattern: must contain \{n\} or \{mac\}/,
  );
  assert.match(
    configError(() => buildConfig([1, 2], {})),
    /must hold a JSON object/,
  );
});

test('reservations normalise MACs', () => {
  const c = buildConfig(
    {
      dataDir: '/d',
      address: '10.0.0.1',
      dhcp: { reservations: [{ mac: '52:54:00:AB:CD:EF', ip: '10.0.0.50' }] },
    },
    {},
  );
  assert.equal(c.dhcp.reservations[0]?.mac, '52:54:00:ab:cd:ef');
});

test('HA: the primary must notice a silent backup before VRRP can move the VIP', () => {
  const ha = (extra: Record<string, unknown>): Record<string, unknown> => ({
    dataDir: '/d',
    address: '10.0.0.1',
    ha: { enabled: true, token: 't'.repeat(32), peerUrl: 'https://10.0.0.2', ...extra },
  });
  assert.equal(buildConfig(ha({}), {}).ha.followerTimeoutMs, 2000, 'default below 3 × advertInt');
  assert.match(
    configError(() => buildConfig(ha({ followerTimeoutMs: 3000 }), {})),
    /^config error: ha\.followerTimeoutMs: must be below 3 × advertInt \(3000 ms\)/,
  );
  assert.equal(buildConfig(ha({ followerTimeoutMs: 3000, advertInt: 2 }), {}).ha.followerTimeoutMs, 3000);
});
