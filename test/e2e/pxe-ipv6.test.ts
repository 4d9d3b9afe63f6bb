/**
 * End to end, IPv6-only with Secure Boot enforced (issue 18): an OVMF VM with Microsoft's keys enrolled
 * (OVMF_CODE_4M.ms.fd, its own network stack, no iPXE option ROM) on a provisioning link with no IPv4 at
 * all, booting from `corral master` itself (http.bind ["::"], dhcp6 on, DHCPv4 off, boot.uefiChain at its
 * default, the signed chain). The chain: Corral's radvd sends the RA the firmware waits for; Corral's
 * DHCPv6 answers "PXE over IPv6" with an IA_NA address and option 59 `tftp://[fd00:5a::1]/shimx64.efi`;
 * the master's TFTP server (on ::) sends Microsoft-signed shim, which loads Debian's signed network GRUB
 * over TFTP/IPv6; GRUB takes its address from the firmware's DHCPv6 reply and reads the node's config
 * from the master over TFTP/IPv6 (grub/node/MAC/0.cfg, asked from the leased address): Debian's signed
 * kernel with URLs on the master's IPv6 address and `corral.ip=` (the address the firmware leased); the
 * node environment configures it and enlists over IPv6 with its inventory, Secure Boot on. Then the same VM is deployed with
 * the Debian image (deploy over IPv6): its agent is told to reboot, the installer fetches its plan and
 * the image from the master's IPv6 address and reports there, the installed system gets its address from
 * Corral's DHCPv6 (networkd, DUID-LL), reports its first boot over IPv6 (→ deployed) and answers SSH on
 * its IPv6 address with Secure Boot on. The VM boots network first: after the install the master answers
 * "boot your disk" (network GRUB chainloads the disk's shim) and the node boots it (never strand a node).
 * The iPXE path over IPv6 (snponly.efi, boot.uefiChain ipxe) is lab-discovery's IPv6-only VM. One VM; the figures printed are power-on → enlisted and deploy → deployed (TCG).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { TestNet, waitFor, type Host } from '../helpers/netns.js';
import { startMasterProcess, type MasterProcess } from '../helpers/master-process.js';
import { requirePeers } from '../helpers/peers.js';
import { OVMF_SB_CODE, OVMF_SB_VARS, secureBootArgs } from '../../master/lab/qemu.js';
import { debianImage } from '../helpers/debian-image.js';
import { sshArgs } from '../../master/deploy/ssh.js';

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
  requirePeers('qemu-system-x86_64', 'radvd', 'curl', OVMF_SB_CODE, OVMF_SB_VARS);
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
  const vars = join(dir, 'vars.fd');
  copyFileSync(OVMF_SB_VARS, vars);
  const disk = join(dir, 'disk.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '4G']);
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
    // No -no-reboot: the deploy below reboots the VM into the installer and then onto its disk.
    // Secure Boot enforced: SMM, and OVMF with Microsoft's keys enrolled (a writable copy of its variables).
    ...secureBootArgs(vars),
    // An IPv6-only machine: no "PXE over IPv4" and no IPv4 stack (so no "HTTP Boot over IPv4" either; edk2's
    // fw_cfg network knobs), so the firmware does not spend its DHCPv4 timeouts on a link with no IPv4
    // (HTTPv4 took 296 s under TCG before giving up, e2e run 1 of 2026-12-07 for this change).
    '-fw_cfg',
    'name=opt/org.tianocore/IPv4PXESupport,string=n',
    '-fw_cfg',
    'name=opt/org.tianocore/IPv4Support,string=n',
    '-netdev',
    `tap,id=n0,ifname=${tap},script=no,downscript=no`,
    // romfile= (none): OVMF's own PXE stack, which does PXE over IPv6 (QEMU's iPXE ROM would take over).
    // Network first, as a datacentre keeps it (MAAS-style): the deployed node asks the master, is told to
    // boot its disk, and network GRUB chainloads the disk's shim.
    '-device',
    `virtio-net-pci,netdev=n0,mac=${MAC},bootindex=1,romfile=`,
    '-drive',
    `file=${disk},if=none,id=d0,format=qcow2`,
    '-device',
    'virtio-blk-pci,drive=d0,serial=pxe6-disk,bootindex=2',
  ]);
  vm.stdout?.on('data', (b: Buffer) => {
    serial = (serial + b.toString('latin1')).slice(-400_000);
    if (process.env['PXE6_SERIAL']) appendFileSync(process.env['PXE6_SERIAL'], b);
  });
  poweredOnAt = Date.now();
});

after(async () => {
  await master?.stop('SIGTERM', 8000).catch(() => master?.stop('SIGKILL', 3000));
  await net?.destroy();
  if (process.env['PXE6_SERIAL'] && dir)
    copyFileSync(join(dir, 'master.log'), `${process.env['PXE6_SERIAL']}.master.log`);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// OVMF and iPXE print escape sequences between the words on their serial console.
const ESC = String.fromCharCode(27);
const plain = (): string => serial.replace(new RegExp(`${ESC}\\[[0-9;=]*[A-Za-z]`, 'g'), '');
const logs = (): string =>
  `--- serial (last 4000):\n${plain().slice(-4000)}\n--- master (last 3000):\n${master?.logs().slice(-3000) ?? ''}`;

interface ApiNode {
  mac: string;
  name: string;
  state: string;
  stateReason?: string | null;
  inventory: { memoryBytes?: number; nics?: { mac: string }[]; secureBoot?: boolean | null };
}

/** GET /api/v1/nodes over IPv6 with curl, from inside the master's namespace (a real client). */
function nodesOverIpv6(): ApiNode[] {
  const out = net!.nsExec(srv.ns, ['curl', '-sgf', '--max-time', '10', '-u', `admin:${PASSWORD}`, API]);
  return (JSON.parse(out) as { nodes: ApiNode[] }).nodes;
}

