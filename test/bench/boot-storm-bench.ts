/**
 * Boot storm (issue 19): N machines PXE-booting at once against Corral, and against a reference stack
 * (dnsmasq for DHCP + TFTP, nginx for HTTP) on the same namespaces, files and shaped link, in one run.
 *
 *   node dist/test/bench/boot-storm-bench.js [--n 250,500,1000] [--stacks corral,reference]
 *       [--rate 1gbit] [--node-image DIR] [--spread-ms 1000] [--deadline-s 900] [--profile DIR]
 *       [--machines-per-client 250] [--corral-config JSON]
 *
 * Two namespaces on a bridge: the server's (Corral's master, or dnsmasq + nginx) and the clients'.
 * The server's link is shaped with `tc ... tbf rate 1gbit` (its egress: what the machines download).
 * test/helpers/storm-client.ts runs the N machines in the clients' namespace: PXE ROM DHCP, TFTP of the
 * loader, iPXE DHCP, the iPXE script, kernel and initrd over HTTP, and (Corral only: the reference has no
 * such step) the agent's enlistment, each with firmware-like retry timing (see that file).
 *
 * The node environment served is a real one built by `corral node-image build` (its kernel and initrd;
 * --node-image, default: the newest under /var/cache/corral/node-image). Both stacks serve the same
 * bytes: the same undionly.kpxe over TFTP, the same kernel and initrd over HTTP.
 *
 * Reports per stack and N: time until all machines booted (kernel + initrd) and until all enlisted,
 * failures by stage, p50/p99 per stage, retransmissions, the servers' CPU (seconds and average share of
 * one core) and peak RSS (VmRSS of every server process, sampled from /proc every 250 ms), and the floor:
 * the bytes all machines received ÷ the link rate. Prints; asserts nothing. Needs root.
 *
 * Who waits: the storm client reports its own CPU and event-loop delay, and the master runs with
 * test/helpers/storm-loop-probe.ts preloaded (its event-loop delay and CPU, per second), so a slow stage
 * can be told apart as the client saturated, the master's loop blocked or busy, or neither (the network).
 * --profile DIR also writes the master's V8 CPU profile of the storm there (corral-N.cpuprofile, for
 * Chrome's DevTools or speedscope).
 */
import type { ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TestNet, hasCommand, waitFor, type Host } from '../helpers/netns.js';
import { dnsmasqDhcpArgs } from '../helpers/dhcp-harness.js';
import { startMasterProcess, type MasterProcess } from '../helpers/master-process.js';
import type { MachineResult, Stage, StormReport } from '../helpers/storm-client.js';
import type { LoopSample } from '../helpers/storm-loop-probe.js';
import { STORM_STAGES, sampleProcesses, type ProcSampler } from '../helpers/storm-proc.js';

const CLIENT = fileURLToPath(new URL('../helpers/storm-client.js', import.meta.url));
const LOOP_PROBE = new URL('../helpers/storm-loop-probe.js', import.meta.url).href;
const LOADER = '/usr/lib/ipxe/undionly.kpxe';
const SERVER = '10.82.0.1';
const CLIENTS = '10.82.0.2';
const RANGE = ['10.82.1.1', '10.82.8.254'] as const;
const PASSWORD = 'boot-storm-bench-pw';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '250,500,1000' },
    stacks: { type: 'string', default: 'corral,reference' },
    rate: { type: 'string', default: '1gbit' },
    'node-image': { type: 'string' },
    'spread-ms': { type: 'string', default: '1000' },
    'deadline-s': { type: 'string', default: '900' },
    profile: { type: 'string' },
    'machines-per-client': { type: 'string', default: '250' },
    // Extra keys for Corral's config file (an experiment, e.g. '{"monitor":{"enabled":false}}').
    'corral-config': { type: 'string', default: '{}' },
  },
  strict: true,
});
const SIZES = values.n.split(',').map(Number);
const STACKS = values.stacks.split(',') as ('corral' | 'reference')[];

/** `1gbit`, `500mbit` → bits per second (tc's units, SI). */
function rateBits(rate: string): number {
  const m = /^(\d+(?:\.\d+)?)(k|m|g)?bit$/.exec(rate);
  if (!m) throw new Error(`--rate ${rate}: use tc's form, e.g. 1gbit or 500mbit`);
  return Number(m[1]) * ({ k: 1e3, m: 1e6, g: 1e9 }[m[2] as 'k' | 'm' | 'g'] ?? 1);
}

