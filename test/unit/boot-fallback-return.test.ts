/**
 * A deployed node whose disk did not boot, where no boot loader can say so (issue 18,
 * master/boot/local-fallback*.ts): iPXE on UEFI leaves with `exit 1`, and the HTTP boot ISO's GRUB has
 * no network. The node coming back to the network within RETURN_WINDOW_MS of such a local answer, with
 * no sign of its OS in between, is taken as the disk's failure. The judgement (pure) and the reporter
 * against a real store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipxeLocalSilent, isReturn, RETURN_WINDOW_MS } from '../../master/boot/local-fallback.js';
import { describe as describeStep, firmwareBootPath } from '../../master/boot/activity.js';
import { deployedNodeReporter } from '../helpers/disk-failure.js';

const MAC = '52:54:00:12:34:57';
const IP = '10.99.0.101';
const T0 = 1_800_000_000_000;

test('a return is a network boot within the window after a silent local answer, and only that', () => {
  assert.equal(isReturn({ at: T0, silent: true, paths: new Set<string>() }, T0 + 5_000), true);
  assert.equal(isReturn({ at: T0, silent: true, paths: new Set<string>() }, T0 + RETURN_WINDOW_MS), true);
  assert.equal(
    isReturn({ at: T0, silent: true, paths: new Set<string>() }, T0 + RETURN_WINDOW_MS + 1),
    false,
  );
  // TFTP network GRUB and BIOS sanboot report a failure themselves: coming back is no evidence.
  assert.equal(isReturn({ at: T0, silent: false, paths: new Set<string>() }, T0 + 5_000), false);
  assert.equal(isReturn(undefined, T0), false);
});

test("iPXE's local answer is silent on efi (and when the URL names no platform), not on pcbios", () => {
  // The script URL carries iPXE's ${platform} (dhcp/pxe.ts bootScriptUrl, scripts.ts retryUrl).
  assert.equal(ipxeLocalSilent('efi'), true);
  assert.equal(ipxeLocalSilent('pcbios'), false);
  assert.equal(ipxeLocalSilent(undefined), true, 'an older URL: judged by its return, as before');
  assert.equal(ipxeLocalSilent(['pcbios', 'efi']), true, 'a repeated parameter is no platform');
});

test('a node back soon after an iPXE/HTTP-boot local answer is marked failed, once, with a timeline step', () => {
  const { t, reports, steps, clock } = deployedNodeReporter(MAC, T0);
  try {
    // A first boot of the day: no local answer before it, so it is no return and nothing is recorded.
    assert.equal(reports.returned(MAC, IP), false);
    assert.equal(steps.length, 0);

    reports.localServed(MAC, true);
    clock.now += 25_000;
    assert.equal(reports.returned(MAC, IP), true);
    const n = t.repos.nodes.get(MAC);
    assert.equal(n?.state, 'failed');
    assert.equal(
      n?.stateReason,
      `disk boot failed: network boot again within ${RETURN_WINDOW_MS / 1000} s of a local-disk answer, no sign of its OS (UEFI)`,
    );
    const step = steps.pop();
    assert.deepEqual(step, { kind: 'disk-failed', via: 'returned', accepted: true, ip: IP });
    assert.match(describeStep(step!).summary, /^disk boot failed \(UEFI: network boot again within 90 s/);
    const events = t.repos.events.list({ nodeMac: MAC, limit: 10 });
    assert.ok(events.some((e) => e.kind === 'node.state' && /deployed → failed/.test(e.message)));

    // The answer is consumed: the node's next boot (the node environment) is no second failure.
    assert.equal(reports.returned(MAC, IP), false);
    assert.equal(steps.length, 0);
  } finally {
    t.cleanup();
  }
});

test('no failure when the OS spoke in between, when the answer could report itself, or after the window', () => {
  const { t, reports, clock } = deployedNodeReporter(MAC, T0);
  try {
    // The disk booted: its OS reported (first boot, cloud-init, metrics), then the node was rebooted.
    reports.localServed(MAC, true);
    clock.now += 20_000;
    reports.osSeen(MAC);
    clock.now += 20_000;
    assert.equal(reports.returned(MAC, IP), false);

    // TFTP network GRUB's local answer reports through local-failed.cfg: a return proves nothing.
    reports.localServed(MAC, false);
    clock.now += 5_000;
    assert.equal(reports.returned(MAC, IP), false);

    // A reboot after the window (a server's POST alone takes minutes).
    reports.localServed(MAC, true);
    clock.now += RETURN_WINDOW_MS + 1;
    assert.equal(reports.returned(MAC, IP), false);
    assert.equal(t.repos.nodes.get(MAC)?.state, 'deployed');
  } finally {
    t.cleanup();
  }
});

test("a firmware's next network boot option is no return; coming round to an answered option is", () => {
  // The firmware's boot option as the DHCP step names it (activity.ts): class and family; iPXE's own
  // DHCP (user class iPXE) names none, so an iPXE option ROM's asks are judged as before.
  const step = (message: string, vendorClass: string, userClass: string | null = null) => ({
    kind: 'dhcp' as const,
    message,
    reply: null,
    pxe: true,
    arch: 7,
    vendorClass,
    userClass,
    bootFile: null,
    ip: null,
    clientIp: null,
    note: '',
    problem: null,
  });
  assert.equal(firmwareBootPath(step('SOLICIT', 'PXEClient:Arch:00007:UNDI:003016')), 'PXEClient over IPv6');
  assert.equal(
    firmwareBootPath(step('SOLICIT', 'HTTPClient:Arch:00016:UNDI:003016')),
    'HTTPClient over IPv6',
  );
  assert.equal(
    firmwareBootPath(step('DHCPDISCOVER', 'PXEClient:Arch:00007:UNDI:003016')),
    'PXEClient over IPv4',
  );
  assert.equal(firmwareBootPath(step('DHCPDISCOVER', 'PXEClient:Arch:00007:UNDI:003010', 'iPXE')), undefined);
  assert.equal(firmwareBootPath(step('DHCPDISCOVER', 'MSFT 5.0')), undefined);

  const PXE6 = 'PXEClient over IPv6';
  const HTTP6 = 'HTTPClient over IPv6';
  const { t, reports, clock } = deployedNodeReporter(MAC, T0);
  try {
    // OVMF with PXEv6 then HTTPv6 (pxe-ipv6 e2e's boot order, the iPXE chain): each option asks, is told
    // to boot the disk (snponly.efi `exit 1`), and the firmware goes on. Neither ask is a failure.
    assert.equal(reports.returned(MAC, IP, PXE6), false);
    reports.localServed(MAC, true, PXE6);
    clock.now += 4_000;
    assert.equal(reports.returned(MAC, IP, HTTP6), false, 'the next boot option');
    reports.localServed(MAC, true, HTTP6);
    assert.equal(t.repos.nodes.get(MAC)?.state, 'deployed');
    // The disk did not boot and the firmware came round to PXEv6 again: that is the disk's failure.
    clock.now += 6_000;
    assert.equal(reports.returned(MAC, IP, PXE6), true);
    assert.equal(t.repos.nodes.get(MAC)?.state, 'failed');
  } finally {
    t.cleanup();
  }
});
