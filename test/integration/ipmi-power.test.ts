/**
 * Power control against real peers: OpenIPMI's `ipmi_sim` as the BMC (in its own namespace, bound to its
 * address there), whose chassis control program starts and stops a real QEMU VM (TCG) on the lab bridge;
 * the real `corral node power` CLI runs in the master's namespace and drives it with the real `ipmitool`.
 * "Power on really boots the VM" is shown by the VM's own DHCPDISCOVER (its iPXE ROM, from its MAC) seen
 * by a listener on the segment. Wake-on-LAN: the CLI's magic packet is caught by a UDP listener in another
 * namespace and checked byte for byte (6 × FF + 16 × MAC).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { TestNet, waitFor, type Host } from '../helpers/netns.js';
import { CLI, exitOf } from '../helpers/master-process.js';
import { openRepos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';

const SUBNET = '10.77.11';
const VM_MAC = '52:54:00:77:11:20';
const WOL_MAC = '52:54:00:77:11:30';
const BMC_USER = 'corral';
const BMC_PASSWORD = 'Bmc-s3cret-Pw';

const unmet = unmetNeeds({ root: true, commands: ['ipmi_sim', 'ipmitool', 'qemu-system-x86_64'] });

let net: TestNet | undefined;
let dir = '';
let dataDir = '';
let configFile = '';
let master: Host;
let bmc: Host;
let watch: Host;
const watchers: ChildProcess[] = [];

/** Runs the real CLI inside the master's namespace. */
async function corral(
  args: string[],
  stdin?: string,
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const child = spawn('ip', ['netns', 'exec', master.ns, 'node', CLI, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin ?? '');
  const code = await exitOf(child, 60_000);
  return { code, stdout, stderr };
}

/** ipmi_sim's chassis control program (OpenIPMI lanserv/ipmi_sim_chassiscontrol protocol): owns the VM. */
function chassisScript(bridgeNs: string, tap: string): string {
  return `#!/bin/sh
# ipmi_sim_chassiscontrol DEVICE get PARM... | DEVICE set PARM VALUE...
D=${dir}
running() { [ -f $D/qemu.pid ] && kill -0 "$(cat $D/qemu.pid)" 2>/dev/null; }
op=$2; shift 2
echo "$op $*" >> $D/chassis.log
if [ "$op" = get ]; then
  for p in "$@"; do
    case $p in
      power) if running; then echo power:1; else echo power:0; fi ;;
      boot) echo "boot:$(cat $D/bootdev 2>/dev/null || echo default)" ;;
    esac
  done
  exit 0
fi
while [ $# -ge 2 ]; do
  case $1 in
    power)
      if [ "$2" = 1 ]; then
        if ! running; then
          order=c; [ "$(cat $D/bootdev 2>/dev/null)" = pxe ] && order=n
          echo "power on boot=$order" >> $D/chassis.log
          rm -f $D/bootdev  # IPMI boot flags apply to the next boot only
          ip netns exec ${bridgeNs} qemu-system-x86_64 -name ipmi-vm -accel tcg -m 128 -display none \\
            -monitor none -serial file:$D/serial.log -boot order=$order \\
            -netdev tap,id=n0,ifname=${tap},script=no,downscript=no \\
            -device virtio-net-pci,netdev=n0,mac=${VM_MAC} -daemonize -pidfile $D/qemu.pid || exit 1
        fi
      else
        if running; then kill "$(cat $D/qemu.pid)"; for i in 1 2 3 4 5 6 7 8 9 10; do running || break; sleep 0.2; done; fi
        rm -f $D/qemu.pid
      fi ;;
    boot) echo "$2" > $D/bootdev ;;
  esac
  shift 2
done
`;
}

before(async () => {
  failIfUnmet(unmet);
  dir = mkdtempSync(join(tmpdir(), 'corral-ipmi-'));
  dataDir = join(dir, 'data');
  net = new TestNet('cpw');
  master = net.addHost('pm', `${SUBNET}.1/24`);
  bmc = net.addHost('pb', `${SUBNET}.5/24`);
  watch = net.addHost('pw', `${SUBNET}.9/24`);
  const tap = net.addTap();
  const script = join(dir, 'chassis.sh');
  writeFileSync(script, chassisScript(net.bridgeNs, tap));
  chmodSync(script, 0o755);
  writeFileSync(
    join(dir, 'lan.conf'),
    `name "corral-test-bmc"
set_working_mc 0x20
  startlan 1
    addr ${bmc.address} 623
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "${script} 0x20"
  user 1 true "" "" user 10 none md2 md5 straight
  user 2 true "${BMC_USER}" "${BMC_PASSWORD}" admin 10 none md2 md5 straight
`,
  );
  writeFileSync(
    join(dir, 'emu.cmds'),
    'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nsel_enable 0x20 1000 0x0a\nmc_enable 0x20\n',
  );
  mkdirSync(join(dir, 'bmc-state'));
  net.spawnIn(
    bmc.ns,
    [
      'ipmi_sim',
      '-c',
      join(dir, 'lan.conf'),
      '-f',
      join(dir, 'emu.cmds'),
      '-s',
      join(dir, 'bmc-state'),
      '-n',
    ],
    {
      stdio: 'ignore',
    },
  );

  // ipmi_sim lacks Get Channel Cipher Suites: name the suite, or every call waits ~5 s for that answer.
  configFile = join(dir, 'corral.json');
  writeFileSync(
    configFile,
    JSON.stringify({ dataDir, address: master.address, remote: { power: { cipherSuite: 3 } } }),
  );
  // The master's store with the two nodes (the CLI opens it directly, as `corral node deploy` does).
  const repos = openRepos({ path: join(dataDir, 'corral.db'), logger: silentLogger() });
  repos.store.write((journal) => {
    repos.nodes.insertIn(journal, { mac: VM_MAC, name: 'vm-ipmi', seqNo: 1, state: 'ready' });
    repos.nodes.insertIn(journal, { mac: WOL_MAC, name: 'wol-node', seqNo: 2, state: 'ready' });
  });
  repos.store.close();
});

after(async () => {
  for (const w of watchers) if (w.exitCode === null) w.kill('SIGKILL');
  // The VM was started by our chassis script: kill it by its pid file, then everything else in our namespaces.
  const pidFile = join(dir, 'qemu.pid');
  if (dir && existsSync(pidFile)) {
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await net?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A listener in the watch namespace that prints one line per datagram: "<port> <hex payload>". */
function listen(port: number): { lines: string[]; child: ChildProcess } {
  const src = `const d=require('dgram').createSocket({type:'udp4',reuseAddr:true});
d.on('message',(m)=>console.log(${port}+' '+m.toString('hex')));
d.bind(${port},'0.0.0.0',()=>{try{d.setBroadcast(true)}catch{};console.log('ready')});`;
  const child = net!.spawnIn(watch.ns, ['node', '-e', src], { stdio: ['ignore', 'pipe', 'pipe'] });
  watchers.push(child);
  const lines: string[] = [];
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  return { lines, child };
}

test(
  'IPMI: set driver (password sealed), status, PXE next boot, power on boots the VM, power off stops it',
  { timeout: 240_000 },
  async () => {
    const t0 = Date.now();
    const dhcp = listen(67);
    await waitFor('DHCP listener', () => dhcp.lines.includes('ready'), 10_000);

    const set = await corral(
      [
        'node',
        'power',
        'vm-ipmi',
        'set',
        '--driver',
        'ipmi',
        '--address',
        bmc.address,
        '--user',
        BMC_USER,
        '--password-stdin',
        '--config',
        configFile,
      ],
      `${BMC_PASSWORD}\n`,
    );
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /vm-ipmi: ipmi 10\.77\.11\.5:623 user corral \(password stored, encrypted\)/);
    assert.ok(!set.stdout.includes(BMC_PASSWORD));

    // At rest: only ciphertext in the database, and the key file is 0600.
    const db = readFileSync(join(dataDir, 'corral.db'));
    assert.equal(db.includes(Buffer.from(BMC_PASSWORD)), false, 'plaintext password in corral.db');
    const wal = join(dataDir, 'corral.db-wal');
    if (existsSync(wal))
      assert.equal(
        readFileSync(wal).includes(Buffer.from(BMC_PASSWORD)),
        false,
        'plaintext password in the WAL',
      );

    // ipmi_sim may take a moment to bind after its namespace came up.
    const off = await waitFor(
      'BMC answering',
      async () => {
        const r = await corral(['node', 'power', 'vm-ipmi', 'status', '--config', configFile]);
        return r.code === 0 ? r : undefined;
      },
      20_000,
      500,
    );
    assert.match(off.stdout, /vm-ipmi: power off/);

    const pxe = await corral(['node', 'power', 'vm-ipmi', 'pxe', '--config', configFile]);
    assert.equal(pxe.code, 0, pxe.stderr);
    assert.match(readFileSync(join(dir, 'chassis.log'), 'utf8'), /set boot pxe/);

    const tOn = Date.now();
    const on = await corral(['node', 'power', 'vm-ipmi', 'on', '--config', configFile]);
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stdout, /powered on through IPMI 10\.77\.11\.5; power now on/);
    assert.match(
      readFileSync(join(dir, 'chassis.log'), 'utf8'),
      /power on boot=n/,
      'the PXE flag reached the next power-on',
    );

    // The VM really runs: its network boot ROM broadcasts DHCPDISCOVER from its MAC (chaddr at offset 28, RFC 2131 §2).
    const macHex = VM_MAC.replace(/:/g, '');
    const discover = await waitFor(
      'the VM DHCPDISCOVER',
      () => dhcp.lines.find((l) => l.startsWith('67 ') && l.slice(3 + 28 * 2, 3 + 34 * 2) === macHex),
      150_000,
      250,
    );
    const bootSeconds = (Date.now() - tOn) / 1000;
    console.log(`# power on → VM DHCPDISCOVER in ${bootSeconds.toFixed(1)} s (TCG)`);
    assert.ok(discover);

    const status = await corral(['node', 'power', 'vm-ipmi', 'status', '--config', configFile, '--json']);
    assert.deepEqual(JSON.parse(status.stdout), { node: 'vm-ipmi', state: 'on' });

    const down = await corral(['node', 'power', 'vm-ipmi', 'off', '--config', configFile]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /power now off/);
    assert.equal(existsSync(join(dir, 'qemu.pid')), false, 'the VM process is gone');

    // A wrong password: the BMC refuses, the CLI exits 1 with one line, an error event is recorded.
    const badSet = await corral(
      [
        'node',
        'power',
        'vm-ipmi',
        'set',
        '--driver',
        'ipmi',
        '--address',
        bmc.address,
        '--user',
        BMC_USER,
        '--password-stdin',
        '--config',
        configFile,
      ],
      'wrong-password\n',
    );
    assert.equal(badSet.code, 0);
    const bad = await corral(['node', 'power', 'vm-ipmi', 'on', '--config', configFile]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^corral: BMC 10\.77\.11\.5:623: .+\n$/);

    // Events: every action and state change recorded; no password anywhere in them.
    const repos = openRepos({ path: join(dataDir, 'corral.db'), logger: silentLogger() });
    try {
      const events = repos.events.list({ nodeMac: VM_MAC, limit: 100 }).reverse();
      const kinds = events.map((e) => e.kind);
      for (const k of ['power.configured', 'power.action', 'power.state', 'power.failed'])
        assert.ok(kinds.includes(k), `${k} in ${kinds.join(',')}`);
      assert.ok(events.some((e) => e.kind === 'power.state' && e.data?.['state'] === 'on'));
      assert.ok(
        events.some(
          (e) => e.kind === 'power.state' && e.data?.['state'] === 'off' && e.data?.['previous'] === 'on',
        ),
      );
      const all = JSON.stringify(events) + JSON.stringify(repos.changes.since(0, 10_000));
      assert.equal(all.includes(BMC_PASSWORD), false, 'password in events or change journal');
    } finally {
      repos.store.close();
    }
    console.log(`# ipmi test total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  },
);

test(
  'Wake-on-LAN: the magic packet reaches the segment as a broadcast; off is refused',
  { timeout: 60_000 },
  async () => {
    const wol = listen(9);
    await waitFor('WoL listener', () => wol.lines.includes('ready'), 10_000);
    const set = await corral([
      'node',
      'power',
      'wol-node',
      'set',
      '--driver',
      'wol',
      '--address',
      `${SUBNET}.255`,
      '--config',
      configFile,
    ]);
    assert.equal(set.code, 0, set.stderr);
    const on = await corral(['node', 'power', 'wol-node', 'on', '--config', configFile]);
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stdout, /magic packet for 52:54:00:77:11:30 sent to 10\.77\.11\.255:9/);
    const line = await waitFor('the magic packet', () => wol.lines.find((l) => l.startsWith('9 ')), 10_000);
    const payload = Buffer.from(line.slice(2), 'hex');
    assert.equal(payload.length, 102);
    assert.ok(payload.subarray(0, 6).equals(Buffer.alloc(6, 0xff)));
    const mac = Buffer.from(WOL_MAC.replace(/:/g, ''), 'hex');
    for (let i = 0; i < 16; i++)
      assert.ok(payload.subarray(6 + i * 6, 12 + i * 6).equals(mac), `repetition ${i}`);

    const off = await corral(['node', 'power', 'wol-node', 'off', '--config', configFile]);
    assert.equal(off.code, 1);
    assert.match(off.stderr, /cannot 'off' \(it can: on\)/);
  },
);