function nodeImageDir(): string {
  if (values['node-image']) return values['node-image'];
  const cache = '/var/cache/corral/node-image';
  const dirs = existsSync(cache)
    ? readdirSync(cache)
        .map((d) => join(cache, d))
        .filter((d) => existsSync(join(d, 'vmlinuz')) && existsSync(join(d, 'initrd.img')))
        .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
    : [];
  if (!dirs[0])
    throw new Error('no built node environment: run `corral node-image build` or pass --node-image DIR');
  return dirs[0];
}

interface Row {
  stack: string;
  n: number;
  report: StormReport;
  cpuSeconds: number;
  peakRssMiB: number;
  wallS: number;
  /** The master's event loop per second (Corral only). */
  loop?: LoopSample[];
  /**
   * The server namespace's TcpExtListenOverflows (/proc/net/netstat, per namespace): connections the
   * kernel could not queue for accept(); the client then waits for a SYN-ACK retransmission (1, 3, 7,
   * 15, 31 s).
   */
  listenOverflows: number;
  /** The server namespace's Udp RcvbufErrors (/proc/net/snmp): datagrams dropped on a full socket buffer. */
  udpRcvbufErrors: number;
  /**
   * The server's TCP retransmission timeouts (TcpExt TCPTimeouts) and retransmitted segments (Tcp
   * RetransSegs): a small reply (the iPXE script) whose segment the shaped link's full queue dropped waits
   * for a timeout (200 ms at least, doubling), which a loop probe cannot see.
   */
  tcpTimeouts: number;
  tcpRetransSegs: number;
}

/**
 * A counter of the namespace `ns` from /proc/net/snmp or /proc/net/netstat (proc(5): per section, a line
 * of names and a line of values, both starting with the section, e.g. `Udp:` or `TcpExt:`).
 */
function netCounter(
  net: TestNet,
  ns: string,
  file: 'snmp' | 'netstat',
  section: string,
  key: string,
): number {
  const lines = net.nsExec(ns, ['cat', `/proc/net/${file}`]).split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const keys = (lines[i] ?? '').split(/\s+/);
    const k = keys.indexOf(key);
    if (keys[0] === `${section}:` && k > 0) return Number((lines[i + 1] ?? '').split(/\s+/)[k]);
  }
  return NaN;
}

/** The server namespace's counters after a run (its namespace is new per run, so they start at 0). */
function serverCounters(
  net: TestNet,
  ns: string,
): Pick<Row, 'listenOverflows' | 'udpRcvbufErrors' | 'tcpTimeouts' | 'tcpRetransSegs'> {
  return {
    listenOverflows: netCounter(net, ns, 'netstat', 'TcpExt', 'ListenOverflows'),
    udpRcvbufErrors: netCounter(net, ns, 'snmp', 'Udp', 'RcvbufErrors'),
    tcpTimeouts: netCounter(net, ns, 'netstat', 'TcpExt', 'TCPTimeouts'),
    tcpRetransSegs: netCounter(net, ns, 'snmp', 'Tcp', 'RetransSegs'),
  };
}

