/**
 * What sampling a node costs, two ways (issue 19): the master's built-in SSH sampling
 * (master/monitor/node-collector.ts: a kept session per node, one probe command per round) against
 * Prometheus scraping the node's prometheus-node-exporter (the master pays nothing per node then; the
 * Prometheus server does).
 *
 *   node dist/test/bench/node-sampling-bench.js [--nodes 20] [--rounds 10] [--seconds 20]
 *
 * In namespaces on a test bridge: a master host, and one node host running a real sshd (the master's key
 * authorised) and Debian's prometheus-node-exporter. --nodes node records all point at that host, so the
 * master keeps --nodes sessions, as with as many machines. Measured in the same run:
 * - the collector's process CPU per sample (steady rounds, sessions kept) and per first contact (SSH
 *   handshake), from process.cpuUsage in test/helpers/node-sampling-run.ts;
 * - Debian's Prometheus scraping --nodes targets (the same exporter under --nodes labels) every second for
 *   --seconds: its CPU per scrape, and the exporter's CPU per scrape (both from /proc/PID/stat).
 * Prints; asserts nothing. Needs root, openssh-server, prometheus, prometheus-node-exporter.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TestNet, waitFor } from '../helpers/netns.js';
import { exitOf } from '../helpers/master-process.js';
import { openRepos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';
import { ensureMasterKey } from '../../master/deploy/ssh.js';
import { prepareSshd, writeAuthorizedKeys } from '../helpers/sshd.js';
import { requirePeers } from '../helpers/peers.js';
import { fileSdTargets, scrapeJobsYaml } from '../../master/metrics/scrape-config.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '20' },
  },
  strict: true,
});
const NODES = Number(values.nodes);
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const HELPER = fileURLToPath(new URL('../helpers/node-sampling-run.js', import.meta.url));
const TICK_MS = 1000 / 100; // USER_HZ: /proc/PID/stat counts CPU time in ticks of 10 ms on Linux

function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
    .replace(/^.*\) /, '')
    .split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime, stime (fields 14 and 15)
}

/** The PID of the program itself under `ip netns exec` (which execs it: the same PID). */
const pidOf = (c: ChildProcess): number => c.pid!;

