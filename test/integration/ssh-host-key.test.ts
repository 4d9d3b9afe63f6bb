/**
 * Issue 14, finding 7: the master pins each node's SSH host key for `corral node exec` and monitoring.
 * Two real sshd "nodes" in namespaces on a test bridge: app-0 is a diskless node whose host key Corral
 * created (sharedroot/identity.ts's ensureHostKeys, the key its identity hands the node), app-1 has a
 * key of its own (a disk install), pinned on first contact. With the right keys, exec and the metrics
 * collector work; then another sshd with a different host key answers on each address (what a machine
 * that took the node's IP would do), and both exec and the collector refuse it before authenticating:
 * the command never runs there, and the refusal is an event naming both fingerprints.
 * app-2 is a disk-deployed node: deploy made its key on the master (deploy.ts createDeployHostKey), the
 * plan served the private half (planFile, what the installer lays into /etc/ssh), and the installer's
 * success adopted it (adoptHostKey), replacing the first-contact pin of the system it reinstalled: it is
 * accepted with no trust on first use, and an impostor is refused like app-0's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '../../master/config.js';
import { ensureMasterKey } from '../../master/deploy/ssh.js';
import { fingerprint, HostKeyPins, publicKeyBlob } from '../../master/remote/host-keys.js';
import { adoptHostKey, createDeployHostKey, planFile } from '../../master/deploy/deploy.js';
import { HOST_KEY_FILE } from '../../master/deploy/plan.js';
import type { DeploymentRecord } from '../../master/store/deployments.js';
import { ensureHostKeys, nodeDir } from '../../master/sharedroot/identity.js';
import { sharedRootDir } from '../../master/sharedroot/service.js';
import { openRepos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { CLI, exitOf } from '../helpers/master-process.js';
import { TestNet, type Host } from '../helpers/netns.js';
import { prepareSshd, writeAuthorizedKeys } from '../helpers/sshd.js';

const SUBNET = '10.77.14';
const MACS = ['52:54:00:77:14:10', '52:54:00:77:14:11', '52:54:00:77:14:12'] as const;
const unmet = unmetNeeds({ root: true, commands: ['/usr/sbin/sshd', 'ssh-keygen'] });

let net: TestNet | undefined;
let dir = '';
let dataDir = '';
let configFile = '';
let master: Host;
const hosts: Host[] = [];
const starts: (() => Promise<void>)[] = [];

async function inMaster(argv: string[]): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const child = spawn('ip', ['netns', 'exec', master.ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await exitOf(child, 60_000);
  return { code, stdout, stderr };
}

const exec = (cmd: string): ReturnType<typeof inMaster> =>
  inMaster(['node', CLI, 'node', 'exec', 'app-0,app-1,app-2', '--config', configFile, '--', cmd]);

const collect = (mac: string, want: number): ReturnType<typeof inMaster> =>
  inMaster([
    'node',
    join(import.meta.dirname, '..', 'helpers', 'node-collector-run.js'),
    configFile,
    mac,
    String(want),
  ]);

function hostKeyPath(i: number): string {
  return join(dir, `n${i}.hostkey`);
}

/** Stops node i's sshd (its pid file) and starts it again with the key now at its HostKey path. */
async function restartSshd(i: number): Promise<void> {
  const pidFile = join(dir, `n${i}.sshd.pid`);
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  process.kill(pid, 'SIGTERM');
  for (let t = 0; t < 50 && existsSync(pidFile); t++) await new Promise((r) => setTimeout(r, 100));
  await starts[i]!();
}

before(async () => {
  failIfUnmet(unmet);
  dir = mkdtempSync(join(tmpdir(), 'corral-hostkey-'));
  dataDir = join(dir, 'data');
  const key = await ensureMasterKey(dataDir);
  const authorizedKeys = writeAuthorizedKeys(dir, key.publicKey);
  net = new TestNet('chk');
  master = net.addHost('hm', `${SUBNET}.1/24`);
  for (let i = 0; i < 3; i++) {
    const h = net.addHost(`n${i}`, `${SUBNET}.1${i}/24`);
    hosts.push(h);
    starts.push(prepareSshd(net, h, { dir, name: `n${i}`, authorizedKeys, fromNs: master.ns }));
  }
  const raw = {
    dataDir,
    address: master.address,
    http: { port: 8080 },
    tftp: { enabled: false },
    console: { https: false },
    monitor: { enabled: false, nodeSshSeconds: 1 },
    remote: { exec: { connectTimeoutSeconds: 3, commandTimeoutSeconds: 30 } },
  };
  configFile = join(dir, 'corral.json');
  writeFileSync(configFile, JSON.stringify(raw));
  // app-0's sshd serves the key Corral made for it, as a diskless node does after its identity is applied.
  const made = await ensureHostKeys(nodeDir(sharedRootDir(buildConfig(raw, {})), MACS[0]));
  writeFileSync(hostKeyPath(0), made['ed25519']![0], { mode: 0o600 });
  writeFileSync(`${hostKeyPath(0)}.pub`, made['ed25519']![1]);
  // app-2: its previous system was pinned on first contact; then it is deployed again.
  const config = buildConfig(raw, {});
  const pins = HostKeyPins.forConfig(config);
  const previous = publicKeyBlob(readFileSync(`${hostKeyPath(2)}.pub`, 'utf8'))!;
  mkdirSync(join(dataDir, 'ssh'), { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, 'ssh', 'known_nodes'), `${MACS[2]} ${previous.toString('base64')}\n`);
  const pub = await createDeployHostKey(pins, MACS[2]);
  const deployment = {
    nodeMac: MACS[2],
    plan: { env: { HOST_KEY: HOST_KEY_FILE }, files: { [`${HOST_KEY_FILE}.pub`]: pub } },
  } as unknown as DeploymentRecord;
  const served = planFile(deployment, HOST_KEY_FILE, pins.deployKeyPath(MACS[2]));
  assert.ok(served, 'the plan serves the private key');
  writeFileSync(hostKeyPath(2), served, { mode: 0o600 });
  writeFileSync(`${hostKeyPath(2)}.pub`, planFile(deployment, `${HOST_KEY_FILE}.pub`)!);
  assert.equal(adoptHostKey(pins, deployment), true);
  const repos = openRepos({ path: join(dataDir, 'corral.db'), logger: silentLogger() });
  repos.store.write((journal) => {
    hosts.forEach((h, i) => {
      repos.nodes.insertIn(journal, {
        mac: MACS[i]!,
        name: `app-${i}`,
        seqNo: i + 1,
        state: 'deployed',
        ip: h.address,
      });
    });
  });
  repos.store.close();
  for (const start of starts) await start();
});