function pct(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

/**
 * Runs the storm in the clients' namespace, split over client processes of at most
 * --machines-per-client machines each (one Node process for 1000 machines saturates its core: the
 * client would then measure itself); resolves with their reports merged.
 */
async function storm(
  net: TestNet,
  client: Host,
  n: number,
  enlist: boolean,
  macBase: string,
): Promise<StormReport> {
  const per = Math.max(1, Number(values['machines-per-client']));
  const parts: Promise<StormReport>[] = [];
  for (let first = 0; first < n; first += per) {
    parts.push(stormPart(net, client, { first, n: Math.min(per, n - first), total: n }, enlist, macBase));
  }
  const reports = await Promise.all(parts);
  const loads = reports.map((r) => r.client);
  return {
    n,
    enlist,
    wallMs: Math.max(...reports.map((r) => r.wallMs)),
    machines: reports.flatMap((r) => r.machines),
    client: {
      cpuMs: loads.reduce((a, l) => a + l.cpuMs, 0),
      // Per process: the worst of them.
      peakCoreShare: Math.max(...loads.map((l) => l.peakCoreShare)),
      saturatedSeconds: Math.max(...loads.map((l) => l.saturatedSeconds)),
      loopDelayMs: {
        p50: Math.max(...loads.map((l) => l.loopDelayMs.p50)),
        p99: Math.max(...loads.map((l) => l.loopDelayMs.p99)),
        max: Math.max(...loads.map((l) => l.loopDelayMs.max)),
      },
    },
  };
}

/** One storm client process: machines first .. first+n-1 of total. */
function stormPart(
  net: TestNet,
  client: Host,
  part: { first: number; n: number; total: number },
  enlist: boolean,
  macBase: string,
): Promise<StormReport> {
  const deadlineS = Number(values['deadline-s']);
  return new Promise((resolve, reject) => {
    const child: ChildProcess = net.spawnIn(client.ns, [
      process.execPath,
      CLIENT,
      '--n',
      String(part.n),
      '--first',
      String(part.first),
      '--total',
      String(part.total),
      '--iface',
      client.ifname,
      '--mac-base',
      macBase,
      '--spread-ms',
      values['spread-ms'],
      '--deadline-s',
      String(deadlineS),
      ...(enlist ? [] : ['--no-enlist']),
    ]);
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const kill = setTimeout(() => child.kill('SIGKILL'), (deadlineS + 60) * 1000);
    child.on('exit', (code) => {
      clearTimeout(kill);
      if (code !== 0) return reject(new Error(`storm client exited ${code}: ${err}`));
      try {
        resolve(JSON.parse(out) as StormReport);
      } catch {
        reject(new Error(`storm client printed no report: ${err}`));
      }
    });
  });
}

/**
 * The clients' namespace gets a default route on its link (inside that namespace only): without one,
 * Linux has no route for 255.255.255.255 and a DHCPDISCOVER sent there fails with ENETUNREACH.
 */
function clientRoute(net: TestNet, client: Host): void {
  net.nsExec(client.ns, ['ip', 'route', 'add', 'default', 'dev', client.ifname]);
}

function shape(net: TestNet, host: Host, rate: string): void {
  // Egress of the server's interface; burst above one GSO segment (64 KiB) or tbf stalls on veth.
  net.nsExec(host.ns, [
    'tc',
    'qdisc',
    'replace',
    'dev',
    host.ifname,
    'root',
    'tbf',
    'rate',
    rate,
    'burst',
    '256kb',
    'latency',
    '50ms',
  ]);
}

async function runCorral(dir: string, imageDir: string, n: number): Promise<Row> {
  const net = new TestNet('bs');
  let master: MasterProcess | undefined;
  let sampler: ProcSampler | undefined;
  try {
    const srv = net.addHost('srv', `${SERVER}/16`);
    const cli = net.addHost('cli', `${CLIENTS}/16`);
    shape(net, srv, values.rate);
    clientRoute(net, cli);
    const data = join(dir, `corral-${n}`);
    const loopFile = join(dir, `corral-${n}-loop.jsonl`);
    const profileFile = values.profile ? join(values.profile, `corral-${n}.cpuprofile`) : undefined;
    mkdirSync(join(data, 'node-image'), { recursive: true });
    copyFileSync(join(imageDir, 'vmlinuz'), join(data, 'node-image', 'vmlinuz'));
    copyFileSync(join(imageDir, 'initrd.img'), join(data, 'node-image', 'initrd.img'));
    const cfg = join(dir, `corral-${n}.json`);
    writeFileSync(
      cfg,
      JSON.stringify({
        nodeImage: { autoBuild: false },
        dhcp: { subnet: '10.82.0.0/16' },
        console: { https: false },
        ...(JSON.parse(values['corral-config']) as Record<string, unknown>),
      }),
    );
    master = await startMasterProcess({
      args: [
        '--config',
        cfg,
        '--data-dir',
        data,
        '--address',
        SERVER,
        '--interface',
        srv.ifname,
        '--dhcp-range',
        `${RANGE[0]}-${RANGE[1]}`,
        '--http-port',
        '80',
      ],
      netns: srv.ns,
      host: SERVER,
      // The production default level: a storm at debug would measure the logger.
      env: {
        CORRAL_ADMIN_PASSWORD: PASSWORD,
        CORRAL_LOG_LEVEL: 'info',
        NODE_OPTIONS: `--import=${LOOP_PROBE}`,
        STORM_PROBE_FILE: loopFile,
        ...(profileFile ? { STORM_PROFILE_FILE: profileFile } : {}),
      },
      timeoutMs: 60_000,
      logFile: join(dir, `corral-${n}.log`),
    });
    const pid = master.child.pid;
    if (!pid) throw new Error('no master pid');
    sampler = sampleProcesses(() => [pid]);
    const from = Date.now();
    const t = performance.now();
    const report = await storm(net, cli, n, true, '52:54:01');
    const wallS = (performance.now() - t) / 1000;
    const use = sampler.stop();
    if (profileFile) {
      process.kill(pid, 'SIGUSR2');
      await waitFor('the CPU profile', () => existsSync(profileFile) || undefined, 30_000);
    }
    const loop = existsSync(loopFile)
      ? readFileSync(loopFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as LoopSample)
          .filter((l) => l.at > from && l.at <= Date.now() + 1000)
      : [];
    return {
      stack: 'corral',
      n,
      report,
      wallS,
      loop,
      ...serverCounters(net, srv.ns),
      ...use,
    };
  } finally {
    sampler?.stop();
    await master?.stop('SIGTERM', 15_000).catch(() => master?.stop('SIGKILL'));
    await net.destroy();
  }
}

/** The reference script: what Corral's discover script does (templates/ipxe/discover.hbs), from nginx. */
function referenceScript(): string {
  const base = `http://${SERVER}`;
  return [
    '#!ipxe',
    `kernel ${base}/boot/node/vmlinuz initrd=initrd.img console=ttyS0 || goto failed`,
    `initrd --name initrd.img ${base}/boot/node/initrd.img || goto failed`,
    'boot || goto failed',
    ':failed',
    'sleep 5',
    `chain --autofree ${base}/boot/ipxe || goto fallback`,
    ':fallback',
    'exit',
    '',
  ].join('\n');
}

function nginxConf(dir: string): string {
  return `daemon off;
master_process on;
worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 8192; }
http {
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  access_log ${dir}/nginx-access.log;
  client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
  server {
    listen ${SERVER}:80;
    root ${dir}/www;
    location = /boot/ipxe { default_type text/plain; }
  }
}
`;
}

/** Direct children of `pid` (nginx's workers), from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const c = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (c) out.push(...c.split(/\s+/).map(Number));
    }
  } catch {
    /* gone */
  }
  return out;
}

