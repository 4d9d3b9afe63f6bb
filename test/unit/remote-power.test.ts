import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretBox, loadOrCreateKey, secretKeyPath } from '../../master/remote/secrets.js';
import { broadcastOf, magicPacket } from '../../master/remote/wol.js';
import { ipmitoolArgs, ipmitoolError, parsePowerStatus, type RunIpmitool } from '../../master/remote/ipmi.js';
import { formatSummary, lineSplitter, prefixLine, summarise } from '../../master/remote/exec.js';
import { createPowerControl } from '../../master/remote/power.js';
import { isCorralError } from '../../master/util/errors.js';
import { silentLogger } from '../../master/util/logger.js';
import { createDeployer } from '../../master/deploy/deployer.js';
import type { NodeRecord } from '../../master/store/nodes.js';
import { tempRepos, testConfig } from '../helpers/repos.js';

test('credentials: sealed with AES-256-GCM, key file 0600 created once, bound to its owner, tamper-evident', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-secret-'));
  try {
    const box = SecretBox.forDataDir(dir);
    assert.equal(statSync(secretKeyPath(dir)).mode & 0o777, 0o600);
    const key = readFileSync(secretKeyPath(dir));
    assert.equal(key.length, 32);
    assert.deepEqual(loadOrCreateKey(dir), key, 'the second use reads the same key');

    const sealed = box.seal('hunter2', 'power:52:54:00:00:00:01');
    assert.match(sealed, /^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    assert.ok(!sealed.includes('hunter2'));
    assert.notEqual(sealed, box.seal('hunter2', 'power:52:54:00:00:00:01'), 'a fresh IV per seal');
    assert.equal(box.open(sealed, 'power:52:54:00:00:00:01'), 'hunter2');

    const refused = (f: () => unknown): void =>
      assert.throws(f, (e: unknown) => isCorralError(e) && e.code === 'SECRET_KEY_INVALID');
    refused(() => box.open(sealed, 'power:52:54:00:00:00:02')); // moved to another node's row
    const [v, iv, tag, ct] = sealed.split(':');
    const flipped = Buffer.from(ct!, 'base64');
    flipped[0]! ^= 1;
    refused(() => box.open([v, iv, tag, flipped.toString('base64')].join(':'), 'power:52:54:00:00:00:01'));
    refused(() =>
      SecretBox.forDataDir(mkdtempSync(join(tmpdir(), 'corral-other-'))).open(
        sealed,
        'power:52:54:00:00:00:01',
      ),
    );
    refused(() => box.open('plain', 'x'));

    writeFileSync(secretKeyPath(dir), 'short');
    refused(() => loadOrCreateKey(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Wake-on-LAN magic packet: 6 × FF then 16 × MAC (102 bytes); broadcast of a subnet', () => {
  const p = magicPacket('01:23:45:67:89:AB');
  assert.equal(p.length, 102);
  assert.equal(p.subarray(0, 6).toString('hex'), 'ffffffffffff');
  assert.equal(p.subarray(6).toString('hex'), '0123456789ab'.repeat(16));
  assert.throws(() => magicPacket('01:23:45'), /not a MAC/);
  assert.equal(broadcastOf('10.0.0.1/24'), '10.0.0.255');
  assert.equal(broadcastOf('10.1.2.3/16'), '10.1.255.255');
  assert.equal(broadcastOf('192.168.7.130/25'), '192.168.7.255');
  assert.equal(broadcastOf('192.168.7.5/30'), '192.168.7.7');
});

test('ipmitool: lanplus arguments never carry the password; status and error parsing', () => {
  const args = ipmitoolArgs({ host: '10.0.0.5', port: 623, username: 'admin' }, 'pxe');
  assert.deepEqual(args, [
    '-I',
    'lanplus',
    '-H',
    '10.0.0.5',
    '-p',
    '623',
    '-U',
    'admin',
    '-E',
    '-R',
    '2',
    '-N',
    '2',
    'chassis',
    'bootdev',
    'pxe',
  ]);
  assert.ok(!args.includes('-P'));
  assert.deepEqual(ipmitoolArgs({ host: 'h', port: 1, username: 'u' }, 'status', 3).slice(-5), [
    '-C',
    '3',
    'chassis',
    'power',
    'status',
  ]);
  assert.equal(parsePowerStatus('Chassis Power is on\n'), 'on');
  assert.equal(parsePowerStatus('Chassis Power is off\n'), 'off');
  assert.equal(parsePowerStatus('garbage'), undefined);
  assert.equal(
    ipmitoolError(
      'Unable to Get Channel Cipher Suites\nError: Unable to establish IPMI v2 / RMCP+ session\n',
    ),
    'Error: Unable to establish IPMI v2 / RMCP+ session',
  );
});

test('exec output: lines split across chunks, prefixes aligned, summary counts each outcome', () => {
  const lines: string[] = [];
  const s = lineSplitter((l) => lines.push(l));
  s.push('hel');
  s.push('lo\r\nwor');
  s.push('ld\nlast');
  s.flush();
  assert.deepEqual(lines, ['hello', 'world', 'last']);
  assert.equal(prefixLine('a', 5, 'x'), 'a     | x');
  assert.equal(prefixLine('node-1', 6, 'err', 'stderr'), 'node-1 ! err');
  const base = { host: 'h', signal: null, error: null, durationMs: 1500 };
  const sum = summarise(
    [
      { ...base, name: 'a', outcome: 'ok', exitCode: 0 },
      { ...base, name: 'bb', outcome: 'failed', exitCode: 3 },
      { ...base, name: 'c', outcome: 'unreachable', exitCode: null, error: 'connect ETIMEDOUT' },
      { ...base, name: 'd', outcome: 'timeout', exitCode: null, error: 'still running after 2 s' },
    ],
    4200,
  );
  assert.deepEqual([sum.ok, sum.failed, sum.unreachable, sum.timeout], [1, 1, 1, 1]);
  assert.deepEqual(formatSummary(sum), [
    'a     ok          exit 0  (1.5 s)',
    'bb    failed      exit 3  (1.5 s)',
    'c     unreachable connect ETIMEDOUT  (1.5 s)',
    'd     timeout     still running after 2 s  (1.5 s)',
    '4 node(s): 1 ok, 1 failed, 1 unreachable, 1 timed out in 4.2 s',
  ]);
});

test('power control: the password is write-only, kept on re-configure, and never in events or the journal', async () => {
  const t = tempRepos();
  try {
    const { repos } = t;
    const node = repos.store.write((j) =>
      repos.nodes.insertIn(j, { mac: '52:54:00:00:00:07', name: 'n7', seqNo: 1, state: 'ready' }),
    );
    const calls: { args: string[]; env: Record<string, string> }[] = [];
    // The BMC side of this unit test: the real ipmitool is exercised in test/integration/ipmi-power.test.ts.
    const run: RunIpmitool = (_bin, args, env) => {
      calls.push({ args, env });
      return Promise.resolve(
        env['IPMI_PASSWORD'] === 'pw-1'
          ? { code: 0, stdout: args.includes('status') ? 'Chassis Power is on\n' : '', stderr: '' }
          : { code: 1, stdout: '', stderr: 'Error: Unable to establish IPMI v2 / RMCP+ session\n' },
      );
    };
    const power = createPowerControl({
      repos,
      config: testConfig({ dataDir: t.dir }),
      logger: silentLogger(),
      secrets: SecretBox.forDataDir(t.dir),
      runIpmitool: run,
    });
    assert.throws(
      () => power.configure(node, { driver: 'ipmi', address: '10.0.0.5', username: 'u' }, 'x'),
      /needs a password/,
    );
    const view = power.configure(
      node,
      { driver: 'ipmi', address: '10.0.0.5', username: 'u', password: 'pw-1' },
      'alice',
    );
    assert.equal(view.hasPassword, true);
    assert.ok(!JSON.stringify(view).includes('pw-1'));
    assert.ok(!('secret' in view) && !('password' in view));
    // Re-configuring without a password keeps the stored one.
    power.configure(node, { driver: 'ipmi', address: '10.0.0.5', port: 6230, username: 'u' }, 'alice');
    const r = await power.act(node, 'on', 'alice');
    assert.equal(r.state, 'on');
    assert.equal(calls[0]!.env['IPMI_PASSWORD'], 'pw-1');
    assert.ok(calls[0]!.args.includes('6230'));
    assert.ok(calls.every((c) => !c.args.includes('pw-1')));

    power.configure(
      node,
      { driver: 'ipmi', address: '10.0.0.5', username: 'u', password: 'wrong-pw-9' },
      'alice',
    );
    await assert.rejects(
      power.act(node, 'off', 'alice'),
      (e: unknown) => isCorralError(e) && e.code === 'POWER_FAILED',
    );
    await assert.rejects(power.refresh(node), /RMCP\+ session/);
    assert.equal(power.view(node.mac)?.state, 'unknown');
    assert.match(power.view(node.mac)?.stateError ?? '', /RMCP\+ session/);

    power.configure(node, { driver: 'wol' }, 'alice');
    await assert.rejects(
      power.act(node, 'cycle', 'alice'),
      (e: unknown) => isCorralError(e) && e.code === 'POWER_UNSUPPORTED',
    );
    power.configure(node, { driver: 'manual' }, 'alice');
    const manual = await power.act(node, 'on', 'alice');
    assert.equal(manual.manual, true);
    assert.match(manual.message, /operator action needed on n7: press the power button/);

    const kinds = repos.events.list({ nodeMac: node.mac }).map((e) => e.kind);
    for (const k of [
      'power.configured',
      'power.action',
      'power.state',
      'power.failed',
      'power.unreachable',
      'power.manual',
    ]) {
      assert.ok(kinds.includes(k), `${k} missing from ${kinds.join(',')}`);
    }
    const everything =
      JSON.stringify(repos.events.list({ limit: 1000 })) + JSON.stringify(repos.changes.since(0, 10_000));
    assert.ok(
      !everything.includes('pw-1') && !everything.includes('wrong-pw-9'),
      'a password leaked into events or the journal',
    );

    power.remove(node, 'alice');
    assert.equal(power.view(node.mac), undefined);
    await assert.rejects(
      power.act(node, 'on', 'alice'),
      (e: unknown) => isCorralError(e) && e.code === 'POWER_NOT_CONFIGURED',
    );
  } finally {
    t.cleanup();
  }
});

test('deploy reboots through the power driver (IPMI: PXE, then cycle), else the agent or SSH; the path is an event', async () => {
  const t = tempRepos();
  try {
    const { repos } = t;
    const sha = 'cd'.repeat(32);
    const nodes = repos.store.write((j) => {
      repos.images.insertIn(j, {
        sha256: sha,
        name: 'img',
        format: 'tar.zst',
        sizeBytes: 1000,
        osName: 'debian',
        osVersion: '12',
        minDiskBytes: 2 ** 20,
        file: `${sha}.tar.zst`,
      });
      const inventory = { disks: [{ name: 'vda', sizeBytes: 8 * 2 ** 30 }] };
      return [1, 2, 3, 4].map((i) =>
        repos.nodes.insertIn(j, {
          mac: `52:54:00:00:01:0${i}`,
          name: `d${i}`,
          seqNo: i,
          // d3 and d4 run a deployed system at an address (ssh reachable at .44 only).
          state: i > 2 ? 'deployed' : 'discovered',
          ip: i > 2 ? `10.99.0.4${i + 1}` : null,
          firmware: 'bios',
          inventory,
        }),
      );
    });
    // The BMC side: ipmitool's answers for a chassis that is on; `bmcUp` false is a BMC that does not answer.
    const chassis: string[] = [];
    let bmcUp = true;
    const run: RunIpmitool = (_bin, args) => {
      const cmd = args.slice(args.indexOf('chassis')).join(' ');
      if (!bmcUp)
        return Promise.resolve({
          code: 1,
          stdout: '',
          stderr: 'Error: Unable to establish IPMI v2 / RMCP+ session\n',
        });
      chassis.push(cmd);
      return Promise.resolve({
        code: 0,
        stdout: cmd.endsWith('status') ? 'Chassis Power is on\n' : '',
        stderr: '',
      });
    };
    const sshCalls: string[] = [];
    const setup = (rebootForDeploy: boolean) => {
      const config = testConfig({ dataDir: t.dir, remote: { power: { rebootForDeploy } } });
      const power = createPowerControl({
        repos,
        config,
        logger: silentLogger(),
        secrets: SecretBox.forDataDir(t.dir),
        runIpmitool: run,
      });
      const deployer = createDeployer({
        repos,
        config,
        logger: silentLogger(),
        key: { privateKeyPath: '/nonexistent', publicKey: 'ssh-ed25519 AAAA test' },
        power,
        sshReboot: (_key, ip) => {
          sshCalls.push(ip);
          return Promise.resolve(ip === '10.99.0.44' ? null : 'Connection refused');
        },
      });
      return { power, deployer };
    };
    const lastReboot = (n: NodeRecord) =>
      repos.events.list({ nodeMac: n.mac, kind: 'deploy.reboot', limit: 1 })[0];
    const [d1, d2, d3, d4] = nodes as [NodeRecord, NodeRecord, NodeRecord, NodeRecord];
    const { power, deployer } = setup(true);
    power.configure(d1, { driver: 'ipmi', address: '10.0.0.5', username: 'u', password: 'pw' }, 'admin');

    // IPMI: next boot from the network, then a power cycle; the agent and SSH are not needed.
    const r1 = await deployer.deploy(d1, { image: 'img', actor: 'alice' });
    assert.equal(r1.reboot, 'power');
    assert.deepEqual(chassis, ['chassis bootdev pxe', 'chassis power status', 'chassis power cycle']);
    assert.equal(repos.nodes.get(d1.mac)?.state, 'deploying');
    const e1 = lastReboot(d1);
    assert.equal(e1?.data?.['path'], 'power');
    assert.equal(e1?.data?.['driver'], 'ipmi');
    assert.equal(e1?.data?.['deployment'], r1.deployment.id);
    assert.match(e1?.message ?? '', /power-cycled through IPMI 10\.0\.0\.5/);
    const actions = repos.events
      .list({ nodeMac: d1.mac, kind: 'power.action', limit: 10 })
      .map((e) => [e.data?.['action'], e.actor]);
    assert.deepEqual(actions.reverse(), [
      ['pxe', 'alice'],
      ['cycle', 'alice'],
    ]);

    // A BMC that does not answer: the deploy still starts, the agent path is taken and the failure said.
    bmcUp = false;
    const r2 = await deployer.deploy(repos.nodes.get(d1.mac)!, { image: 'img', actor: 'alice' });
    assert.equal(r2.reboot, 'agent');
    assert.equal(lastReboot(d1)?.severity, 'warning');
    assert.match(
      lastReboot(d1)?.message ?? '',
      /power control failed \(.*RMCP\+ session.*\); d1's agent is told/,
    );
    bmcUp = true;

    // With rebootForDeploy off the driver is left alone.
    chassis.length = 0;
    const off = setup(false);
    assert.equal(
      (await off.deployer.deploy(repos.nodes.get(d1.mac)!, { image: 'img', actor: 'x' })).reboot,
      'agent',
    );
    assert.deepEqual(chassis, []);

    // Manual driver: nothing the master can do itself, so the agent path (no "press the button" event).
    power.configure(d2, { driver: 'manual' }, 'admin');
    assert.equal((await deployer.deploy(d2, { image: 'img', actor: 'x' })).reboot, 'agent');
    assert.equal(repos.events.list({ nodeMac: d2.mac, kind: 'power.manual', limit: 5 }).length, 0);
    assert.equal(lastReboot(d2)?.data?.['driver'], null);

    // Deployed nodes without a driver: SSH, and the operator when SSH fails.
    assert.equal((await deployer.deploy(d3, { image: 'img', actor: 'x' })).reboot, 'ssh');
    assert.equal(lastReboot(d3)?.data?.['path'], 'ssh');
    assert.equal((await deployer.deploy(d4, { image: 'img', actor: 'x' })).reboot, 'manual');
    assert.deepEqual(sshCalls, ['10.99.0.44', '10.99.0.45']);
    assert.equal(lastReboot(d4)?.severity, 'warning');
    assert.match(
      lastReboot(d4)?.message ?? '',
      /reboot over SSH failed \(Connection refused\); power-cycle d4/,
    );
  } finally {
    t.cleanup();
  }
});

test('config: remote defaults, and unknown keys refused', () => {
  const c = testConfig();
  assert.equal(c.remote.power.pollSeconds, 60);
  assert.equal(c.remote.exec.parallel, 16);
  assert.throws(
    () => testConfig({ remote: { power: { bogus: 1 } } }),
    /remote\.power: unknown key\(s\) bogus/,
  );
});