test('IPv6-only, Secure Boot: OVMF PXE over IPv6 from corral master, shim and GRUB over TFTP/IPv6, the node enlists over IPv6', async () => {
  let node: ApiNode | undefined;
  try {
    await waitFor(
      'network GRUB asking the master (templates/grub/grub.cfg.hbs) after PXE over IPv6',
      () => (/Corral: asking the master/.test(plain().split('NBP filename')[1] ?? '') ? true : undefined),
      420_000,
      2000,
    );
    const grubAt = Date.now();
    console.log(
      `# e2e: PXE over IPv6, Secure Boot, power-on → network GRUB running ${((grubAt - poweredOnAt) / 1000).toFixed(1)} s (TCG)`,
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
  // The signed chain by default over DHCPv6 too: shim first (it loads grubx64.efi beside it).
  assert.match(text, /NBP filename is shimx64\.efi/);
  // The node environment ran with the address iPXE leased and the master's IPv6 URL.
  assert.match(text, /corral: network up \S+ fd00:5a::1[0-9a-f]{2}\/64/);
  const log = master!.logs();
  // The master's side of the chain: the boot script asked for over IPv6 from the leased address.
  const script = /^\{[^\n]*"msg":"boot script"[^\n]*$/m.exec(log)?.[0];
  assert.ok(script, 'the master served a boot script');
  const served = JSON.parse(script) as { time: number; ip: string; template: string };
  assert.match(served.ip, /^fd00:5a::1[0-9a-f]{2}$/);
  assert.equal(served.template, 'grub/discover.hbs');
  // The node environment's kernel ran with Secure Boot enforced, and the agent reports it.
  assert.match(text, /Secure boot enabled|UEFI Secure Boot is enabled|locked down from EFI Secure Boot/);
  assert.equal(node!.state, 'discovered');
  assert.equal(node!.inventory.secureBoot, true, 'the agent reported Secure Boot enabled');
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

/** An API call over IPv6 with curl from the master's namespace: the status and the JSON body. */
function apiOverIpv6<T>(method: string, path: string, body?: unknown): { status: number; json: T } {
  const args = ['curl', '-sg', '--max-time', '20', '-u', `admin:${PASSWORD}`, '-X', method];
  if (body !== undefined) args.push('-H', 'Content-Type: application/json', '-d', JSON.stringify(body));
  const out = net!.nsExec(srv.ns, [
    ...args,
    '-w',
    '\n%{http_code}',
    `http://[${SERVER}]:${PORT}/api/v1${path}`,
  ]);
  const cut = out.lastIndexOf('\n');
  return { status: Number(out.slice(cut + 1)), json: JSON.parse(out.slice(0, cut) || 'null') as T };
}

/** A command on the deployed node over SSH (IPv6) with the master's key, from the master's namespace. */
function sshOverIpv6(address: string, command: string): string {
  return net!
    .nsExec(srv.ns, ['ssh', ...sshArgs(join(dir, 'data', 'ssh', 'id_ed25519'), address, command)])
    .trim();
}

test('IPv6-only: the enlisted VM is deployed over IPv6 (plan, image, reports, DHCPv6 on the installed system, SSH)', async () => {
  requirePeers('ssh');
  const enlisted = nodesOverIpv6().find((n) => n.mac === MAC);
  assert.ok(enlisted, 'the VM enlisted in the test before');
  await debianImage(join(dir, 'data'));
  const started = Date.now();
  const r = apiOverIpv6<unknown>('POST', `/nodes/${enlisted.name}/deploy`, { image: 'debian-12' });
  assert.equal(r.status, 202, JSON.stringify(r.json));
  let deployed: ApiNode | undefined;
  try {
    deployed = await waitFor(
      'the VM deployed over IPv6',
      () => {
        const n = nodesOverIpv6().find((x) => x.mac === MAC);
        if (n?.state === 'failed') throw new Error(`deploy failed: ${n.stateReason ?? ''}`);
        return n?.state === 'deployed' ? n : undefined;
      },
      1_200_000,
      5000,
    );
  } catch (err) {
    assert.fail(`${(err as Error).message}\n${logs()}`);
  }
  const deploySeconds = (Date.now() - started) / 1000;
  const log = master!.logs();
  const line = (msg: string): { ip?: string; time: number } | undefined => {
    const m = new RegExp(`^\\{[^\\n]*"msg":"${msg}"[^\\n]*$`, 'm').exec(log)?.[0];
    return m ? (JSON.parse(m) as { ip?: string; time: number }) : undefined;
  };
  // The installer streamed the image from the master's IPv6 address (IMAGE_URL rebased to the family).
  const image = line('serving image');
  assert.match(image?.ip ?? '', /^fd00:5a::1[0-9a-f]{2}$/, 'the image was fetched over IPv6');
  // The installed system reported its first boot over IPv6 from its DHCPv6 lease (node.conf rebased).
  const booted = line('deployed node booted from disk');
  assert.ok(booted, 'the first-boot report reached the master');
  const address = booted.ip ?? '';
  assert.match(address, /^fd00:5a::1[0-9a-f]{2}$/);
  const deployments = apiOverIpv6<{ deployments: { status: string }[] }>(
    'GET',
    `/nodes/${enlisted.name}/deployments`,
  );
  assert.equal(deployments.json.deployments[0]?.status, 'booted');
  // The installer's reports (progress, result) are in the node's events and its boot timeline.
  const events = apiOverIpv6<{ events: { kind: string }[] }>(
    'GET',
    `/events?node=${encodeURIComponent(MAC)}&limit=200`,
  ).json.events.map((e) => e.kind);
  for (const kind of ['deploy.started', 'deploy.progress', 'deploy.installed'])
    assert.ok(events.includes(kind), `${kind} in the node's events (${events.join(', ')})`);
  const timeline = apiOverIpv6<{
    entries: { kind: string; at: string; detail?: { kind?: string; event?: string; template?: string } }[];
  }>('GET', `/boot-activity?mac=${encodeURIComponent(MAC)}`).json.entries;
  console.log(
    `# e2e: IPv6-only, deploy → deployed ${deploySeconds.toFixed(1)} s (TCG; image served at ` +
      `${((image!.time - started) / 1000).toFixed(1)} s, first boot reported at ${((booted.time - started) / 1000).toFixed(1)} s); ` +
      `power-on → deployed ${((Date.now() - poweredOnAt) / 1000).toFixed(1)} s`,
  );
  // On the node: SSH over IPv6 answers its hostname; its one global address is the DHCPv6 lease, it has
  // no IPv4 address, and its first-boot reporter names the master by its IPv6 address.
  const hostname = await waitFor(
    'ssh to the deployed node over IPv6',
    () => {
      try {
        return sshOverIpv6(address, 'hostname');
      } catch {
        return undefined;
      }
    },
    180_000,
    5000,
  );
  const facts = sshOverIpv6(
    address,
    'ip -6 -o addr show scope global; echo ---; ip -4 -o addr show scope global; echo ---; grep ^CORRAL_SERVER= /etc/corral/node.conf; cloud-init status || true; mokutil --sb-state 2>&1 || true',
  );
  console.log(`# e2e: IPv6-only deploy, on the node: ${facts.replace(/\n/g, ' | ')}`);
  const served = log
    .split('\n')
    .filter((l) => l.includes('"msg":"cloud-init data served"'))
    .map((l) => JSON.parse(l) as { ip?: string; by?: string; file?: string });
  console.log(`# e2e: IPv6-only deploy, cloud-init served: ${JSON.stringify(served)}`);
  assert.equal(hostname, deployed!.name);
  const [v6, v4, rest] = facts.split('---\n');
  assert.match(v6 ?? '', new RegExp(`inet6 ${address}/\\d+ `), facts);
  assert.equal((v4 ?? '').trim(), '', `no IPv4 address on the node: ${facts}`);
  assert.match(rest ?? '', new RegExp(`CORRAL_SERVER=http://\\[${SERVER}\\]:${PORT}`), facts);
  assert.match(rest ?? '', /SecureBoot enabled/, `Secure Boot on in the deployed system: ${facts}`);
  for (const event of ['progress', 'result', 'booted'])
    assert.ok(
      timeline.some((s) => s.kind === 'deploy' && s.detail?.event === event),
      `deploy ${event} in the boot timeline`,
    );
  // Network first: the installed system's first boot went through the master's local-disk answer (network
  // GRUB's, in the boot timeline), which chainloaded the disk's shim.
  const locals = timeline
    .filter((s) => s.kind === 'script' && s.detail?.template === 'grub/local.hbs')
    .map((s) => Date.parse(s.at));
  const bootedAt = timeline.find((s) => s.kind === 'deploy' && s.detail?.event === 'booted')?.at;
  assert.ok(locals.length > 0, 'the local-disk answer (grub/local.hbs) is in the boot timeline');
  assert.ok(bootedAt && Date.parse(bootedAt) > Math.min(...locals), 'the disk booted after the local answer');
  console.log(
    `# e2e: IPv6-only, network first: ${locals.length} local-disk answer(s); first one → first boot reported ` +
      `${((Date.parse(bootedAt) - Math.min(...locals)) / 1000).toFixed(1)} s (TCG)`,
  );
  // cloud-init's datasource answered the installed system by its DHCPv6 address (seedfrom over IPv6).
  assert.ok(
    served.some((s) => s.ip === address && s.by === 'address'),
    `cloud-init data served to ${address} by address: ${JSON.stringify(served)}`,
  );
});