async function runReference(dir: string, imageDir: string, n: number): Promise<Row> {
  const net = new TestNet('bs');
  let sampler: ProcSampler | undefined;
  try {
    const srv = net.addHost('srv', `${SERVER}/16`);
    const cli = net.addHost('cli', `${CLIENTS}/16`);
    shape(net, srv, values.rate);
    clientRoute(net, cli);
    const ref = join(dir, `reference-${n}`);
    for (const d of ['www/boot/node', 'tftp', 'tmp']) mkdirSync(join(ref, d), { recursive: true });
    copyFileSync(join(imageDir, 'vmlinuz'), join(ref, 'www/boot/node/vmlinuz'));
    copyFileSync(join(imageDir, 'initrd.img'), join(ref, 'www/boot/node/initrd.img'));
    writeFileSync(join(ref, 'www/boot/ipxe'), referenceScript());
    copyFileSync(LOADER, join(ref, 'tftp/undionly.kpxe'));
    writeFileSync(join(ref, 'nginx.conf'), nginxConf(ref));
    writeFileSync(join(ref, 'leases'), '');
    const dnsmasq = net.spawnIn(
      srv.ns,
      dnsmasqDhcpArgs({
        ifname: srv.ifname,
        range: RANGE,
        leaseFile: join(ref, 'leases'),
        pidFile: join(ref, 'dnsmasq.pid'),
        logFile: join(ref, 'dnsmasq.log'),
        extra: [
          '--dhcp-userclass=set:ipxe,iPXE',
          `--dhcp-boot=tag:!ipxe,undionly.kpxe,,${SERVER}`,
          `--dhcp-boot=tag:ipxe,http://${SERVER}/boot/ipxe`,
          '--enable-tftp',
          `--tftp-root=${join(ref, 'tftp')}`,
          // dnsmasq's default is 50 concurrent transfers (refusing the rest): raised so the reference is
          // not failed by a setting.
          `--tftp-max=${Math.max(50, n)}`,
        ],
      }),
      { stdio: 'ignore' },
    );
    const nginx = net.spawnIn(
      srv.ns,
      ['nginx', '-e', join(ref, 'nginx-error.log'), '-c', join(ref, 'nginx.conf'), '-p', ref],
      {
        stdio: 'ignore',
      },
    );
    // dnsmasq writes no pid file in the foreground: its log says when DHCP and TFTP are up.
    await waitFor('nginx', () => existsSync(join(ref, 'nginx.pid')) || undefined, 10_000);
    await waitFor(
      'dnsmasq',
      () =>
        (existsSync(join(ref, 'dnsmasq.log')) &&
          readFileSync(join(ref, 'dnsmasq.log'), 'utf8').includes('TFTP root')) ||
        undefined,
      10_000,
    );
    const nginxPid = Number(readFileSync(join(ref, 'nginx.pid'), 'utf8').trim());
    const pids = (): number[] => [dnsmasq.pid ?? 0, nginxPid, ...childrenOf(nginxPid)].filter(Boolean);
    sampler = sampleProcesses(pids);
    const t = performance.now();
    const report = await storm(net, cli, n, false, '52:54:02');
    const wallS = (performance.now() - t) / 1000;
    const use = sampler.stop();
    nginx.kill('SIGQUIT');
    return {
      stack: 'dnsmasq + nginx',
      n,
      report,
      wallS,
      ...serverCounters(net, srv.ns),
      ...use,
    };
  } finally {
    sampler?.stop();
    await net.destroy();
  }
}

