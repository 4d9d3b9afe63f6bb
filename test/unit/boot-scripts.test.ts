import { test } from 'node:test';
import assert from 'node:assert/strict';
import { golden as goldenFile } from '../helpers/golden.js';
import { readdirSync } from 'node:fs';
import { ipxeText, nodeCmdline } from '../../master/boot/scripts.js';
import { decide } from '../helpers/boot.js';
import { BOOT_FAILURE_DEFAULTS } from '../../master/boot/config.js';
import { renderTemplate } from '../../master/util/templates.js';
import { installPath } from '../../master/util/paths.js';
import type { NodeRecord } from '../../master/store/nodes.js';
import { nodeRecord } from '../helpers/node-record.js';

const base = {
  mac: '52:54:00:12:34:56',
  baseUrl: 'http://10.99.0.1:8080',
  kernelArgs: '',
  nodeImageReady: true,
};

function node(state: NodeRecord['state']): NodeRecord {
  return nodeRecord({ mac: base.mac, state });
}

/** Golden files: test/fixtures/ipxe/<case>.ipxe (test/helpers/golden.ts). */
const golden = (name: string, text: string): void => goldenFile(`ipxe/${name}.ipxe`, text);

test('unknown MAC boots the discovery environment', () => {
  const s = decide({ ...base, node: undefined });
  assert.equal(s.template, 'ipxe/discover.hbs');
  golden('discover-unknown', renderTemplate(s.template, s.vars));
});

test('deployed node boots its local disk', () => {
  const s = decide({ ...base, node: node('deployed') });
  assert.equal(s.template, 'ipxe/local.hbs');
  golden('local-deployed', renderTemplate(s.template, s.vars));
});

test('without a built node image the script waits and retries', () => {
  const s = decide({ ...base, nodeImageReady: false, node: undefined });
  assert.equal(s.template, 'ipxe/no-image.hbs');
  golden('no-image', renderTemplate(s.template, s.vars));
});

test('while the master builds the node environment, a waiting node is told the stage', () => {
  const s = decide({
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
    const s = decide({ ...base, node: node(state) });
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

test('a failed boot retries with a doubling wait (capped), then gets the fallback; each fallback rendered', () => {
  const waits: number[] = [];
  for (let attempt = 0; attempt <= BOOT_FAILURE_DEFAULTS.retries; attempt++) {
    const s = decide({ ...base, node: undefined, attempt });
    assert.equal(s.by, 'discovery', `attempt ${attempt}`);
    const text = renderTemplate(s.template, s.vars);
    // Each failing script asks for the next attempt, and goes to the fallback when the master is gone.
    assert.match(
      text,
      new RegExp(
        `\\?mac=${base.mac}&attempt=${attempt + 1}&platform=\\$\\{platform\\} \\|\\| goto fallback$`,
        'm',
      ),
    );
    waits.push(Number(s.vars['retrySeconds']));
  }
  assert.deepEqual(waits, [10, 20, 40, 80, 160, 300]);
  const last = decide({ ...base, node: undefined, attempt: BOOT_FAILURE_DEFAULTS.retries });
  golden('discover-last-retry', renderTemplate(last.template, last.vars));

  const gaveUp = decide({ ...base, node: undefined, attempt: BOOT_FAILURE_DEFAULTS.retries + 1 });
  assert.equal(gaveUp.by, 'fallback');
  const localDisk = renderTemplate(gaveUp.template, gaveUp.vars);
  // exit 1, never exit 0: UEFI stops at its boot menu on success (Tinkerbell #984).
  assert.match(localDisk, /^exit 1$/m);
  assert.doesNotMatch(localDisk, /^exit 0$/m);
  golden('fallback-local-disk', localDisk);

  const shell = { ...BOOT_FAILURE_DEFAULTS, onFailure: 'shell' as const, retries: 2 };
  const s = decide({ ...base, node: undefined, attempt: 3, failure: shell });
  assert.equal(s.by, 'fallback');
  golden('fallback-shell', renderTemplate(s.template, s.vars));
  assert.equal(decide({ ...base, node: undefined, attempt: 2, failure: shell }).by, 'discovery');
});

test('retry-forever never falls back; its wait stays at the cap', () => {
  const forever = { ...BOOT_FAILURE_DEFAULTS, onFailure: 'retry-forever' as const };
  const s = decide({ ...base, node: undefined, attempt: 40, failure: forever });
  assert.equal(s.by, 'discovery');
  assert.equal(s.vars['retrySeconds'], 300);
  golden('discover-retry-forever', renderTemplate(s.template, s.vars));
});

test('waiting for the node environment is no failed attempt: the wait keeps its attempt', () => {
  const s = decide({ ...base, nodeImageReady: false, node: undefined, attempt: 2 });
  assert.equal(s.by, 'wait');
  assert.equal(s.vars['retrySeconds'], 10);
  assert.match(String(s.vars['retryUrl']), /&attempt=2&platform=\$\{platform\}$/);
});
