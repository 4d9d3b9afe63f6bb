/**
 * A deployed node whose disk does not boot comes back to Corral (issue 18, master/boot/local-fallback*.ts):
 * the judgement (pure), the one-report-per-answer memory, the reporter against a real store (state,
 * reason, event, timeline step), the scripts that report (golden: iPXE sanboot → /boot/local-failed,
 * GRUB → local-failed.cfg) and the GRUB file name the TFTP server maps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderTemplate } from '../../master/util/templates.js';
import { renderGrubConfig, parseGrubRequest, grubLocalFailedPath } from '../../master/boot/grub.js';
import {
  judgeLocalFailure,
  LocalAnswers,
  LOCAL_FAILURE_WINDOW_MS,
  MAX_WATCHED,
} from '../../master/boot/local-fallback.js';
import { REFUSED_SCRIPT } from '../../master/boot/local-fallback-report.js';
import { describe as describeStep } from '../../master/boot/activity.js';
import { BOOT_FAILURE_DEFAULTS } from '../../master/boot/config.js';
import { decide } from '../helpers/boot.js';
import { deployedNodeReporter } from '../helpers/disk-failure.js';
import type { NodeRecord } from '../../master/store/nodes.js';

const MAC = '52:54:00:12:34:56';
const T0 = 1_800_000_000_000;

test('a report is believed only for a deployed node, within the window after a local answer', () => {
  const deployed = { state: 'deployed' } as const;
  assert.deepEqual(judgeLocalFailure(deployed, T0, T0 + 5_000, 'grub'), {
    accept: true,
    reason: 'disk boot failed: network GRUB found no bootable /EFI/BOOT/BOOTX64.EFI (UEFI)',
  });
  assert.match(
    (judgeLocalFailure(deployed, T0, T0 + 1, 'sanboot') as { reason: string }).reason,
    /iPXE sanboot found no bootable disk \(BIOS\)/,
  );
  assert.deepEqual(judgeLocalFailure(deployed, T0, T0 + LOCAL_FAILURE_WINDOW_MS, 'grub').accept, true);
  assert.deepEqual(judgeLocalFailure(deployed, T0, T0 + LOCAL_FAILURE_WINDOW_MS + 1, 'grub'), {
    accept: false,
    why: 'expired',
  });
  assert.deepEqual(judgeLocalFailure(deployed, undefined, T0, 'grub'), {
    accept: false,
    why: 'no-local-answer',
  });
  for (const state of ['deploying', 'failed', 'ready', 'diskless'] as const) {
    assert.deepEqual(judgeLocalFailure({ state }, T0, T0 + 1, 'sanboot'), {
      accept: false,
      why: 'not-deployed',
    });
  }
  assert.deepEqual(judgeLocalFailure(undefined, T0, T0 + 1, 'sanboot'), {
    accept: false,
    why: 'not-deployed',
  });
});

test('one report per local answer, and the memory is bounded', () => {
  const a = new LocalAnswers();
  a.served(MAC, T0);
  assert.equal(a.take(MAC), T0);
  assert.equal(a.take(MAC), undefined, 'a second report of the same answer is not believed');
  for (let i = 0; i <= MAX_WATCHED; i++) a.served(`m${i}`, T0 + i);
  assert.equal(a.take('m0'), undefined, 'the oldest is forgotten past MAX_WATCHED');
  assert.equal(a.take(`m${MAX_WATCHED}`), T0 + MAX_WATCHED);
});

test('a believed report marks the deployed node failed with the reason, an event and a timeline step', () => {
  const { t, reports, steps, clock } = deployedNodeReporter(MAC, T0);
  try {
    // No local answer yet: refused, the node stays deployed, the refusal is in the timeline.
    assert.equal(reports.report(MAC, 'grub', '10.99.0.100'), false);
    assert.equal(t.repos.nodes.get(MAC)?.state, 'deployed');
    assert.deepEqual(steps.pop(), {
      kind: 'disk-failed',
      via: 'grub',
      accepted: false,
      ip: '10.99.0.100',
      refused: 'no-local-answer',
    });

    // An answer long ago is not enough either.
    reports.localServed(MAC);
    clock.now += LOCAL_FAILURE_WINDOW_MS + 1;
    assert.equal(reports.report(MAC, 'grub', '10.99.0.100'), false);
    assert.equal(t.repos.nodes.get(MAC)?.state, 'deployed');

    reports.localServed(MAC);
    clock.now += 20_000;
    assert.equal(reports.report(MAC, 'grub', '10.99.0.100'), true);
    const n = t.repos.nodes.get(MAC);
    assert.equal(n?.state, 'failed');
    assert.match(n?.stateReason ?? '', /^disk boot failed: network GRUB/);
    const step = steps.pop();
    assert.deepEqual(step, { kind: 'disk-failed', via: 'grub', accepted: true, ip: '10.99.0.100' });
    const d = describeStep(step!);
    assert.equal(d.failed, true);
    assert.match(d.summary, /^disk boot failed \(UEFI: .*\): node marked failed, node environment served$/);
    assert.match(d.hint ?? '', /redeploy it from the console/);
    const events = t.repos.events.list({ nodeMac: MAC, limit: 10 });
    assert.ok(
      events.some((e) => e.kind === 'node.state' && /deployed → failed \(disk boot failed/.test(e.message)),
      JSON.stringify(events),
    );

    // The failed node's next boot is the node environment, through the same decision as any boot.
    const failed = t.repos.nodes.get(MAC) as NodeRecord;
    const next = decide({
      mac: MAC,
      node: failed,
      baseUrl: 'http://10.99.0.1',
      kernelArgs: '',
      nodeImageReady: true,
    });
    assert.equal(next.by, 'discovery');
    assert.equal(next.template, 'ipxe/discover.hbs');
  } finally {
    t.cleanup();
  }
});

test('the local scripts report a disk that did not boot (golden files: local-deployed.ipxe, .cfg), and GRUB names a file the master maps', () => {
  const node = { state: 'deployed', name: 'node-1', mac: MAC } as NodeRecord;
  const d = decide({
    mac: MAC,
    node,
    baseUrl: 'http://10.99.0.1:8080',
    kernelArgs: '',
    nodeImageReady: true,
  });
  assert.equal(d.by, 'disk');
  const ipxe = renderTemplate(d.template, d.vars);
  // BIOS: sanboot's failure chains the report; UEFI still leaves with a non-zero status.
  assert.match(
    ipxe,
    /^sanboot --no-describe --drive 0x80 \|\| chain --autofree http:\/\/10\.99\.0\.1:8080\/boot\/local-failed\?mac=52:54:00:12:34:56&platform=\$\{platform\} \|\| exit 1$/m,
  );
  assert.match(ipxe, /^iseq \$\{platform\} efi && exit 1 \|\|$/m);
  assert.doesNotMatch(ipxe, /exit 0/);
  const grub = renderGrubConfig(d, {
    mac: MAC,
    baseUrl: 'http://10.99.0.1:8080',
    kernelArgs: '',
    attempt: 0,
    failure: BOOT_FAILURE_DEFAULTS,
  });
  const lines = grub.split('\n');
  const chain = lines.indexOf('  chainloader /EFI/BOOT/BOOTX64.EFI');
  const report = lines.indexOf(`configfile ${grubLocalFailedPath(MAC)}`);
  assert.ok(chain > 0 && report > chain, grub);
  assert.equal(
    lines.slice(report).find((l) => /^exit/.test(l)),
    'exit 1',
  );
  assert.deepEqual(parseGrubRequest(grubLocalFailedPath(MAC).slice(1)), { kind: 'local-failed', mac: MAC });
  assert.equal(parseGrubRequest('grub/node/52:54:00:12:34:56/local-failed.cfg.bak'), undefined);
  // A refused report leaves for the next boot device with an error status (never exit 0).
  assert.match(REFUSED_SCRIPT.ipxe, /^#!ipxe\n[^]*\nexit 1\n$/);
  assert.match(REFUSED_SCRIPT.grub, /\nexit 1\n$/);
});