function fmtMs(v: number | undefined): string {
  if (v === undefined) return '-';
  return v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;
}

function summarise(rows: Row[], bitsPerSecond: number): void {
  const head = ['stack', 'N', 'all booted', 'all enlisted', 'failed', 'floor', 'CPU s', 'CPU %', 'peak RSS'];
  const lines: string[][] = [];
  const stageLines: string[][] = [];
  const failures: string[] = [];
  for (const r of rows) {
    const ms = r.report.machines;
    const failed = ms.filter((m) => !m.ok);
    const bytes = ms.reduce((a, m) => a + m.bytes, 0);
    const last = (k: 'bootedAtMs' | 'doneAtMs'): string => {
      const done = ms.filter((m) => m[k] !== undefined).map((m) => m[k] ?? 0);
      if (done.length < ms.length) return `- (${done.length}/${ms.length})`;
      return `${(Math.max(...done) / 1000).toFixed(1)} s`;
    };
    lines.push([
      r.stack,
      String(r.n),
      last('bootedAtMs'),
      r.report.enlist ? last('doneAtMs') : 'n/a (no reference)',
      String(failed.length),
      `${((bytes * 8) / bitsPerSecond).toFixed(1)} s (${(bytes / 1e9).toFixed(2)} GB)`,
      r.cpuSeconds.toFixed(1),
      `${((100 * r.cpuSeconds) / r.wallS).toFixed(0)} %`,
      `${r.peakRssMiB.toFixed(0)} MiB`,
    ]);
    const byStage = new Map<string, number>();
    for (const m of failed) {
      const k = `${m.failed?.stage}: ${m.failed?.error}`;
      byStage.set(k, (byStage.get(k) ?? 0) + 1);
    }
    for (const [k, c] of byStage) failures.push(`${r.stack} N=${r.n}: ${c} × ${k}`);
    for (const stage of STORM_STAGES) {
      const t = ms
        .map((m) => m.stages[stage as Stage])
        .filter((v): v is number => v !== undefined)
        .sort((a, b) => a - b);
      if (t.length === 0) continue;
      const retries = ms.reduce((a, m: MachineResult) => a + (m.retries[stage as Stage] ?? 0), 0);
      stageLines.push([
        r.stack,
        String(r.n),
        stage,
        fmtMs(pct(t, 0.5)),
        fmtMs(pct(t, 0.99)),
        fmtMs(t[t.length - 1]),
        String(retries),
      ]);
    }
  }
  console.log(
    `\nBoot storm, server link shaped to ${values.rate} (tbf), storm client spread ${values['spread-ms']} ms:\n`,
  );
  console.log(table(head, lines));
  console.log('\nPer stage (successful attempts, retries included):\n');
  console.log(table(['stack', 'N', 'stage', 'p50', 'p99', 'max', 'retransmits/retries'], stageLines));
  console.log(failures.length ? `\nFailures:\n${failures.join('\n')}` : '\nFailures: none');
  console.log(
    '\nWho waits (client = the storm client processes, peak, seconds above 90 % and loop delay of the worst one; master loop = per-second samples):\n',
  );
  console.log(table(WAIT_HEAD, rows.map(waitLine)));
  console.log(
    '\nfloor = payload bytes all machines received × 8 ÷ link rate; CPU = utime+stime of the server processes over the storm; CPU % = of one core, averaged; peak RSS = largest sampled sum of VmRSS.',
  );
}

