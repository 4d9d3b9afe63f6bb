/**
 * The boot decision table (master/boot/decision.ts over the providers in surface.ts's bootOrder): every
 * node state × deployment status × shared root × node environment ready or not, and what each gets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decideBoot, type BootProvider } from '../../master/boot/decision.js';
import { NODE_ROUTES } from '../../master/boot/surface.js';
import { discoveryBootProvider } from '../../master/boot/core-providers.js';
import { NODE_STATES, type NodeRecord, type NodeState } from '../../master/store/nodes.js';
import { installPath } from '../../master/util/paths.js';
import { BOOT_FAILURE_DEFAULTS } from '../../master/boot/config.js';
import { decide, type BootCase } from '../helpers/boot.js';
import { nodeRecord } from '../helpers/node-record.js';

const mac = '52:54:00:aa:bb:01';
/** A first attempt, with the default failure policy. */
const first = { attempt: 0, failure: BOOT_FAILURE_DEFAULTS };
const base = { mac, baseUrl: 'http://10.99.0.1', kernelArgs: '', nodeImageReady: true };
const sharedRoot = { rootName: 'web', version: 3, params: ['corral.nfs=10.99.0.1:/roots/web/3'] };

function node(state: NodeState): NodeRecord {
  return nodeRecord({ mac, name: 'n1', state });
}

/** [case, expected provider, expected template] */
const TABLE: [string, Omit<BootCase, 'mac' | 'baseUrl' | 'kernelArgs'>, string, string][] = [
  ['unknown MAC', { node: undefined, nodeImageReady: true }, 'discovery', 'discover'],
  ['unknown MAC, no node environment', { node: undefined, nodeImageReady: false }, 'wait', 'no-image'],
  ['deployed', { node: node('deployed'), nodeImageReady: true }, 'disk', 'local'],
  // A deployed node needs nothing from the master: it boots its disk even while the environment is missing.
  ['deployed, no node environment', { node: node('deployed'), nodeImageReady: false }, 'disk', 'local'],
  [
    'deploying, pending',
    { node: node('deploying'), nodeImageReady: true, deployment: { id: 4, status: 'pending' } },
    'deploy',
    'install',
  ],
  [
    'deploying, installing',
    { node: node('deploying'), nodeImageReady: true, deployment: { id: 4, status: 'installing' } },
    'deploy',
    'install',
  ],
  [
    'deploying, installed',
    { node: node('deploying'), nodeImageReady: true, deployment: { id: 4, status: 'installed' } },
    'deploy',
    'local',
  ],
  [
    'deploying, installed, no node environment (kept as before the surface)',
    { node: node('deploying'), nodeImageReady: false, deployment: { id: 4, status: 'installed' } },
    'wait',
    'no-image',
  ],
  [
    'deploying, deployment failed',
    { node: node('deploying'), nodeImageReady: true, deployment: { id: 4, status: 'failed' } },
    'discovery',
    'discover',
  ],
  ['deploying, no deployment', { node: node('deploying'), nodeImageReady: true }, 'discovery', 'discover'],
  [
    'diskless with a shared root',
    { node: node('diskless'), nodeImageReady: true, sharedRoot },
    'sharedroot',
    'sharedroot',
  ],
  [
    'diskless with a shared root, no node environment',
    { node: node('diskless'), nodeImageReady: false, sharedRoot },
    'wait',
    'no-image',
  ],
  [
    'diskless without a shared root',
    { node: node('diskless'), nodeImageReady: true },
    'discovery',
    'discover',
  ],
  // A shared root or a deployment of a node in another state does not change what it boots.
  [
    'ready, with a shared root and a pending deployment',
    { node: node('ready'), nodeImageReady: true, sharedRoot, deployment: { id: 5, status: 'pending' } },
    'discovery',
    'discover',
  ],
];

for (const [name, c, by, template] of TABLE) {
  test(`boot decision: ${name} → ${by} (${template}.hbs)`, () => {
    const d = decide({ ...base, ...c });
    assert.equal(d.by, by);
    assert.equal(d.template, `ipxe/${template}.hbs`);
  });
}

test('boot decision: every other state runs discovery', () => {
  const claimed: NodeState[] = ['deployed', 'deploying', 'diskless'];
  for (const state of NODE_STATES.filter((s) => !claimed.includes(s))) {
    const d = decide({ ...base, node: node(state), sharedRoot, deployment: { id: 1, status: 'pending' } });
    assert.equal(d.by, 'discovery', state);
    assert.match(String(d.vars['reason']), new RegExp(`n1 is ${state}: discover`));
  }
});

test('boot decision: a request without a MAC is asked again for one, whatever else is known', () => {
  const d = decideBoot(
    {
      ...first,
      mac: undefined,
      node: undefined,
      baseUrl: 'http://m',
      kernelArgs: '',
      nodeImage: { ready: false },
    },
    [discoveryBootProvider],
  );
  assert.equal(d.by, 'ask-mac');
  assert.deepEqual(d.vars, { baseUrl: 'http://m' });
});

test('boot decision: the first provider that answers wins; a list whose last provider declines is an error', () => {
  const facts = {
    ...first,
    mac,
    node: undefined,
    baseUrl: 'http://m',
    kernelArgs: '',
    nodeImage: { ready: true },
  };
  const asked: string[] = [];
  const p = (name: string, answer: boolean): BootProvider => ({
    name,
    needsNodeImage: false,
    decide: () => {
      asked.push(name);
      return answer ? { template: `ipxe/${name}.hbs`, vars: {} } : undefined;
    },
  });
  assert.equal(decideBoot(facts, [p('a', false), p('b', true), p('c', true)]).by, 'b');
  assert.deepEqual(asked, ['a', 'b']);
  assert.throws(() => decideBoot(facts, [p('a', false)]), /no boot provider answered/);
  // The node-environment gate is reached only at the first provider that needs it.
  const waiting = { ...facts, nodeImage: { ready: false, status: 'building (initramfs, 40%)' } };
  const d = decideBoot(waiting, [p('x', false), discoveryBootProvider]);
  assert.equal(d.by, 'wait');
  assert.equal(d.vars['status'], 'building (initramfs, 40%)');
});

test('docs/boot-surface.md lists every node-facing route with its caller and authorisation', () => {
  const doc = readFileSync(installPath('docs', 'boot-surface.md'), 'utf8');
  for (const r of Object.values(NODE_ROUTES)) {
    const row = `| ${r.method} | \`${r.path}\` | ${r.caller} | ${r.auth} |`;
    assert.ok(doc.includes(row), `docs/boot-surface.md lacks the row: ${row}`);
  }
});
