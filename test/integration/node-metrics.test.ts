/**
 * The node metrics collector against a real sshd in a namespace on a test bridge (as remote-exec.test.ts
 * sets it up: port 22, a temporary host key, the master's public key as AuthorizedKeysFile). The collector
 * runs in the master's namespace (test/helpers/node-collector-run.ts) every second; the samples it records
 * must be the node's real numbers. Also there: a deployed node whose address has no host behind it (no
 * sample, no throw, the round not hung), a node that is not deployed and one without an address (never
 * asked), and the sshd killed with its sessions and started again mid-run, as in a node reboot (the kept
 * session is replaced and samples resume).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { TestNet, run, waitFor, type Host } from '../helpers/netns.js';
import { exitOf } from '../helpers/master-process.js';
import { openRepos } from '../../master/store/repos.js';
import { RAW_TIER, type MetricSample } from '../../master/store/metrics.js';
import { silentLogger } from '../../master/util/logger.js';
import { ensureMasterKey } from '../../master/deploy/ssh.js';
import { prepareSshd, writeAuthorizedKeys } from '../helpers/sshd.js';

const SUBNET = '10.77.14';
const HELPER = fileURLToPath(new URL('../helpers/node-collector-run.js', import.meta.url));
const NODE = '52:54:00:77:14:10';
const GONE = '52:54:00:77:14:99';
const DEPLOYING = '52:54:00:77:14:11';
const NO_IP = '52:54:00:77:14:12';
const unmet = unmetNeeds({ root: true, commands: ['/usr/sbin/sshd', 'ssh-keygen'] });

let net: TestNet | undefined;
let dir = '';
after(async () => {
  await net?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function memTotalBytes(): number {
  const kb = /^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  return Number(kb) * 1024;
}

test(
  'deployed nodes are sampled over SSH: real numbers stored, unreachable nodes skipped, reboots survived',
  { timeout: 120_000 },
  async () => {
    failIfUnmet(unmet);
    try {
      dir = mkdtempSync(join(tmpdir(), 'corral-nodemetrics-'));
      const dataDir = join(dir, 'data');
      const key = await ensureMasterKey(dataDir);
      const authorizedKeys = writeAuthorizedKeys(dir, key.publicKey);
      net = new TestNet('cnm');
      const master = net.addHost('nm', `${SUBNET}.1/24`);
      const node: Host = net.addHost('nn', `${SUBNET}.10/24`);
      const startSshd = prepareSshd(net, node, { dir, name: 'node', authorizedKeys, fromNs: master.ns });
      await startSshd();

      const repos = openRepos({ path: join(dataDir, 'corral.db'), logger: silentLogger() });
      repos.store.write((j) => {
        repos.nodes.insertIn(j, { mac: NODE, name: 'app-0', seqNo: 1, state: 'deployed', ip: node.address });
        // Same sshd, but a node being deployed is not asked (its OS is being replaced).
        repos.nodes.insertIn(j, {
          mac: DEPLOYING,
          name: 'app-1',
          seqNo: 2,
          state: 'deploying',
          ip: node.address,
        });
        repos.nodes.insertIn(j, { mac: NO_IP, name: 'app-2', seqNo: 3, state: 'deployed' });
        // An address on the segment with no host: ARP goes unanswered.
        repos.nodes.insertIn(j, { mac: GONE, name: 'gone', seqNo: 9, state: 'deployed', ip: `${SUBNET}.99` });
      });
      repos.store.close();
      const configFile = join(dir, 'corral.json');
      writeFileSync(
        configFile,
        JSON.stringify({
          dataDir,
          address: master.address,
          monitor: { nodeSshSeconds: 1 },
          remote: { exec: { parallel: 2, connectTimeoutSeconds: 2 } },
        }),
      );

      const child = spawn('ip', ['netns', 'exec', master.ns, 'node', HELPER, configFile, NODE, '7'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const samples: MetricSample[] = [];
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        samples.length = 0;
        for (const m of stdout.matchAll(/^sample (\S+) (.*)$/gm))
          if (m[1] === NODE) samples.push(JSON.parse(m[2]!) as MetricSample);
      });
      // The node "reboots" after its third sample: sshd and its sessions killed, started again 1.5 s later.
      await waitFor('three samples', () => samples.length >= 3, 30_000, 50);
      for (const pid of run('ip', ['netns', 'pids', node.ns]).split('\n').filter(Boolean))
        process.kill(Number(pid), 'SIGKILL');
      const beforeReboot = samples.length;
      await new Promise((r) => setTimeout(r, 1500));
      await startSshd();
      const code = await exitOf(child, 60_000);
      assert.equal(code, 0, `helper failed:\n${stderr.slice(-4000)}`);
      const done = JSON.parse(/^done (.*)$/m.exec(stdout)?.[1] ?? 'null') as {
        firstRound: number;
        firstRoundMs: number;
        stopMs: number;
        sources: Record<string, number>;
      };
      console.log(`# ${JSON.stringify(done)}`);
      // One direct round: only app-0 sampled; the dead address cost at most the 1 s connect bound.
      assert.equal(done.firstRound, 1);
      assert.ok(done.firstRoundMs < 5000, `first round took ${done.firstRoundMs} ms`);
      assert.deepEqual(Object.keys(done.sources), [NODE]);
      assert.ok(samples.length >= 7 && samples.length > beforeReboot, 'samples resumed after the reboot');
      assert.ok(done.stopMs < 3000, `stop took ${done.stopMs} ms`);
      assert.match(stderr, /"node":"gone".*"msg":"node not sampled"/);

      // What the store holds is what the node's kernel says (the namespace shares this kernel).
      const check = openRepos({ path: join(dataDir, 'corral.db'), logger: silentLogger() });
      try {
        const stored = check.metrics.series(NODE, RAW_TIER, 0, 2 ** 31);
        assert.ok(stored.length >= 1, 'samples in the metrics store');
        for (const s of stored) {
          assert.equal(s.memTotal, memTotalBytes());
          assert.ok(s.memUsed !== null && s.memUsed > 0 && s.memUsed <= s.memTotal!);
          assert.ok(s.diskTotal !== null && s.diskTotal > 0 && s.diskUsed !== null && s.diskUsed > 0);
          assert.ok(s.load1 !== null && s.load1 >= 0);
        }
        const rates = samples.filter((s) => s.cpu !== null);
        assert.ok(rates.length >= 2, 'CPU % once a previous reading exists');
        for (const s of rates) {
          assert.ok(s.cpu! >= 0 && s.cpu! <= 100, `cpu ${s.cpu}`);
          // SSH traffic itself crosses the node's interface.
          assert.ok(s.netRx !== null && s.netRx > 0 && s.netTx !== null && s.netTx > 0);
        }
        assert.equal(samples[0]!.cpu, null, 'no rate from the first reading');
        for (const mac of [GONE, DEPLOYING, NO_IP])
          assert.equal(check.metrics.series(mac, RAW_TIER, 0, 2 ** 31).length, 0, mac);
        assert.ok(check.metrics.lastReports().has(NODE));
      } finally {
        check.store.close();
      }
    } finally {
      await net?.destroy();
      net = undefined;
    }
  },
);
