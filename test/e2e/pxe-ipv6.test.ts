/**
 * End to end, IPv6-only (issue 18): an OVMF VM (its own network stack, no iPXE option ROM, IPv6 on) on a
 * provisioning link with no IPv4 at all, booting from `corral master` itself (http.bind ["::"], dhcp6 on,
 * DHCPv4 off). The chain: Corral's radvd sends the RA the firmware waits for; Corral's DHCPv6 answers
 * "PXE over IPv6" with an IA_NA address and option 59 `tftp://[fd00:5a::1]/ipxe.efi`; the master's TFTP
 * server (on ::) sends ipxe.efi; iPXE does DHCPv6 itself and gets the boot script URL
 * `http://[fd00:5a::1]:8086/boot/ipxe…`; the script's kernel, initrd and corral.server URLs are IPv6
 * (the family the request came in on) and carry `corral.ip=` (the address iPXE leased); the node
 * environment configures it and enlists over IPv6 with its inventory. One VM; the figure printed is
 * power-on → enlisted (TCG).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { TestNet, waitFor, type Host } from '../helpers/netns.js';
import { startMasterProcess, type MasterProcess } from '../helpers/master-process.js';
import { requirePeers } from '../helpers/peers.js';
import { findOvmf } from '../../master/lab/qemu.js';

const SERVER = 'fd00:5a::1';
const PORT = 8086;
const MAC = '52:54:00:5a:00:01';
const PASSWORD = 'pxe6-e2e-admin-password';
const API = `http://[${SERVER}]:${PORT}/api/v1/nodes`;

let net: TestNet | undefined;
let master: MasterProcess | undefined;
let dir = '';
let serial = '';
let poweredOnAt = 0;
let srv: Host;

before(async () => {
  requirePeers('qemu-system-x86_64', 'radvd', 'curl');
  dir = mkdtempSync(join(tmpdir(), 'corral-e2e-pxe6-'));
  net = new TestNet('p6');
  srv = net.addHost('srv', null);
  net.nsExec(srv.ns, ['ip', '-6', 'addr', 'add', `${SERVER}/64`, 'dev', srv.ifname, 'nodad']);
  // config.address (IPv4) is still a required setting; it lives on the master's loopback, not on the link.
  net.nsExec(srv.ns, ['ip', 'addr', 'add', '10.90.90.1/32', 'dev', 'lo']);
  await waitFor(
    'server link-local',
    () =>
      net!.nsExec(srv.ns, ['ip', '-6', 'addr', 'show', 'dev', srv.ifname, 'tentative']).trim() === ''
        ? true
        : undefined,
    10_000,
  );
  const configPath = join(dir, 'master.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      address: '10.90.90.1',
      interface: srv.ifname,
      http: { port: PORT, bind: ['::'] },
      console: { https: false, allowInsecureBasicAuth: true },
      dhcp: { mode: 'off' },
      // Pinned: this test is about the iPXE chain over IPv6 (the Secure Boot chain is tested elsewhere).
      bootFiles: { x64Uefi: 'ipxe.efi' },
      dhcp6: {
        enabled: true,
        address: SERVER,
        prefix: 'fd00:5a::/64',
        range: 'fd00:5a::100-fd00:5a::1ff',
      },
      nodeImage: { cacheDir: '/var/cache/corral' },
      nodes: { discoverAction: 'wait', pollSeconds: 5 },
    }),
  );
  master = await startMasterProcess({
    args: ['--config', configPath],
    netns: srv.ns,
    env: { CORRAL_ADMIN_PASSWORD: PASSWORD, CORRAL_LOG_LEVEL: 'info' },
    logFile: join(dir, 'master.log'),
    timeoutMs: 60_000,
  });
  // Power on once the node environment is there (built, or taken from the cache), so the figure below
  // is the boot chain's, not the build's.
  await waitFor(
    'node environment ready',
    () => (master!.logs().includes('node environment ready') ? true : undefined),
    420_000,
    1000,
  );
  const ovmf = findOvmf();
  assert.ok(ovmf, 'OVMF is not installed (Debian package ovmf)');
  const tap = net.addTap();
  const vm: ChildProcess = net.spawnIn(net.bridgeNs, [
    'qemu-system-x86_64',
    '-accel',
    'tcg',
    '-m',
    '512',
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    'stdio',
    '-no-reboot',
    '-bios',
    ovmf,
    // An IPv6-only machine: no "PXE over IPv4" boot option (edk2's fw_cfg network knobs), so the firmware
    // does not first spend its DHCPv4 timeout on a link with no IPv4.
    '-fw_cfg',
    'name=opt/org.tianocore/IPv4PXESupport,string=n',
    '-netdev',
    `tap,id=n0,ifname=${tap},script=no,downscript=no`,
    // romfile= (none): OVMF's own PXE stack, which does PXE over IPv6 (QEMU's iPXE ROM would take over).
    '-device',
    `virtio-net-pci,netdev=n0,mac=${MAC},bootindex=1,romfile=`,
  ]);
  vm.stdout?.on('data', (b: Buffer) => (serial = (serial + b.toString('latin1')).slice(-400_000)));
  poweredOnAt = Date.now();
});

after(async () => {
  await master?.stop('SIGTERM', 8000).catch(() => master?.stop('SIGKILL', 3000));
  await net?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// OVMF and iPXE print escape sequences between the words on their serial console.
const ESC = String.fromCharCode(27);
const plain = (): string => serial.replace(new RegExp(`${ESC}\\[[0-9;=]*[A-Za-z]`, 'g'), '');
const logs = (): string =>
  `--- serial (last 4000):\n${plain().slice(-4000)}\n--- master (last 3000):\n${master?.logs().slice(-3000) ?? ''}`;

interface ApiNode {
  mac: string;
  state: string;
  inventory: { memoryBytes?: number; nics?: { mac: string }[] };
}

/** GET /api/v1/nodes over IPv6 with curl, from inside the master's namespace (a real client). */
function nodesOverIpv6(): ApiNode[] {
  const out = net!.nsExec(srv.ns, ['curl', '-sgf', '--max-time', '10', '-u', `admin:${PASSWORD}`, API]);
  return (JSON.parse(out) as { nodes: ApiNode[] }).nodes;
}

