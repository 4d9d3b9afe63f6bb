/**
 * End to end (issue 18): an OVMF VM with no iPXE option ROM boots by UEFI HTTP boot from Corral and
 * enlists. OVMF tries "PXE over IPv4" before "HTTP Boot over IPv4" and offers no switch to skip it
 * without its boot manager menu, so the master runs with TFTP off: the PXE attempt gets an offer but
 * cannot fetch its file, and the firmware goes on to HTTP boot, whose DISCOVER says
 * "HTTPClient:Arch:00016". It is answered with http://MASTER/boot/loader/ipxe.efi; iPXE then asks DHCP
 * again as iPXE, gets its boot script URL, and the node agent enlists. No TFTP is involved at any step.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLab, type Lab } from '../../master/lab/lab.js';
import { silentLogger } from '../../master/util/logger.js';
import { basic } from '../helpers/master-process.js';
import { waitFor } from '../helpers/netns.js';

const BOOT_TIMEOUT_MS = 300_000;

let lab: Lab | undefined;
let dir = '';
let poweredOnAt = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'corral-e2e-http-'));
  lab = await startLab({
    dir: join(dir, 'lab'),
    vms: [{ firmware: 'uefi-http' }],
    logger: silentLogger(),
    memoryMb: 512,
    diskGb: 2,
    subnetPrefix: '10.97.0',
    masterConfig: {
      tftp: { enabled: false },
      nodes: { namePattern: 'http-{n}', discoverAction: 'wait', pollSeconds: 5 },
    },
  });
  poweredOnAt = Date.now();
});

after(async () => {
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test('an OVMF VM UEFI-HTTP-boots ipxe.efi from /boot/loader (no TFTP) and enlists', async () => {
  const l = lab!;
  const vm = l.vms[0]!;
  let node: { mac: string; name: string; firmware: string | null; ip: string | null } | undefined;
  try {
    node = await waitFor(
      'the HTTP-booted VM to enlist',
      async () => {
        const r = await fetch(`${l.hostUrl}/api/v1/nodes`, {
          headers: basic('admin', l.adminPassword),
        }).catch(() => undefined);
        if (!r || r.status !== 200) return undefined;
        const list = ((await r.json()) as { nodes: NonNullable<typeof node>[] }).nodes;
        return list.find((n) => n.mac === vm.spec.mac);
      },
      BOOT_TIMEOUT_MS,
      2000,
    );
  } catch (err) {
    assert.fail(
      `${(err as Error).message}\n--- VM serial (last 4000):\n${vm.console().slice(-4000)}\n--- master log tail:\n${l.master.logs().slice(-4000)}`,
    );
  }
  const seconds = (Date.now() - poweredOnAt) / 1000;
  assert.equal(node.firmware, 'uefi');
  assert.match(node.ip ?? '', /^10\.97\.0\.1\d\d$/);
  const log = l.master.logs();
  // The firmware's HTTP boot DISCOVER/REQUEST was answered with the loader URL (dhcp/policy.ts note) ...
  assert.match(
    log,
    new RegExp(
      `"mac":"${vm.spec.mac}"[^\\n]*UEFI HTTP boot http://[^ ]+/boot/loader/ipxe\\.efi \\(arch 16\\)`,
    ),
  );
  // ... the firmware downloaded it over HTTP (loader-route.ts) ...
  assert.match(log, /"file":"ipxe.efi"[^\n]*"msg":"HTTP boot loader"/);
  // ... and iPXE, started from it, fetched its boot script.
  assert.match(log, new RegExp(`"mac":"${vm.spec.mac}"[^\\n]*"template":"ipxe/discover.hbs"`));
  console.log(`# e2e: UEFI HTTP boot, power-on → enlisted ${seconds.toFixed(1)} s (TCG, polled every 2 s)`);
});
