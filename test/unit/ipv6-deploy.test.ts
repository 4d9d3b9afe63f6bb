/**
 * Deploy over IPv6 (issue 18), the URL rendering: a plan is stored as rendered with http.publicUrl, and
 * each file is served naming the master in the family the installer's request came in on (plan.ts
 * planForArrival), with the DHCPv6 network file for a node that came over IPv6; cloud-init's `{{master}}`
 * and network-config follow the request's family too, and its datasource knows an installed node by the
 * address Corral's DHCPv6 server bound to its MAC.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Request, Response } from 'express';
import { arrivalOf } from '../../master/http-bind.js';
import { buildPlan, NETWORK6_FILE, planForArrival, rebaseUrls, renderEnv } from '../../master/deploy/plan.js';
import { renderNetworkConfig } from '../../master/cloudinit/datasource.js';
import { parseYaml } from '../../master/cloudinit/yaml.js';
import { CloudInit } from '../../master/cloudinit/service.js';
import { cloudInitHandler } from '../../master/cloudinit/node-routes.js';
import { Lease6Store } from '../../master/store/dhcp6-leases.js';
import type { NodeRecord } from '../../master/store/nodes.js';
import type { ImageRecord } from '../../master/store/images.js';
import { CorralError } from '../../master/util/errors.js';
import { silentLogger } from '../../master/util/logger.js';
import { golden } from '../helpers/golden.js';
import { tempRepos, testConfig } from '../helpers/repos.js';
import { nodeRecord } from '../helpers/node-record.js';

const V4 = 'http://10.99.0.1:8086';
const V6 = 'http://[fd00:5a::1]:8086';
const MAC = '52:54:00:5a:00:01';

const node: NodeRecord = nodeRecord({
  mac: MAC,
  firmware: 'uefi',
  inventory: { disks: [{ name: 'vda', sizeBytes: 4 * 2 ** 30 }] },
});

const image: ImageRecord = {
  sha256: 'cd'.repeat(32),
  name: 'debian-12',
  format: 'tar.zst',
  sizeBytes: 126_000_000,
  osName: 'debian',
  osVersion: '12',
  minDiskBytes: 700 * 2 ** 20,
  file: `${'cd'.repeat(32)}.tar.zst`,
  createdAt: '',
};

const plan = buildPlan({
  node,
  image,
  layoutName: 'default',
  layout: { espMb: 256, swapMb: 0, rootMb: null },
  baseUrl: V4,
  token: 'feedface',
  rootUuid: '0b9d2c84-5f0e-4d43-9d2a-4a3c8d9a1e11',
  sshKeys: [],
  kernelArgs: '',
});

const serve = (name: string, text: string, arrival: { baseUrl: string; ipv6: boolean }): string =>
  planForArrival(plan, name, text, arrival);

test('rebaseUrls: every occurrence of the base URL, and never a longer host or port that starts the same', () => {
  const text = `A=${V4}/boot/images/x\nB='${V4}'\nC=${V4}0/x\nD=http://10.99.0.1:80860/x\nE=http://10.99.0.10:8086/x\n`;
  assert.equal(
    rebaseUrls(text, V4, V6),
    `A=${V6}/boot/images/x\nB='${V6}'\nC=${V4}0/x\nD=http://10.99.0.1:80860/x\nE=http://10.99.0.10:8086/x\n`,
  );
  assert.equal(
    rebaseUrls('http://10.0.0.1 http://10.0.0.1.example/', 'http://10.0.0.1', V6),
    `${V6} http://10.0.0.1.example/`,
  );
  assert.equal(rebaseUrls(text, V4, V4), text);
});

test('plan over IPv6: image URL, node.conf server and appended p2p variables name the master by its IPv6 address', () => {
  assert.equal(plan.baseUrl, V4, 'the plan records the base URL it was rendered with');
  const p2pEnv = renderEnv({ P2P_TORRENT_URL: `${V4}/boot/torrents/${image.sha256}` });
  const env6 = serve('plan.env', renderEnv(plan.env) + p2pEnv, { baseUrl: V6, ipv6: true });
  assert.ok(env6.includes(`\nIMAGE_URL='${V6}/boot/images/${image.sha256}'\n`), env6);
  assert.match(env6, /^P2P_TORRENT_URL='http:\/\/\[fd00:5a::1\]:8086\/boot\/torrents\/(cd){32}'$/m);
  assert.doesNotMatch(env6, /10\.99\.0\.1/);
  const conf6 = serve('node.conf', plan.files['node.conf']!, { baseUrl: V6, ipv6: true });
  assert.match(conf6, /^CORRAL_SERVER=http:\/\/\[fd00:5a::1\]:8086$/m);
  // Over IPv4 everything is as rendered.
  assert.equal(serve('plan.env', renderEnv(plan.env), { baseUrl: V4, ipv6: false }), renderEnv(plan.env));
  assert.equal(
    serve('node.conf', plan.files['node.conf']!, { baseUrl: V4, ipv6: false }),
    plan.files['node.conf'],
  );
});

test('plan over IPv6: the network file is the DHCPv6 one; over IPv4 the DHCPv4 one (golden)', () => {
  const net6 = serve('network', plan.files['network']!, { baseUrl: V6, ipv6: true });
  assert.equal(net6, plan.files[NETWORK6_FILE]);
  assert.match(net6, /^DHCP=ipv6$/m);
  assert.match(net6, new RegExp(`^MACAddress=${MAC}$`, 'm'));
  golden('deploy/uefi-network.ipv6', net6);
  golden('deploy/uefi-networkd.conf', plan.files['networkd.conf']!);
  assert.match(plan.files['networkd.conf']!, /^\[DHCPv6\]\nDUIDType=link-layer$/m);
  assert.equal(plan.env['NETWORKD_CONF'], 'networkd.conf', 'the installer is told to fetch it');
  const net4 = serve('network', plan.files['network']!, { baseUrl: V4, ipv6: false });
  assert.match(net4, /^DHCP=ipv4$/m);
});

test('a plan made before plans recorded their base URL is served as stored', () => {
  const old = { files: plan.files };
  const text = renderEnv(plan.env);
  assert.equal(planForArrival(old, 'plan.env', text, { baseUrl: V6, ipv6: true }), text);
});

test('arrivalOf: IPv6 arrival → bracketed URL at the address reached; IPv4 (also mapped) → publicUrl', () => {
  const dhcp6 = { address: 'fd00:5a::1' };
  assert.deepEqual(arrivalOf({ localAddress: 'fd00:5a::1', localPort: 8086 }, V4, dhcp6), {
    baseUrl: V6,
    ipv6: true,
  });
  assert.deepEqual(arrivalOf({ localAddress: '::ffff:10.99.0.1', localPort: 8086 }, V4, dhcp6), {
    baseUrl: V4,
    ipv6: false,
  });
  assert.deepEqual(arrivalOf({ localAddress: '10.99.0.1', localPort: 8086 }, V4, dhcp6), {
    baseUrl: V4,
    ipv6: false,
  });
});

test('network-config over IPv6: DHCPv6 with router advertisements, no DHCPv4, no IPv4 reservation', () => {
  const pools = [{ subnet: '10.0.0.0/24', dns: [] }];
  const v6 = parseYaml(renderNetworkConfig({ mac: MAC, reservedIp: '10.0.0.50', pools, ipv6: true }));
  assert.deepEqual(v6, {
    value: {
      version: 2,
      ethernets: { corral0: { match: { macaddress: MAC }, dhcp4: false, dhcp6: true, 'accept-ra': true } },
    },
  });
  const v4 = (parseYaml(renderNetworkConfig({ mac: MAC, pools })) as { value: unknown }).value as {
    ethernets: { corral0: Record<string, unknown> };
  };
  assert.equal(v4.ethernets.corral0['dhcp4'], true);
  assert.equal(v4.ethernets.corral0['dhcp6'], undefined);
});

/** A request as express hands it to the handler, from `remote` to the master's `local` address. */
function request(file: string, remote: string, local: string): Request {
  return {
    params: { mac: MAC, file },
    headers: {},
    socket: { remoteAddress: remote, localAddress: local, localPort: 8086 },
  } as unknown as Request;
}