test('IPv6-only: OVMF PXE over IPv6 from corral master, iPXE over DHCPv6 + HTTP/IPv6, the node enlists over IPv6', async () => {
  let node: ApiNode | undefined;
  try {
    await waitFor(
      'iPXE started from PXE over IPv6',
      () => (/iPXE/.test(plain().split('NBP filename')[1] ?? '') ? true : undefined),
      420_000,
      2000,
    );
    const ipxeAt = Date.now();
    console.log(
      `# e2e: PXE over IPv6, power-on → iPXE running ${((ipxeAt - poweredOnAt) / 1000).toFixed(1)} s (TCG)`,
    );
    node = await waitFor(
      'the VM enlisted (GET /api/v1/nodes over IPv6)',
      () => nodesOverIpv6().find((n) => n.mac === MAC),
      480_000,
      3000,
    );
  } catch (err) {
    assert.fail(`${(err as Error).message}\n${logs()}`);
  }
  const enlistedAt = Date.now();
  const text = plain();
  // OVMF: firmware PXE over IPv6 with Corral's DHCPv6 lease and option 59 (printed uncompressed).
  assert.match(text, /Start PXE over IPv6/);
  assert.doesNotMatch(text, /Start PXE over IPv4/, 'the IPv4PXESupport=n knob took effect');
  assert.match(text, /Station IP address is FD00:5A:0:0:0:0:0:1[0-9A-F]{2}\b/i);
  assert.match(text, /NBP filename is ipxe\.efi/);
  // The node environment ran with the address iPXE leased and the master's IPv6 URL.
  assert.match(text, /corral: network up \S+ fd00:5a::1[0-9a-f]{2}\/64/);
  const log = master!.logs();
  // The master's side of the chain: the boot script asked for over IPv6 from the leased address.
  const script = /^\{[^\n]*"msg":"boot script"[^\n]*$/m.exec(log)?.[0];
  assert.ok(script, 'the master served a boot script');
  const served = JSON.parse(script) as { time: number; ip: string; template: string };
  assert.match(served.ip, /^fd00:5a::1[0-9a-f]{2}$/);
  assert.equal(served.template, 'ipxe/discover.hbs');
  assert.equal(node!.state, 'discovered');
  assert.ok((node!.inventory.memoryBytes ?? 0) > 400 * 2 ** 20, 'inventory reports the VM memory');
  assert.ok(
    node!.inventory.nics?.some((n) => n.mac === MAC),
    'inventory lists the boot NIC',
  );
  console.log(
    `# e2e: IPv6-only, power-on → enlisted ${((enlistedAt - poweredOnAt) / 1000).toFixed(1)} s (TCG; ` +
      `boot script over IPv6 at ${((served.time - poweredOnAt) / 1000).toFixed(1)} s)`,
  );
});
