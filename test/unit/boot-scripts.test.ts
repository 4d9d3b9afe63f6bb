import { test } from 'node:test';
import assert from 'node:assert/strict';
import { golden as goldenFile } from '../helpers/golden.js';
import { readdirSync } from 'node:fs';
import { chooseBootScript, ipxeText, nodeCmdline } from '../../master/boot/scripts.js';
import { renderTemplate } from '../../master/util/templates.js';
import { installPath } from '../../master/util/paths.js';
import type { NodeRecord } from '../../master/store/nodes.js';

const base = {
  mac: '52:54:00:12:34:56',
  baseUrl: 'http://10.99.0.1:8080',
  kernelArgs: '',
  nodeImageReady: true,
};

function node(state: NodeRecord['state']): NodeRecord {
  return {
    mac: base.mac,
    name: 'node-1',
    seqNo: 1,
    ip: null,
    state,
    role: null,
    firmware: null,
    inventory: {},
    tags: [],
    enrolledBy: null,
    image: null,
    stateReason: null,
    createdAt: '',
    updatedAt: '',
    lastSeenAt: null,
  };
}

/** Golden files: test/fixtures/ipxe/<case>.ipxe (test/helpers/golden.ts). */
const golden = (name: string, text: string): void => goldenFile(`ipxe/${name}.ipxe`, text);

test('unknown MAC boots the discovery environment', () => {
  const s = chooseBootScript({ ...base, node: undefined });
  assert.equal(s.template, 'ipxe/discover.hbs');
  golden('discover-unknown', renderTemplate(s.template, s.vars));
});

test('deployed node boots its local disk', () => {
  const s = chooseBootScript({ ...base, node: node('deployed') });
  assert.equal(s.template, 'ipxe/local.hbs');
  golden('local-deployed', renderTemplate(s.template, s.vars));
});

test('without a built node image the script waits and retries', () => {
  const s = chooseBootScript({ ...base, nodeImageReady: false, node: undefined });
  assert.equal(s.template, 'ipxe/no-image.hbs');
  golden('no-image', renderTemplate(s.template, s.vars));
});

test('while the master builds the node environment, a waiting node is told the stage', () => {
  const s = chooseBootScript({
    ...base,
    nodeImageReady: false,
    nodeImageStatus: 'Corral is building the node environment (initramfs, 65%)',
    node: undefined,
  });
  assert.equal(s.template, 'ipxe/no-image.hbs');
  golden('no-image-building', renderTemplate(s.template, s.vars));
});

test('text for an iPXE echo line loses what iPXE would expand or split on', () => {
  assert.equal(
    ipxeText('failed: ${net0/mac} && rm #x || y; \'q\' "z" a\\b\nnext\tline'),
    'failed: {net0/mac} rm x y, q z a b next line',
  );
  assert.equal(ipxeText('x'.repeat(300)).length, 200);
});

test('every state renders a script starting with #!ipxe', () => {
  for (const state of [
    'discovered',
    'ready',
    'deploying',
    'deployed',
    'diskless',
    'retiring',
    'failed',
  ] as const) {
    const s = chooseBootScript({ ...base, node: node(state) });
    assert.ok(renderTemplate(s.template, s.vars).startsWith('#!ipxe\n'), state);
  }
  assert.ok(readdirSync(installPath('templates', 'ipxe')).length >= 4);
});

test('kernel command line carries mode, server, MAC and BOOTIF', () => {
  assert.equal(
    nodeCmdline('discover', 'http://10.0.0.1', '52:54:00:12:34:56', 'quiet  loglevel=3'),
    'console=tty0 console=ttyS0,115200n8 panic=30 corral.mode=discover corral.server=http://10.0.0.1 ' +
      'corral.mac=52:54:00:12:34:56 BOOTIF=01-52-54-00-12-34-56 quiet loglevel=3',
  );
});
