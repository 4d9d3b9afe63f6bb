/**
 * A DHCPv6 binding moves the node's recorded address (master/nodes/address.ts recordNodeIp6, issue 18):
 * firmware leases a new address on each boot, and the node environment that then asks for a credential
 * asks from it (nodes/enlist.ts gives a new one only to the node's own address). A node recorded by its
 * IPv4 lease keeps it where DHCPv4 serves leases; unknown MACs are not recorded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recordNodeIp6 } from '../../master/nodes/address.js';
import { tempRepos } from '../helpers/repos.js';

test('a DHCPv6 binding becomes the node address, unless DHCPv4 serves the node by its IPv4 lease', () => {
  const t = tempRepos();
  try {
    const { repos } = t;
    repos.store.write((j) => {
      repos.nodes.insertIn(j, {
        mac: '52:54:00:00:00:01',
        name: 'n1',
        seqNo: 1,
        state: 'discovered',
        ip: 'fd00::101',
      });
      repos.nodes.insertIn(j, {
        mac: '52:54:00:00:00:02',
        name: 'n2',
        seqNo: 2,
        state: 'deployed',
        ip: '10.0.0.5',
      });
      repos.nodes.insertIn(j, { mac: '52:54:00:00:00:03', name: 'n3', seqNo: 3, state: 'discovered' });
    });
    const ip = (mac: string): string | null | undefined => repos.nodes.get(mac)?.ip;
    // The firmware's next boot leased another address: that is where the node now asks from.
    recordNodeIp6(repos, '52:54:00:00:00:01', 'fd00::102', false);
    assert.equal(ip('52:54:00:00:00:01'), 'fd00::102');
    // DHCPv4 in server mode: the IPv4 lease stays the node's address (authoritativeAddress prefers it).
    recordNodeIp6(repos, '52:54:00:00:00:02', 'fd00::103', true);
    assert.equal(ip('52:54:00:00:00:02'), '10.0.0.5');
    // Without DHCPv4 leases (proxy or off) the binding is the only record Corral has: it wins.
    recordNodeIp6(repos, '52:54:00:00:00:02', 'fd00::103', false);
    assert.equal(ip('52:54:00:00:00:02'), 'fd00::103');
    // No address recorded yet: the binding is it, DHCPv4 or not.
    recordNodeIp6(repos, '52:54:00:00:00:03', 'fd00::104', true);
    assert.equal(ip('52:54:00:00:00:03'), 'fd00::104');
    // A MAC that is not a node is not recorded (no row appears).
    recordNodeIp6(repos, '52:54:00:00:00:09', 'fd00::109', false);
    assert.equal(repos.nodes.get('52:54:00:00:00:09'), undefined);
  } finally {
    t.cleanup();
  }
});
