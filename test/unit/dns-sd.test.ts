/**
 * The cluster zone's pure parts: DNS-SD records from the inventory and the load balancer's view
 * (RFC 6763), the zone file (golden, and accepted by the real `knotc zone-check`), the SOA serial, the
 * knot config (accepted by `knotc conf-check`), DHCP option 119 (RFC 3397) and the pools' DNS options.
 * knot serving it to dig, with HAProxy's health deciding the instances, is test/integration/dns-sd.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { golden } from '../helpers/golden.js';
import { zoneRecords, type ZoneInput } from '../../master/dns/records.js';
import { nextSerial, renderZoneFile, serialOf } from '../../master/dns/zone-file.js';
import { knotPaths, renderKnotConfig } from '../../master/dns/knot.js';
import { DnsConfigSchema } from '../../master/dns/config.js';
import { clusterDns } from '../../master/dns/dhcp-options.js';
import { encodeDomainSearch } from '../../master/dhcp/domain-search.js';
import { dhcpPools } from '../../master/dhcp/pools-from-config.js';
import { validatePools } from '../../master/dhcp/pool.js';
import { buildConfig } from '../../master/config.js';
import { CorralError } from '../../master/util/errors.js';
import { clusterDns6 } from '../../master/dns/dhcp-options.js';
import { decide6 } from '../../master/dhcp6/policy.js';
import { MSG, OPT6, decodeMessage6, encodeMessage6, option } from '../../master/dhcp6/codec.js';
import { parseIPv6, parsePrefix6 } from '../../master/dhcp6/address.js';
import { Lease6Allocator } from '../../master/dhcp6/allocator.js';
import { Lease6Store } from '../../master/store/dhcp6-leases.js';
import { openStore } from '../../master/store/db.js';
import { silentLogger } from '../../master/util/logger.js';
import { resolveBootFiles, BootFilesSchema } from '../../master/dhcp/boot-files.js';

const input: ZoneInput = {
  zone: 'cluster.',
  nameServers: ['10.0.0.1'],
  nodes: [
    { name: 'app-1', ip: '10.0.0.11', ipv6: 'fd00:55::11' },
    { name: 'app-2', ip: '10.0.0.12', ipv6: null },
    { name: 'app-3', ip: '10.0.0.13', ipv6: null },
    { name: 'fresh', ip: null, ipv6: null },
  ],
  services: [
    {
      name: 'web',
      port: 80,
      protocol: 'http',
      instances: [
        { instance: 'app-1', node: 'app-1', port: 8000, up: true },
        { instance: 'app-2', node: 'app-2', port: 8000, up: false },
        { instance: 'app-3', node: 'app-3', port: 8000, up: true },
      ],
    },
    {
      name: 'db',
      port: 5432,
      protocol: 'tcp',
      instances: [{ instance: 'app-2', node: 'app-2', port: 5432, up: false }],
    },
  ],
};

const find = (
  records: { name: string; type: string; data: string }[],
  name: string,
  type: string,
): string[] =>
  records
    .filter((r) => r.name === name && r.type === type)
    .map((r) => r.data)
    .sort();

test('DNS-SD: PTR browsing, SRV and TXT per UP instance only; RFC 2782 SRV set at the service name', () => {
  const { records, skipped } = zoneRecords(input);
  assert.deepEqual(skipped, []);
  // §9: only services with an instance are browsable (db has none UP).
  assert.deepEqual(find(records, '_services._dns-sd._udp.cluster.', 'PTR'), ['_web._tcp.cluster.']);
  assert.deepEqual(find(records, '_web._tcp.cluster.', 'PTR'), [
    'app-1._web._tcp.cluster.',
    'app-3._web._tcp.cluster.',
  ]);
  assert.deepEqual(find(records, '_web._tcp.cluster.', 'SRV'), [
    '0 1 8000 app-1.cluster.',
    '0 1 8000 app-3.cluster.',
  ]);
  assert.deepEqual(find(records, 'app-3._web._tcp.cluster.', 'SRV'), ['0 1 8000 app-3.cluster.']);
  assert.deepEqual(find(records, 'app-3._web._tcp.cluster.', 'TXT'), [
    '"txtvers=1" "corral-service=web" "corral-instance=app-3" "path=/"',
  ]);
  assert.deepEqual(find(records, 'app-2._web._tcp.cluster.', 'SRV'), []);
  assert.deepEqual(find(records, 'app-1.cluster.', 'AAAA'), ['fd00:55::11']);
  assert.deepEqual(find(records, 'fresh.cluster.', 'A'), []);
  assert.deepEqual(find(records, 'ns.cluster.', 'A'), ['10.0.0.1']);
});

test('two instances on one node: an owner name each, with its own port, the same SRV target', () => {
  const { records, skipped } = zoneRecords({
    ...input,
    services: [
      {
        name: 'api',
        port: 80,
        protocol: 'tcp',
        instances: [
          { instance: 'app-1-p30001', node: 'app-1', port: 30001, up: true },
          { instance: 'app-1-p30002', node: 'app-1', port: 30002, up: true },
          { instance: 'app-2-p30003', node: 'app-2', port: 30003, up: false },
        ],
      },
    ],
  });
  assert.deepEqual(skipped, []);
  assert.deepEqual(find(records, '_api._tcp.cluster.', 'PTR'), [
    'app-1-p30001._api._tcp.cluster.',
    'app-1-p30002._api._tcp.cluster.',
  ]);
  assert.deepEqual(find(records, '_api._tcp.cluster.', 'SRV'), [
    '0 1 30001 app-1.cluster.',
    '0 1 30002 app-1.cluster.',
  ]);
  assert.deepEqual(find(records, 'app-1-p30001._api._tcp.cluster.', 'SRV'), ['0 1 30001 app-1.cluster.']);
  assert.deepEqual(find(records, 'app-1-p30002._api._tcp.cluster.', 'SRV'), ['0 1 30002 app-1.cluster.']);
  assert.deepEqual(find(records, 'app-1-p30002._api._tcp.cluster.', 'TXT'), [
    '"txtvers=1" "corral-service=api" "corral-instance=app-1-p30002"',
  ]);
  assert.deepEqual(find(records, 'app-1._api._tcp.cluster.', 'SRV'), []);
});

test('with an HA VIP every service gets a vip instance on its front-end port, not in the SRV set', () => {
  const { records } = zoneRecords({ ...input, vip: '10.0.0.5' });
  assert.deepEqual(find(records, 'vip.cluster.', 'A'), ['10.0.0.5']);
  assert.deepEqual(find(records, 'vip._db._tcp.cluster.', 'SRV'), ['0 1 5432 vip.cluster.']);
  assert.ok(find(records, '_web._tcp.cluster.', 'PTR').includes('vip._web._tcp.cluster.'));
  assert.equal(find(records, '_web._tcp.cluster.', 'SRV').length, 2);
});

test("names that are not DNS labels, or are Corral's own, are left out with a reason", () => {
  const { records, skipped } = zoneRecords({
    ...input,
    nodes: [
      { name: 'evil\n@ NS x.', ip: '10.0.0.66', ipv6: null },
      { name: 'ns', ip: '10.0.0.67', ipv6: null },
      { name: 'app-1', ip: '10.0.0.11', ipv6: null },
    ],
    services: [
      {
        name: 'web',
        port: 80,
        protocol: 'http',
        instances: [{ instance: 'ns', node: 'ns', port: 1, up: true }],
      },
    ],
  });
  assert.equal(skipped.length, 3, skipped.join('; '));
  assert.ok(!records.some((r) => r.data.includes('10.0.0.66') || r.data.includes('10.0.0.67')));
  assert.deepEqual(find(records, '_web._tcp.cluster.', 'SRV'), []);
});

test('the zone file: golden, and the real knotc zone-check accepts it; a too-long name is refused', () => {
  const { records } = zoneRecords({ ...input, vip: '10.0.0.5' });
  const text = renderZoneFile({ zone: 'cluster.', serial: 1_700_000_000, ttl: 10, records });
  golden('dns/cluster.zone', text);
  assert.equal(serialOf(text), 1_700_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'corral-dns-unit-'));
  try {
    const check = (zone: string, zoneText: string): ReturnType<typeof spawnSync> => {
      const paths = knotPaths(dir);
      writeFileSync(paths.zoneFile, zoneText);
      writeFileSync(
        paths.config,
        renderKnotConfig({ paths, zone, listen: ['127.0.0.1@53', 'fd00:55::1@53'] }),
      );
      execFileSync('knotc', ['-c', paths.config, 'conf-check'], { stdio: 'pipe' });
      return spawnSync('knotc', ['-c', paths.config, 'zone-check', zone], { encoding: 'utf8' });
    };
    const ok = check('cluster.', text);
    assert.equal(ok.status, 0, String(ok.stderr));
    // 181 octets of zone + a 63-octet node label + `._web._tcp.` is over 255 (RFC 1035 §2.3.4).
    const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(50)}.cluster.`;
    const node = 'n'.repeat(63);
    const big = zoneRecords({
      zone: long,
      nameServers: ['10.0.0.1'],
      nodes: [{ name: node, ip: '10.0.0.9', ipv6: null }],
      services: [
        {
          name: 'web',
          port: 80,
          protocol: 'http',
          instances: [{ instance: node, node, port: 80, up: true }],
        },
      ],
    });
    const refused = check(long, renderZoneFile({ zone: long, serial: 1, ttl: 10, records: big.records }));
    assert.notEqual(refused.status, 0);
    assert.match(String(refused.stderr), /maximal domain name length/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the SOA serial grows: past the last one, at least the clock, and wraps as RFC 1982 says', () => {
  const now = 1_800_000_000_000;
  assert.equal(nextSerial(undefined, now), 1_800_000_000);
  assert.equal(nextSerial(1_800_000_000, now), 1_800_000_001);
  assert.equal(nextSerial(5, now), 1_800_000_000);
  assert.equal(nextSerial(0xffffffff, now), 1);
  assert.equal(serialOf('garbage'), undefined);
});

test("option 119 encodes RFC 3397 section 2's example with compression pointers", () => {
  // RFC 3397 §2: "eng.apple.com." and "marketing.apple.com."
  const b = encodeDomainSearch(['eng.apple.com.', 'marketing.apple.com']);
  const expected = Buffer.concat([
    Buffer.from([3]),
    Buffer.from('eng'),
    Buffer.from([5]),
    Buffer.from('apple'),
    Buffer.from([3]),
    Buffer.from('com'),
    Buffer.from([0, 9]),
    Buffer.from('marketing'),
    Buffer.from([0xc0, 0x04]),
  ]);
  assert.deepEqual(b, expected);
  assert.throws(() => encodeDomainSearch(['x'.repeat(64) + '.com']), RangeError);
});

test('DHCP pools name the cluster DNS server first, the zone as domain and search list, only when enabled', () => {
  const off = buildConfig({}, { dataDir: '/tmp/x', address: '10.0.0.1', dhcpRange: '10.0.0.100-10.0.0.200' });
  assert.equal(clusterDns(off), undefined);
  assert.deepEqual(dhcpPools(off.dhcp, clusterDns(off))[0]?.dns, []);
  const on = buildConfig(
    { dns: { enabled: true, zone: 'Lab.Example' }, dhcp: { dns: ['10.0.0.53'] } },
    { dataDir: '/tmp/x', address: '10.0.0.1', dhcpRange: '10.0.0.100-10.0.0.200' },
  );
  assert.equal(on.dns.zone, 'lab.example.');
  const [pool] = validatePools(dhcpPools(on.dhcp, clusterDns(on)), '10.0.0.1');
  assert.deepEqual(pool?.dns, ['10.0.0.1', '10.0.0.53']);
  assert.equal(pool?.domain, 'lab.example');
  assert.deepEqual(pool?.searchOption, encodeDomainSearch(['lab.example']));
});

test('bad dns config is refused with CONFIG_INVALID naming the key', () => {
  for (const [dns, key] of [
    [{ zone: 'bad_zone!' }, 'dns.zone'],
    [{ port: 0 }, 'dns.port'],
    [{ listen: ['nope'] }, 'dns.listen.0'],
    [{ bogus: 1 }, 'dns'],
  ] as const) {
    assert.throws(
      () => buildConfig({ dns }, { dataDir: '/tmp/x', address: '10.0.0.1' }),
      (e: unknown) => e instanceof CorralError && e.code === 'CONFIG_INVALID' && e.message.includes(key),
      JSON.stringify(dns),
    );
  }
  assert.equal(DnsConfigSchema.parse(undefined).zone, 'cluster.');
});

test('DHCPv6 names knot on dhcp6.address (option 23) and the zone (option 24, uncompressed) when asked', () => {
  const config = buildConfig(
    {
      interface: 'm0',
      dns: { enabled: true },
      dhcp6: {
        enabled: true,
        address: 'fd00:55::1',
        range: 'fd00:55::100-fd00:55::1ff',
        dns: ['fd00:55::53'],
      },
    },
    { dataDir: '/tmp/x', address: '10.0.0.1' },
  );
  const cluster = clusterDns6(config);
  assert.deepEqual(cluster, { server: 'fd00:55::1', domain: 'cluster' });
  assert.equal(clusterDns6({ ...config, dns: { ...config.dns, enabled: false } }), undefined);
  // What master/dhcp6/index.ts hands the policy for this config.
  const store = openStore({ path: ':memory:', logger: silentLogger() });
  try {
    const alloc = new Lease6Allocator(
      new Lease6Store(store),
      parseIPv6('fd00:55::100')!,
      parseIPv6('fd00:55::1ff')!,
    );
    const policy = {
      serverDuid: Buffer.from('0004' + 'ab'.repeat(16), 'hex'),
      prefix: parsePrefix6('fd00:55::/64')!,
      leaseSeconds: 3600,
      dns: ['fd00:55::1', 'fd00:55::53'].map((a) => parseIPv6(a)!),
      domainList: encodeDomainSearch([cluster!.domain], false),
      rapidCommit: true,
      boot: resolveBootFiles(
        BootFilesSchema.parse({}),
        { biosFile: 'undionly.kpxe', uefiFile: 'ipxe.efi' },
        'http://[fd00:55::1]:80',
        'fd00:55::1',
      ),
    };
    const oro = Buffer.from([0, OPT6.DNS_SERVERS, 0, OPT6.DOMAIN_LIST]);
    const d = decide6(
      {
        kind: 'client',
        type: MSG.INFORMATION_REQUEST,
        transactionId: 0x123456,
        options: [
          { code: OPT6.CLIENTID, data: Buffer.from('00030001525400060001', 'hex') },
          { code: OPT6.ORO, data: oro },
        ],
      },
      { address: 'fe80::1%m0', port: 546 },
      policy,
      alloc,
      Date.now(),
    );
    assert.ok(d.reply, d.note);
    const decoded = decodeMessage6(encodeMessage6(d.reply.message));
    assert.ok(decoded.ok && decoded.message.kind === 'client');
    const options = decoded.message.options;
    assert.equal(
      option(options, OPT6.DNS_SERVERS)?.toString('hex').slice(0, 32),
      'fd000055000000000000000000000001',
    );
    // RFC 3646 §4: "cluster" as length-prefixed labels, a zero octet, no pointer.
    assert.deepEqual(option(options, OPT6.DOMAIN_LIST), Buffer.from('07636c757374657200', 'hex'));
  } finally {
    store.close();
  }
});

test("an IPv6 listen address is the name server's AAAA record", () => {
  const { records } = zoneRecords({ ...input, nameServers: ['10.0.0.1', 'fd00:55::1'] });
  assert.deepEqual(find(records, 'ns.cluster.', 'AAAA'), ['fd00:55::1']);
});
