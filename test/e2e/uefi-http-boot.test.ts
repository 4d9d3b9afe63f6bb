/**
 * End to end (issue 18): an OVMF VM with Secure Boot enforced (Microsoft's keys enrolled) and no iPXE
 * option ROM boots the signed chain by UEFI HTTP boot from Corral and enlists. OVMF tries "PXE over IPv4"
 * before "HTTP Boot over IPv4" and offers no switch to skip it without its boot manager menu, so the
 * master runs with TFTP off: the PXE attempt gets an offer but cannot fetch its file, and the firmware
 * goes on to HTTP boot, whose DISCOVER says "HTTPClient:Arch:00016". The default chain (secure-boot)
 * answers with http://MASTER/boot/http/MAC/corral.iso; the firmware boots it from a RAM disk: shim
 * (Microsoft-signed) → Debian's signed network GRUB → the ISO's grub.cfg (the node's boot decision) →
 * Debian's signed kernel, and the node agent enlists reporting Secure Boot on. No TFTP at any step.
 * iPXE over HTTP boot (boot.uefiChain ipxe) is checked in test/unit/dhcp-http-boot.test.ts.
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
    vms: [{ firmware: 'uefi-sb' }],
    logger: silentLogger(),
    // The RAM disk (the ISO, ~the node environment's size) stays reserved while Linux runs.
    memoryMb: 1024,
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

test('a Secure Boot OVMF VM UEFI-HTTP-boots the signed chain (ISO: shim, GRUB, kernel; no TFTP) and enlists', async () => {
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
  // The firmware's HTTP boot DISCOVER/REQUEST was answered with the node's ISO URL (dhcp/policy.ts note) ...
  assert.match(
    log,
    new RegExp(
      `"mac":"${vm.spec.mac}"[^\\n]*UEFI HTTP boot http://[^ ]+/boot/http/${vm.spec.mac}/corral\\.iso \\(arch 16\\)`,
    ),
  );
  // ... the firmware downloaded it over HTTP, with the node's decision as GRUB's config (surface.ts) ...
  assert.match(log, new RegExp(`"mac":"${vm.spec.mac}"[^\\n]*"msg":"HTTP boot ISO"`));
  assert.match(log, new RegExp(`"mac":"${vm.spec.mac}"[^\\n]*"template":"grub/discover.hbs"`));
  // ... and the node environment ran under Secure Boot: the kernel says so, and so does the agent's report.
  assert.match(
    vm.console(),
    /Secure boot enabled|UEFI Secure Boot is enabled|locked down from EFI Secure Boot/,
    `the node environment's kernel log:\n${vm.console().slice(-3000)}`,
  );
  const r = await fetch(`${l.hostUrl}/api/v1/nodes/${node.name}`, {
    headers: basic('admin', l.adminPassword),
  });
  const inv = (await r.json()) as { node: { inventory: { secureBoot?: boolean | null } } };
  assert.equal(inv.node.inventory.secureBoot, true, 'the agent reported Secure Boot enabled');
  console.log(
    `# e2e: UEFI HTTP boot, Secure Boot chain, power-on → enlisted ${seconds.toFixed(1)} s (TCG, polled every 2 s)`,
  );
});
