/**
 * cloud-init (issue 16), pure parts: which layers a node gets and in what order, the merge rule, the
 * templates, YAML read the way cloud-init (PyYAML, YAML 1.1) reads it, and the rendered meta-data and
 * network-config, against golden files in test/fixtures/cloudinit/.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CloudInitLayerRecord, LayerScope } from '../../master/store/cloud-init-layers.js';
import {
  layerProblem,
  mergeCloudConfig,
  nodeTags,
  renderUserData,
  selectLayers,
  type TemplateVars,
} from '../../master/cloudinit/user-data.js';
import {
  inSubnet,
  instanceId,
  renderMetaData,
  renderNetworkConfig,
} from '../../master/cloudinit/datasource.js';
import { Octal, dumpYaml, parseYaml } from '../../master/cloudinit/yaml.js';
import { CorralError } from '../../master/util/errors.js';
import { golden } from '../helpers/golden.js';

const layer = (scope: LayerScope, target: string, content: string): CloudInitLayerRecord => ({
  scope,
  target,
  content,
  updatedAt: '2026-12-06T00:00:00.000Z',
  updatedBy: 'admin',
});

const VARS: TemplateVars = {
  hostname: 'web-1',
  name: 'web-1',
  mac: '52:54:00:16:00:01',
  ip: '10.0.0.101',
  role: 'web',
  master: 'http://10.0.0.1',
  tags: ['gpu', 'rack-a'],
  instanceId: 'corral-525400160001-d7',
};

describe('layer selection', () => {
  const all = [
    layer('node', '52:54:00:16:00:01', 'a: 1'),
    layer('tag', 'rack-a', 'a: 1'),
    layer('role', 'db', 'a: 1'),
    layer('tag', 'gpu', 'a: 1'),
    layer('global', '', 'a: 1'),
    layer('role', 'web', 'a: 1'),
    layer('node', '52:54:00:16:00:02', 'a: 1'),
    layer('tag', 'ssd', 'a: 1'),
  ];

  it('takes global, its role, its tags by name, then itself; nothing of other roles, tags or nodes', () => {
    const got = selectLayers(all, { mac: '52:54:00:16:00:01', role: 'web', tags: ['rack-a', 'gpu'] });
    assert.deepEqual(
      got.map((l) => `${l.scope}:${l.target}`),
      ['global:', 'role:web', 'tag:gpu', 'tag:rack-a', 'node:52:54:00:16:00:01'],
    );
  });

  it('a node without role or tags gets global and its own layer', () => {
    const got = selectLayers(all, { mac: '52:54:00:16:00:02', role: null });
    assert.deepEqual(
      got.map((l) => `${l.scope}:${l.target}`),
      ['global:', 'node:52:54:00:16:00:02'],
    );
  });

  it("reads a node record's tags when it has them, and none when it has not", () => {
    assert.deepEqual(nodeTags({ mac: 'x', tags: ['a', 3, 'b'] }), ['a', 'b']);
    assert.deepEqual(nodeTags({ mac: 'x' }), []);
  });
});

describe('merge: mappings recurse, lists append, scalars replace', () => {
  it('merges the way cloud-init merges list(append)+dict(recurse_array)', () => {
    const base = {
      runcmd: ['a'],
      users: [{ name: 'x' }],
      ntp: { enabled: true, servers: ['s1'] },
      timezone: 'UTC',
    };
    const over = { runcmd: ['b'], ntp: { servers: ['s2'] }, timezone: 'Europe/Paris', packages: ['curl'] };
    assert.deepEqual(mergeCloudConfig(base, over), {
      runcmd: ['a', 'b'],
      users: [{ name: 'x' }],
      ntp: { enabled: true, servers: ['s1', 's2'] },
      timezone: 'Europe/Paris',
      packages: ['curl'],
    });
    assert.deepEqual(base.runcmd, ['a'], 'inputs untouched');
  });

  it('a later scalar replaces an earlier list (and the other way round)', () => {
    assert.deepEqual(mergeCloudConfig({ a: [1] }, { a: 'x' }), { a: 'x' });
    assert.deepEqual(mergeCloudConfig({ a: 'x' }, { a: [1] }), { a: [1] });
  });
});

describe('user-data', () => {
  const layers = [
    layer(
      'global',
      '',
      '#cloud-config\ntimezone: UTC\nwrite_files:\n  - path: /etc/corral-master\n    content: "{{master}}\\n"\n    permissions: "0644"\nruncmd:\n  - echo global > /run/order\n',
    ),
    layer(
      'role',
      'web',
      'packages: [nginx]\nruncmd:\n  - echo {{role}} on {{hostname}} at {{ip}} >> /run/order\n',
    ),
    layer(
      'tag',
      'gpu',
      'write_files:\n  - path: /etc/tags\n    content: "{{#each tags}}{{this}} {{/each}}"\n',
    ),
    layer(
      'node',
      '52:54:00:16:00:01',
      'timezone: Europe/Paris\nruncmd:\n  - echo {{mac}} {{instanceId}} >> /run/order\n',
    ),
  ];

  it('renders templates in every layer and merges them in order (golden)', () => {
    golden('cloudinit/user-data-web-1.yaml', renderUserData(layers, VARS));
  });

  it('with no layers is an empty #cloud-config', () => {
    assert.equal(renderUserData([], VARS), '#cloud-config\n{}\n');
  });

  it('keeps YAML 1.1 meaning for cloud-init: 0644 stays octal, yes is true, a quoted yes stays a string', () => {
    const text = renderUserData(
      [layer('global', '', "a: 0644\nb: yes\nc: 'yes'\nd: '0644'\ne: off\nf: 0x10\n")],
      VARS,
    );
    assert.equal(text, "#cloud-config\na: 0644\nb: true\nc: 'yes'\nd: '0644'\ne: false\nf: 16\n");
    const back = parseYaml(text);
    assert.ok('value' in back);
    const v = back.value as Record<string, unknown>;
    assert.ok(v['a'] instanceof Octal);
    assert.equal((v['a'] as Octal).value, 0o644, 'PyYAML reads 0644 as 420 too');
    assert.deepEqual({ ...v, a: undefined }, { a: undefined, b: true, c: 'yes', d: '0644', e: false, f: 16 });
  });

  it('an octal scalar is a scalar to the merge, not a mapping', () => {
    const text = renderUserData(
      [layer('global', '', 'w:\n  mode: 0600\n'), layer('role', 'web', 'w:\n  mode: 0644\n')],
      VARS,
    );
    assert.equal(text, '#cloud-config\nw:\n  mode: 0644\n');
  });

  it('refuses a layer that is not YAML, naming the line', () => {
    assert.match(layerProblem('a: 1\nb: [unclosed\n', VARS) ?? '', /not YAML \(line 3\)/);
  });

  it('refuses a list or a scalar at the top: a cloud-config is a mapping', () => {
    assert.match(layerProblem('- runcmd\n', VARS) ?? '', /is a mapping/);
    assert.match(layerProblem('just text', VARS) ?? '', /is a mapping/);
  });

  it('refuses an unknown template variable (strict), and accepts an empty layer', () => {
    assert.match(
      layerProblem('runcmd: ["echo {{hostnme}}"]\n', VARS) ?? '',
      /template does not render.*hostnme/,
    );
    assert.equal(layerProblem('# only a comment\n', VARS), undefined);
  });

  it('a stored layer that no longer renders fails with CLOUDINIT_LAYER_INVALID naming it', () => {
    assert.throws(
      () => renderUserData([layer('role', 'web', 'a: [\n')], VARS),
      (e: unknown) =>
        e instanceof CorralError && e.code === 'CLOUDINIT_LAYER_INVALID' && /role web/.test(e.message),
    );
  });
});

describe('meta-data and network-config', () => {
  it('instance-id is per node and deployment', () => {
    assert.equal(instanceId('52:54:00:16:00:01', 7), 'corral-525400160001-d7');
    assert.equal(instanceId('52:54:00:16:00:01', undefined), 'corral-525400160001-none');
    assert.notEqual(instanceId('52:54:00:16:00:01', 7), instanceId('52:54:00:16:00:01', 8));
  });

  it('meta-data (golden)', () => {
    golden(
      'cloudinit/meta-data',
      renderMetaData({ instanceId: 'corral-525400160001-d7', hostname: 'web-1' }),
    );
  });

  const pools = [
    { subnet: '10.0.0.0/24', router: '10.0.0.254', dns: ['10.0.0.53', '10.0.1.53'], domain: 'lab.example' },
    { subnet: '10.20.0.0/22', dns: [] },
  ];

  it('a leased node: DHCP on the NIC matched by MAC, identified by MAC (golden)', () => {
    golden('cloudinit/network-config-dhcp.yaml', renderNetworkConfig({ mac: '52:54:00:16:00:01', pools }));
  });

  it('a reserved address: static, with the gateway, DNS and domain of its pool (golden)', () => {
    golden(
      'cloudinit/network-config-reserved.yaml',
      renderNetworkConfig({ mac: '52:54:00:16:00:01', reservedIp: '10.0.0.50', pools }),
    );
  });

  it("a reservation in a relay pool takes that pool's prefix; one outside every pool falls back to DHCP", () => {
    assert.match(
      renderNetworkConfig({ mac: '52:54:00:16:00:01', reservedIp: '10.20.3.9', pools }),
      /- 10\.20\.3\.9\/22\n/,
    );
    assert.match(
      renderNetworkConfig({ mac: '52:54:00:16:00:01', reservedIp: '192.0.2.1', pools }),
      /dhcp4: true/,
    );
  });

  it('inSubnet', () => {
    assert.equal(inSubnet('10.0.0.255', '10.0.0.0/24'), true);
    assert.equal(inSubnet('10.0.1.0', '10.0.0.0/24'), false);
    assert.equal(inSubnet('1.2.3.4', '0.0.0.0/0'), true);
  });

  it('dumpYaml of the network-config reads back as the same structure', () => {
    const back = parseYaml(renderNetworkConfig({ mac: '52:54:00:16:00:01', reservedIp: '10.0.0.50', pools }));
    assert.deepEqual('value' in back && back.value, {
      version: 2,
      ethernets: {
        corral0: {
          match: { macaddress: '52:54:00:16:00:01' },
          dhcp4: false,
          addresses: ['10.0.0.50/24'],
          routes: [{ to: '0.0.0.0/0', via: '10.0.0.254' }],
          nameservers: { addresses: ['10.0.0.53', '10.0.1.53'], search: ['lab.example'] },
        },
      },
    });
    assert.equal(dumpYaml({ a: '0644' }), "a: '0644'\n");
  });
});