after(async () => {
  await net?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(
  'the right host keys: exec and the metrics collector work; app-1 is pinned on first contact, the deployed app-2 is not',
  { timeout: 120_000 },
  async () => {
    const r = await exec('echo hello');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^app-0 \| hello$/m);
    assert.match(r.stdout, /^app-1 \| hello$/m);
    assert.match(r.stdout, /^app-2 \| hello$/m);
    const pins = readFileSync(join(dataDir, 'ssh', 'known_nodes'), 'utf8');
    const own = publicKeyBlob(readFileSync(`${hostKeyPath(1)}.pub`, 'utf8'))!;
    assert.equal(
      pins,
      `${MACS[1]} ${own.toString('base64')}\n`,
      "only app-1 needed a first-contact pin; app-2's old one went with its reinstall",
    );
    const c = await collect(MACS[0], 1);
    assert.equal(c.code, 0, c.stderr.slice(-2000));
    assert.match(c.stdout, new RegExp(`^sample ${MACS[0]} `, 'm'));
  },
);

test(
  'another host key at a node address: exec and the collector refuse it, the command never runs there, an event says why',
  { timeout: 120_000 },
  async () => {
    const expected = [0, 1, 2].map((i) =>
      fingerprint(publicKeyBlob(readFileSync(`${hostKeyPath(i)}.pub`, 'utf8'))!),
    );
    for (let i = 0; i < 3; i++) {
      // An impostor: same address, same authorized key, a host key of its own.
      const other = join(dir, `impostor${i}`);
      net!.nsExec(hosts[i]!.ns, ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', other]);
      copyFileSync(other, hostKeyPath(i));
      copyFileSync(`${other}.pub`, `${hostKeyPath(i)}.pub`);
      await restartSshd(i);
    }
    const presented = [0, 1, 2].map((i) =>
      fingerprint(publicKeyBlob(readFileSync(`${hostKeyPath(i)}.pub`, 'utf8'))!),
    );
    const stamp = join(dir, 'ran-on-impostor');
    const r = await exec(`touch ${stamp}`);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    console.log(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => `# ${l}`)
        .join('\n'),
    );
    assert.equal(existsSync(stamp), false, 'the command never ran on the impostor');
    assert.match(
      r.stdout,
      /^app-0\s+unreachable\s+SSH host key of app-0 .* the key Corral created for it: refused/m,
    );
    assert.match(r.stdout, /^app-1\s+unreachable\s+SSH host key of app-1 .* pinned on first contact/m);
    assert.match(
      r.stdout,
      /^app-2\s+unreachable\s+SSH host key of app-2 .* the key Corral created for it: refused/m,
    );
    assert.match(r.stdout, /3 node\(s\): 0 ok, 0 failed, 3 unreachable/);

    const c = await collect(MACS[0], 0);
    assert.equal(c.code, 0, c.stderr.slice(-2000));
    assert.doesNotMatch(c.stdout, /^sample /m, 'no sample from an impostor');
    assert.match(c.stderr, /SSH host key of app-0/);

    const repos = openRepos({ path: join(dataDir, 'corral.db'), logger: silentLogger() });
    try {
      const events = repos.events.list({ kind: 'node.ssh-host-key-refused' });
      for (let i = 0; i < 3; i++) {
        const mine = events.filter((e) => e.nodeMac === MACS[i]);
        assert.ok(mine.length >= 1, `an event for app-${i}`);
        assert.ok(mine[0]!.message.includes(presented[i]!) && mine[0]!.message.includes(expected[i]!));
      }
    } finally {
      repos.store.close();
    }
  },
);