async function main(): Promise<void> {
  // A missing peer fails the run (test/helpers/peers.ts), as in the tests.
  requirePeers('/usr/sbin/sshd', 'prometheus', 'prometheus-node-exporter');
  const dir = mkdtempSync(join(tmpdir(), 'corral-sampling-'));
  const net = new TestNet('nsb');
  const prefix = `10.83.${1 + Math.floor(Math.random() * 250)}`;
  try {
    const dataDir = join(dir, 'data');
    const key = await ensureMasterKey(dataDir);
    const master = net.addHost('sm', `${prefix}.1/24`);
    const node = net.addHost('sn', `${prefix}.10/24`);
    const startSshd = prepareSshd(net, node, {
      dir,
      name: 'node',
      authorizedKeys: writeAuthorizedKeys(dir, key.publicKey),
      fromNs: master.ns,
    });
    await startSshd();
    const repos = openRepos({ path: join(dataDir, 'corral.db'), logger: silentLogger() });
    const macs = Array.from({ length: NODES }, (_, i) => `52:54:00:83:00:${i.toString(16).padStart(2, '0')}`);
    repos.store.write((j) => {
      macs.forEach((mac, i) =>
        repos.nodes.insertIn(j, {
          mac,
          name: `node-${i + 1}`,
          seqNo: i + 1,
          state: 'deployed',
          ip: node.address,
        }),
      );
    });
    repos.store.close();
    const configFile = join(dir, 'corral.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        dataDir,
        address: master.address,
        remote: { exec: { parallel: 8, connectTimeoutSeconds: 5 } },
      }),
    );

    // 1. SSH sampling, in the master's namespace.
    const child = spawn('ip', ['netns', 'exec', master.ns, 'node', HELPER, configFile, String(ROUNDS)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await exitOf(child, 300_000);
    if (code !== 0) throw new Error(`sampling helper: ${code}\n${err}`);
    const ssh = JSON.parse(/^done (.*)$/m.exec(out)?.[1] ?? 'null') as {
      first: { samples: number; cpuMs: number; wallMs: number };
      steady: { samples: number; cpuMs: number; wallMs: number };
    };

    // 2. Prometheus scraping the exporter as NODES targets, every second.
    const exporter = net.spawnIn(
      node.ns,
      ['prometheus-node-exporter', `--web.listen-address=${node.address}:9100`],
      {
        stdio: 'ignore',
      },
    );
    const sd = join(dir, 'targets.json');
    writeFileSync(
      sd,
      JSON.stringify(
        fileSdTargets({
          master: `${master.address}:1`,
          nodeExporterPort: 9100,
          nodes: macs.map((mac, i) => ({ mac, name: `node-${i + 1}`, ip: node.address, role: null })),
        }).slice(1),
      ),
    );
    const yml = join(dir, 'prometheus.yml');
    writeFileSync(yml, scrapeJobsYaml({ fileSdPath: sd, scrapeIntervalSeconds: 1 }));
    const prom = net.spawnIn(
      master.ns,
      [
        'prometheus',
        `--config.file=${yml}`,
        `--storage.tsdb.path=${join(dir, 'tsdb')}`,
        '--web.listen-address=127.0.0.1:9090',
        '--log.level=error',
      ],
      { stdio: 'ignore' },
    );
    /** Scrapes Prometheus has done (its own counter of scrape intervals, from its /metrics); -1 until it answers. */
    const scrapes = (): number => {
      try {
        const text = net.nsExec(master.ns, ['curl', '-s', '-m', '3', 'http://127.0.0.1:9090/metrics']);
        const m = /^prometheus_target_interval_length_seconds_count\{interval="1s"\} (\S+)$/m.exec(text);
        return m ? Number(m[1]) : -1;
      } catch {
        return -1;
      }
    };
    await waitFor('prometheus scraping', () => scrapes() > 0, 30_000, 250);
    await new Promise((r) => setTimeout(r, 3000)); // first scrapes, TSDB head set up
    const p0 = cpuMsOf(pidOf(prom));
    const e0 = cpuMsOf(pidOf(exporter));
    const s0 = scrapes();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const promMs = cpuMsOf(pidOf(prom)) - p0;
    const expMs = cpuMsOf(pidOf(exporter)) - e0;
    const elapsed = (performance.now() - t0) / 1000;
    const done = scrapes() - s0;

    const per = (ms: number, n: number): string => (n ? (ms / n).toFixed(2) : 'n/a');
    console.log(
      `nodes ${NODES}, SSH rounds ${ROUNDS}, scraping for ${elapsed.toFixed(1)} s at 1 s per target`,
    );
    console.log(
      `SSH sampling, master CPU per sample (sessions kept): ${per(ssh.steady.cpuMs, ssh.steady.samples)} ms  (${ssh.steady.samples} samples, ${ssh.steady.cpuMs.toFixed(0)} ms CPU, ${ssh.steady.wallMs.toFixed(0)} ms wall)`,
    );
    console.log(
      `SSH sampling, master CPU per first contact (handshake + sample): ${per(ssh.first.cpuMs, ssh.first.samples)} ms  (${ssh.first.samples} nodes)`,
    );
    console.log(`Scraping, master CPU per node sample: 0 (Prometheus scrapes node-exporter directly)`);
    console.log(
      `Scraping, Prometheus server CPU per scrape: ${per(promMs, done)} ms  (${promMs.toFixed(0)} ms CPU for ${done} scrapes)`,
    );
    console.log(`Scraping, node-exporter CPU per scrape (on the node): ${per(expMs, done)} ms`);
  } finally {
    await net.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
