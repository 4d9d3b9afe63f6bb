import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Dhcp6ConfigSchema } from '../../master/dhcp6/config.js';
import { renderRadvdConf } from '../../master/dhcp6/radvd.js';
import { buildConfig } from '../../master/config.js';
import { golden } from '../helpers/golden.js';

describe('dhcp6 config slice and radvd.conf', () => {
  it('is off by default and needs address and range when enabled; the range must sit inside the prefix', () => {
    const c = buildConfig({}, { dataDir: '/tmp/x', address: '10.0.0.1' });
    assert.equal(c.dhcp6.enabled, false);
    assert.equal(c.bootFiles.x64UefiHttp, undefined); // boot.uefiChain decides (docs/http-boot.md)
    assert.throws(
      () => buildConfig({ dhcp6: { enabled: true } }, { dataDir: '/tmp/x', address: '10.0.0.1' }),
      /dhcp6\.address: is required when dhcp6 is enabled/,
    );
    const base = { enabled: true, address: 'fd00:55::1', prefix: 'fd00:55::/64' };
    assert.equal(Dhcp6ConfigSchema.safeParse({ ...base, range: 'fd00:55::100-fd00:55::1ff' }).success, true);
    assert.equal(Dhcp6ConfigSchema.safeParse({ ...base, range: 'fd00:56::100-fd00:56::1ff' }).success, false);
    assert.equal(Dhcp6ConfigSchema.safeParse({ ...base, range: 'fd00:55::1ff-fd00:55::100' }).success, false);
    assert.equal(Dhcp6ConfigSchema.safeParse({ ...base, range: 'x', address: '10.0.0.1' }).success, false);
    assert.equal(Dhcp6ConfigSchema.safeParse({ ...base, prefix: 'fd00:55::1/64' }).success, false);
  });

  it('radvd.conf: Managed and Other flags, on-link prefix without SLAAC, not a default router (golden)', () => {
    golden(
      'dhcp6/radvd.conf',
      renderRadvdConf({ interfaceName: 'eth1', prefix: 'fd00:55::/64', routerLifetimeSeconds: 0 }),
    );
  });
});
