/**
 * End to end: one BIOS (SeaBIOS) and one UEFI (OVMF) QEMU VM PXE-boot from Corral's own DHCP, TFTP and
 * HTTP inside a lab of namespaces, run the node agent and enlist. The lab link is dual-stack (issue 18):
 * the master also serves DHCPv6 and router advertisements there, and a third VM, an IPv6-only UEFI
 * machine (OVMF with its IPv4 stack off), boots PXE over IPv6 from the same master on the same link
 * while the other two boot over IPv4. The UEFI VM has no iPXE option ROM, so
 * OVMF's own PXE asks for a boot file, and the master runs with boot.uefiChain `ipxe` (issue 18): the
 * setting's path, where UEFI clients get ipxe.efi instead of the default Secure Boot chain (that one is
 * lab-deploy.test.ts's Secure Boot VM). Checked through the API: MAC, memory,
 * disk size and serial, firmware, IP from Corral's pool; and the boot chain in the master's log.
 * One lab is shared by all assertions (each TCG boot costs ~20-40 s).
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
import { Browser } from '../helpers/browser.js';
import { requirePeers } from '../helpers/peers.js';

const MEMORY_MB = 512;
const DISK_GB = 2;
const BOOT_TIMEOUT_MS = 240_000;

interface ApiNode {
  mac: string;
  name: string;
  state: string;
  ip: string | null;
  firmware: string | null;
  inventory: {
    memoryBytes?: number;
    firmware?: string;
    secureBoot?: boolean | null;
    cpu?: { count?: number; model?: string | null };
    disks?: { name: string; sizeBytes: number; serial?: string | null }[];
    nics?: { mac: string; link?: string }[];
  };
}

let lab: Lab | undefined;
let dir = '';
let poweredOnAt = 0;

before(async () => {
  // The dual-stack link's router advertisements (the IPv6-only firmware waits for one).
  requirePeers('radvd');
  dir = mkdtempSync(join(tmpdir(), 'corral-e2e-'));
  lab = await startLab({
    // A dot component, as `npm start`'s default `.lab` has: the file sender once hid such paths (issue 22).
    dir: join(dir, '.lab'),
    vms: [{ firmware: 'bios' }, { firmware: 'uefi-http' }, { firmware: 'uefi-http', ipStack: 'ipv6' }],
    ipv6Prefix: 'fd00:98::',
    logger: silentLogger(),
    memoryMb: MEMORY_MB,
    diskGb: DISK_GB,
    subnetPrefix: '10.98.0',
    masterConfig: {
      nodes: { namePattern: 'e2e-{n}', discoverAction: 'wait', pollSeconds: 5 },
      boot: { uefiChain: 'ipxe' },
    },
  });
  poweredOnAt = Date.now();
});

after(async () => {
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

async function nodes(): Promise<ApiNode[]> {
  const r = await fetch(`${lab!.hostUrl}/api/v1/nodes`, { headers: basic('admin', lab!.adminPassword) });
  assert.equal(r.status, 200);
  return ((await r.json()) as { nodes: ApiNode[] }).nodes;
}

function vmLogs(): string {
  return lab!.vms
    .map(
      (vm) =>
        `--- ${vm.spec.name} (${vm.spec.firmware}) serial, last 3000 chars:\n${vm.console().slice(-3000)}`,
    )
    .join('\n');
}

test('a BIOS, a UEFI and an IPv6-only UEFI VM PXE-boot from Corral on one dual-stack link and enlist', async () => {
  const l = lab!;
  let enlisted: ApiNode[] = [];
  const firstSeen = new Map<string, number>();
  try {
    enlisted = await waitFor(
      'the three VMs to enlist',
      async () => {
        const list = await nodes().catch(() => []);
        for (const n of list) if (!firstSeen.has(n.mac)) firstSeen.set(n.mac, Date.now() - poweredOnAt);
        return list.length === 3 ? list : undefined;
      },
      BOOT_TIMEOUT_MS,
      2000,
    );
  } catch (err) {
    assert.fail(
      `${(err as Error).message}\n${vmLogs()}\n--- master log tail:\n${l.master.logs().slice(-3000)}`,
    );
  }
  for (const vm of l.vms) {
    const node = enlisted.find((n) => n.mac === vm.spec.mac);
    assert.ok(node, `VM ${vm.spec.name} (${vm.spec.mac}) enlisted\n${vmLogs()}`);
    assert.equal(node.state, 'discovered');
    assert.match(node.name, /^e2e-\d+$/);
    const uefi = vm.spec.firmware !== 'bios';
    assert.equal(node.firmware, uefi ? 'uefi' : 'bios', `${vm.spec.name} firmware`);
    // Secure Boot is off in plain OVMF: the agent says so (null on BIOS, where there is none).
    assert.equal(node.inventory.secureBoot, uefi ? false : null, `${vm.spec.name} secureBoot`);
    // The kernel reserves some memory; what it reports is within 15 % below what QEMU gave.
    const mem = node.inventory.memoryBytes ?? 0;
    assert.ok(mem <= MEMORY_MB * 2 ** 20 && mem >= MEMORY_MB * 2 ** 20 * 0.85, `memory ${mem}`);
    const disk = node.inventory.disks?.find((d) => d.serial === vm.spec.diskSerial);
    assert.ok(disk, `disk with serial ${vm.spec.diskSerial}: ${JSON.stringify(node.inventory.disks)}`);
    assert.equal(disk.sizeBytes, DISK_GB * 2 ** 30);
    const nic = node.inventory.nics?.find((n) => n.mac === vm.spec.mac);
    assert.equal(nic?.link, 'up');
    assert.ok((node.inventory.cpu?.count ?? 0) >= 1);
    const log = l.master.logs();
    if (vm.spec.ipStack === 'ipv6') {
      // The firmware (no IPv4 stack) took Corral's DHCPv6 answer: an address from the IPv6 pool and
      // snponly.efi over TFTP on IPv6 (dhcp6/uefi-loader.ts). iPXE then runs its own network stack, which
      // on a dual-stack link also takes a DHCPv4 lease: the script, and so the node environment, come over
      // whichever family iPXE chained on (iPXE's DHCPv4 in this lab's runs). Either is Corral's pool.
      const text = vm.console();
      assert.match(text, /Station IP address is FD00:98:0:0:0:0:0:1[0-9A-F]{2}\b/i);
      assert.match(text, /NBP filename is snponly\.efi/);
      assert.match(node.ip ?? '', /^(10\.98\.0\.1\d\d|fd00:98::1[0-9a-f]{2})$/);
      const script = log
        .split('\n')
        .find((line) => line.includes('"msg":"boot script"') && line.includes(`"ip":"${node.ip}"`));
      assert.ok(script, `the master served a boot script to ${node.ip ?? ''}`);
      assert.match(script, /"template":"ipxe\/discover.hbs"/);
      console.log(
        `# e2e: IPv6-only firmware on the dual-stack link: PXE over IPv6, node environment on ${node.ip}`,
      );
      continue;
    }
    // The address came from Corral's own pool.
    assert.match(node.ip ?? '', /^10\.98\.0\.1\d\d$/);
    // Boot chain, from the master's log: DHCP lease → iPXE script → agent enlistment.
    assert.match(log, new RegExp(`"mac":"${vm.spec.mac}"[^\\n]*DHCPACK`));
    assert.match(log, new RegExp(`"mac":"${vm.spec.mac}"[^\\n]*"template":"ipxe/discover.hbs"`));
    if (uefi) {
      // The UEFI VM's firmware was offered the iPXE EFI loader (boot.uefiChain ipxe, not shim), and then
      // iPXE its script URL; never the BIOS loader: each offer's log line names what it gave (dhcp/policy.ts).
      const offers = log
        .split('\n')
        .filter(
          (line) => line.includes(`"mac":"${vm.spec.mac}"`) && /DHCP(OFFER|ACK)[^"]*, boot /.test(line),
        );
      assert.ok(offers.length > 0, `no boot offer logged for the UEFI VM ${vm.spec.mac}`);
      for (const line of offers) {
        assert.match(line, /, boot (ipxe\.efi \(arch \d+\)|script http:\/\/)/, line);
        assert.doesNotMatch(line, /undionly|shimx64/, line);
      }
      assert.ok(
        offers.some((line) => /, boot ipxe\.efi \(arch (7|9)\)/.test(line)),
        'the firmware itself was offered ipxe.efi',
      );
    }
  }
  // Power-on → enlisted, as seen by polling the API every 2 s (so up to 2 s late).
  console.log(
    `# e2e: enlisted ${enlisted
      .map((n) => `${n.name}(${n.firmware}) in ${((firstSeen.get(n.mac) ?? 0) / 1000).toFixed(1)} s`)
      .join(', ')} via ${l.hostUrl}`,
  );
});

test('re-enlisting the same MAC updates and never duplicates', async () => {
  // The agents keep polling (discoverAction wait, 5 s): each poll re-enlists the same MAC.
  const before = await nodes();
  await new Promise((r) => setTimeout(r, 12_000));
  const afterList = await nodes();
  assert.equal(afterList.length, 3);
  assert.deepEqual(afterList.map((n) => n.name).sort(), before.map((n) => n.name).sort());
  const r = await fetch(`${lab!.hostUrl}/api/v1/events?kind=node.enlisted`, {
    headers: basic('admin', lab!.adminPassword),
  });
  const events = ((await r.json()) as { events: unknown[] }).events;
  assert.ok(events.length >= 3, `re-enlist events: ${events.length}`);
});

test('kernel and initrd are served with Content-Length and Range', async () => {
  const url = `${lab!.hostUrl}/boot/node/initrd.img`;
  const head = await fetch(url, { method: 'HEAD' });
  assert.equal(head.status, 200);
  const size = Number(head.headers.get('content-length'));
  assert.ok(size > 100_000);
  assert.equal(head.headers.get('accept-ranges'), 'bytes');
  const part = await fetch(url, { headers: { range: 'bytes=10-19' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), `bytes 10-19/${size}`);
  assert.equal((await part.arrayBuffer()).byteLength, 10);
  const bad = await fetch(url, { headers: { range: `bytes=${size + 10}-${size + 20}` } });
  assert.equal(bad.status, 416);
});

test('the console lists both nodes and shows a node page with its inventory and timeline', async () => {
  const b = new Browser(lab!.hostUrl);
  const login = await b.login('admin', lab!.adminPassword);
  assert.equal(login.status, 303, 'login redirects (See Other)');
  const list = await (await b.get('/nodes')).text();
  const all = await nodes();
  for (const n of all) {
    assert.ok(list.includes(n.name), `node list shows ${n.name}`);
    assert.ok(list.includes(n.mac), `node list shows ${n.mac}`);
  }
  const first = all[0]!;
  const detail = await (await b.get(`/nodes/${encodeURIComponent(first.mac)}`)).text();
  const serial = first.inventory.disks?.find((d) => d.serial)?.serial ?? '';
  assert.ok(serial && detail.includes(serial), 'detail page shows the disk serial');
  assert.match(detail, /discovered/);
  assert.match(detail, /re-enlisted|discovered e2e-/);
});