test('cloud-init over IPv6: {{master}} and network-config in the family asked; the DHCPv6 lease is the node address', () => {
  let now = new Date('2026-12-07T00:00:00Z');
  const t = tempRepos(() => now);
  try {
    const { repos } = t;
    repos.store.write((journal) =>
      repos.nodes.insertIn(journal, { mac: MAC, name: 'node-1', seqNo: 1, state: 'deployed' }),
    );
    const config = testConfig({ address: '10.99.0.1', http: { port: 8086 } });
    const cloudInit = new CloudInit(repos, config);
    cloudInit.set('global', '', 'write_files:\n  - path: /etc/master\n    content: "{{master}}"\n', 'test');
    new Lease6Store(repos.store).put([
      {
        address: 'fd00:5a::150',
        duid: `00030001${MAC.replace(/:/g, '')}`,
        iaid: 1,
        mac: MAC,
        state: 'bound',
        expiresAt: now.getTime() + 3_600_000,
      },
      // Another client's lease: its address is not the node's.
      {
        address: 'fd00:5a::151',
        duid: '0004aa',
        iaid: 1,
        mac: null,
        state: 'bound',
        expiresAt: now.getTime() + 3_600_000,
      },
    ]);
    const handler = cloudInitHandler({
      cloudInit,
      repos,
      logger: silentLogger(),
      arrival: (req) => arrivalOf(req.socket, 'http://10.99.0.1:8086', { address: 'fd00:5a::1' }),
    });
    const fetch = (file: string, remote: string, local: string): string => {
      let body = '';
      const res = {
        type: () => res,
        setHeader: () => res,
        send: (text: string) => void (body = text),
      } as unknown as Response;
      handler(request(file, remote, local), res, () => undefined);
      return body;
    };
    assert.match(fetch('user-data', 'fd00:5a::150', 'fd00:5a::1'), /content: http:\/\/\[fd00:5a::1\]:8086/);
    assert.match(fetch('network-config', 'fd00:5a::150', 'fd00:5a::1'), /dhcp6: true/);
    const refused = (remote: string): void =>
      assert.throws(
        () => fetch('user-data', remote, 'fd00:5a::1'),
        (e: unknown) => e instanceof CorralError && e.code === 'CLOUDINIT_REFUSED',
      );
    refused('fd00:5a::151');
    // The lease ends: its address stops being the node's.
    now = new Date(now.getTime() + 3_600_001);
    refused('fd00:5a::150');
  } finally {
    t.cleanup();
  }
});
