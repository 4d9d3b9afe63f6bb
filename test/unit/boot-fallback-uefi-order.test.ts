/**
 * The installer keeps the UEFI network entry first (issue 18, MAAS LP#1642298): corral-install's
 * keep_network_first, run with busybox's shell (the installer's) on EFI variable files laid out as
 * efivarfs shows them (4 bytes of attributes, then the value) in a fake /sys (CORRAL_SYS). The real
 * firmware's variables are checked on a deployed Secure Boot VM in test/e2e/lab-deploy.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installPath } from '../../master/util/paths.js';

const GUID = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
const ATTRS = [7, 0, 0, 0];

const u16s = (values: number[]): number[] => values.flatMap((v) => [v & 0xff, v >> 8]);

function run(current: number, order: number[]): { order: number[]; said: string } {
  const dir = mkdtempSync(join(tmpdir(), 'corral-bootorder-'));
  try {
    const ev = join(dir, 'sys', 'firmware', 'efi', 'efivars');
    mkdirSync(ev, { recursive: true });
    writeFileSync(join(ev, `BootCurrent-${GUID}`), Buffer.from([6, 0, 0, 0, ...u16s([current])]));
    writeFileSync(join(ev, `BootOrder-${GUID}`), Buffer.from([...ATTRS, ...u16s(order)]));
    const said = execFileSync(
      'busybox',
      ['sh', '-c', `. "${installPath('node-images', 'agent', 'corral-install')}"; keep_network_first`],
      {
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          CORRAL_INSTALL_LIB: '1',
          CORRAL_SYS: join(dir, 'sys'),
          CORRAL_WORK: join(dir, 'work'),
          CORRAL_TARGET: join(dir, 'target'),
        },
        encoding: 'utf8',
      },
    );
    const raw = readFileSync(join(ev, `BootOrder-${GUID}`));
    assert.deepEqual([...raw.subarray(0, 4)], ATTRS, 'attributes NV|BS|RT written back');
    const out: number[] = [];
    for (let i = 4; i + 1 < raw.length; i += 2) out.push(raw.readUInt16LE(i));
    return { order: out, said };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the entry the installer was network-booted from goes first in BootOrder; the rest keep their order', () => {
  const moved = run(0x0003, [0x0001, 0x0002, 0x0003, 0x0000]);
  assert.deepEqual(moved.order, [0x0003, 0x0001, 0x0002, 0x0000]);
  assert.match(
    moved.said,
    /Boot0003 \(this network boot\) moved first: 0003 0001 0002 0000 \(was 0001 0002 0003 0000\)/,
  );
  // Entry numbers above 0x00ff: both bytes, little-endian.
  assert.deepEqual(run(0x1a2b, [0x0000, 0x1a2b]).order, [0x1a2b, 0x0000]);
});

test('already first: BootOrder is left as it is', () => {
  const kept = run(0x0001, [0x0001, 0x0000]);
  assert.deepEqual(kept.order, [0x0001, 0x0000]);
  assert.match(kept.said, /Boot0001 \(this network boot\) is first: 0001 0000/);
});