const WAIT_HEAD = [
  'stack',
  'N',
  'client CPU (procs)',
  'client peak',
  'client >90 % s',
  'client loop p99/max',
  'master loop worst s',
  'master s >100 ms',
  'master peak CPU s',
  'script connect p50/p99',
  'script 1st byte p50/p99',
  'listen overflows',
  'UDP rcvbuf drops',
  'TCP timeouts / retransmitted segments',
];

/** Whether the client, the master's loop or neither is where a stage waits. */
function waitLine(r: Row): string[] {
  const c = r.report.client;
  const sorted = (k: 'connectMs' | 'firstByteMs'): number[] =>
    r.report.machines
      .map((m) => m.script?.[k])
      .filter((v): v is number => v !== undefined)
      .sort((a, b) => a - b);
  const split = (k: 'connectMs' | 'firstByteMs'): string =>
    `${fmtMs(pct(sorted(k), 0.5))} / ${fmtMs(pct(sorted(k), 0.99))}`;
  const loop = r.loop ?? [];
  return [
    r.stack,
    String(r.n),
    `${(c.cpuMs / 1000).toFixed(1)} s (${Math.ceil(r.n / Math.max(1, Number(values['machines-per-client'])))})`,
    `${Math.round(c.peakCoreShare * 100)} %`,
    String(c.saturatedSeconds),
    `${fmtMs(c.loopDelayMs.p99)} / ${fmtMs(c.loopDelayMs.max)}`,
    loop.length ? fmtMs(Math.max(...loop.map((l) => l.max))) : 'n/a',
    loop.length ? String(loop.filter((l) => l.max > 100).length) : 'n/a',
    loop.length ? `${Math.max(...loop.map((l) => l.cpu))} ms` : 'n/a',
    split('connectMs'),
    split('firstByteMs'),
    String(r.listenOverflows),
    String(r.udpRcvbufErrors),
    `${r.tcpTimeouts} / ${r.tcpRetransSegs}`,
  ];
}

function table(head: string[], lines: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const row = (cells: string[]): string =>
    '| ' + cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ') + ' |';
  return [row(head), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...lines.map(row)].join(
    '\n',
  );
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the boot storm creates network namespaces: run it as root');
  const missing = ['ip', 'tc', 'dnsmasq', 'nginx'].filter((c) => !hasCommand(c));
  if (missing.length) throw new Error(`missing ${missing.join(', ')}: run scripts/setup.sh --test`);
  if (!existsSync(LOADER)) throw new Error(`${LOADER} is missing: apt-get install ipxe`);
  const bits = rateBits(values.rate);
  if (values.profile) mkdirSync(values.profile, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'corral-boot-storm-'));
  // nginx's workers drop to user nobody: the files they serve must be reachable for it.
  chmodSync(dir, 0o755);
  // One copy for the whole run: every stack and N serve the same bytes even if the cache changes meanwhile.
  const source = nodeImageDir();
  const imageDir = join(dir, 'node-image');
  mkdirSync(imageDir);
  copyFileSync(join(source, 'vmlinuz'), join(imageDir, 'vmlinuz'));
  copyFileSync(join(source, 'initrd.img'), join(imageDir, 'initrd.img'));
  const rows: Row[] = [];
  console.log(
    `node environment ${source}: kernel ${statSync(join(imageDir, 'vmlinuz')).size} B, initrd ${statSync(join(imageDir, 'initrd.img')).size} B; loader ${statSync(LOADER).size} B`,
  );
  try {
    for (const n of SIZES) {
      for (const stack of STACKS) {
        process.stderr.write(`${stack} N=${n}...\n`);
        const row =
          stack === 'corral' ? await runCorral(dir, imageDir, n) : await runReference(dir, imageDir, n);
        rows.push(row);
        process.stderr.write(
          `${stack} N=${n}: ${row.report.machines.filter((m) => m.ok).length} ok in ${row.wallS.toFixed(1)} s\n`,
        );
      }
    }
  } finally {
    if (process.env['STORM_KEEP']) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
  summarise(rows, bits);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
