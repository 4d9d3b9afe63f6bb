/**
 * DHCP benchmark: Kea's perfdhcp drives four-way exchanges (DISCOVER/OFFER/REQUEST/ACK) against Corral
 * (over its real SQLite store) and against dnsmasq, on the same namespace setup, at the same rates, and
 * prints the results side by side. Nothing is asserted: it is a measurement.
 *
 *   node dist/test/bench/dhcp-bench.js            (root; needs perfdhcp and dnsmasq)
 *   DHCP_BENCH_SCENARIOS=500:200,2000:5000 DHCP_BENCH_SECONDS=10 node dist/test/bench/dhcp-bench.js
 *
 * A scenario is RATE:CLIENTS — exchanges started per second, and distinct client MACs (perfdhcp -R).
 * The client count matters: dnsmasq rewrites its whole lease file on every change, so its cost grows
 * with the number of leases; Corral writes one row per change.
 *
 * Both servers get the same /16 pool and lease time, both log every exchange to a file, and both skip
 * the ICMP probe before an offer (dnsmasq --no-ping; Corral never pings). dnsmasq's default lease limit
 * (1000) is raised so it does not cap the run. perfdhcp acts as a relay (giaddr = its address), so both
 * servers answer by unicast.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestNet, hasCommand } from '../helpers/netns.js';
import { dnsmasqDhcpArgs, startServe } from '../helpers/dhcp-harness.js';
import { runPerfdhcp, type PerfdhcpStats } from '../helpers/perfdhcp.js';

const SCENARIOS = (process.env['DHCP_BENCH_SCENARIOS'] ?? '500:200,2000:200,2000:5000')
  .split(',')
  .map((s) => {
    const [rate, clients] = s.split(':').map(Number);
    if (!rate || !clients) throw new Error(`DHCP_BENCH_SCENARIOS: "${s}" is not RATE:CLIENTS`);
    return { rate, clients };
  });
const SECONDS = Number(process.env['DHCP_BENCH_SECONDS'] ?? '10');
const SERVER = '10.81.0.1';
const PERF = '10.81.0.2';
const RANGE = ['10.81.1.1', '10.81.250.250'] as const;

interface Row {
  server: string;
  rate: number;
  clients: number;
  stats: PerfdhcpStats;
  /** Completed exchanges (DHCPACKs received) per second of the test period. */
  exchangesPerSecond: number;
  offerP50?: number;
  offerP99?: number;
  ackP50?: number;
  ackP99?: number;
}

/** perfdhcp -x t prints "sent / received: SSSSSS.UUUUUU / SSSSSS.UUUUUU" per packet pair and section. */
function delays(out: string, section: string): number[] {
  const text = out.split(`***Timestamps for packets: ${section}***`)[1]?.split('***')[0] ?? '';
  const ms: number[] = [];
  for (const m of text.matchAll(/sent \/ received: ([\d.]+) \/ ([\d.]+)/g)) {
    ms.push((Number(m[2]) - Number(m[1])) * 1000);
  }
  return ms.sort((a, b) => a - b);
}

function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function perfdhcp(
  net: TestNet,
  ns: string,
  ifname: string,
  rate: number,
  clients: number,
  server: string,
): Promise<Row> {
  const r = await runPerfdhcp(net, ns, {
    family: 4,
    rate,
    clients,
    seconds: SECONDS,
    ifname,
    server: SERVER,
    extra: ['-x', 't'],
  });
  const stats = r.stats;
  if (stats.ackReceived === undefined) throw new Error('perfdhcp printed no statistics');
  const offers = delays(r.stdout, 'DISCOVER-OFFER');
  const acks = delays(r.stdout, 'REQUEST-ACK');
  const row: Row = { server, rate, clients, stats, exchangesPerSecond: stats.ackReceived / SECONDS };
  const set = (key: 'offerP50' | 'offerP99' | 'ackP50' | 'ackP99', v: number | undefined): void => {
    if (v !== undefined) row[key] = v;
  };
  set('offerP50', percentile(offers, 50));
  set('offerP99', percentile(offers, 99));
  set('ackP50', percentile(acks, 50));
  set('ackP99', percentile(acks, 99));
  return row;
}

function fmt(n: number | undefined, digits = 1): string {
  return n === undefined ? '-' : n.toFixed(digits);
}

function table(rows: Row[]): string {
  const head = [
    'rate/s',
    'clients',
    'server',
    'exch/s',
    'DO drops',
    'RA drops',
    'offer p50',
    'offer p99',
    'ack p50',
    'ack p99',
    'ack avg',
  ];
  const lines = rows.map((r) => [
    String(r.rate),
    String(r.clients),
    r.server,
    fmt(r.exchangesPerSecond),
    String(r.stats.offerDrops ?? '-'),
    String(r.stats.ackDrops ?? '-'),
    `${fmt(r.offerP50, 2)} ms`,
    `${fmt(r.offerP99, 2)} ms`,
    `${fmt(r.ackP50, 2)} ms`,
    `${fmt(r.ackP99, 2)} ms`,
    `${fmt(r.stats.ackAvgMs, 2)} ms`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const row = (cells: string[]): string =>
    '| ' + cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ') + ' |';
  return [row(head), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...lines.map(row)].join(
    '\n',
  );
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('the DHCP benchmark creates network namespaces: run it as root');
  for (const cmd of ['perfdhcp', 'dnsmasq']) {
    if (!hasCommand(cmd)) throw new Error(`${cmd} is missing: run scripts/setup.sh`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'corral-dhcp-bench-'));
  const net = new TestNet('cb');
  const rows: Row[] = [];
  try {
    const srv = net.addHost('srv', `${SERVER}/16`);
    const perf = net.addHost('perf', `${PERF}/16`);
    for (const [i, { rate, clients }] of SCENARIOS.entries()) {
      const db = join(dir, `corral-${i}.db`);
      const corral = await startServe(
        net,
        srv.ns,
        dir,
        [
          '--db',
          db,
          '--address',
          SERVER,
          '--range',
          `${RANGE[0]}-${RANGE[1]}`,
          '--subnet',
          '10.81.0.0/16',
          '--lease',
          '3600',
        ],
        'info',
      );
      try {
        rows.push(await perfdhcp(net, perf.ns, perf.ifname, rate, clients, 'corral'));
      } finally {
        const stats = await corral.stop();
        process.stderr.write(`corral ${rate}/s, ${clients} clients: ${JSON.stringify(stats)}\n`);
      }

      const leases = join(dir, `dnsmasq-${i}.leases`);
      writeFileSync(leases, '');
      const dnsmasq = net.spawnIn(
        srv.ns,
        dnsmasqDhcpArgs({
          ifname: srv.ifname,
          range: RANGE,
          leaseFile: leases,
          pidFile: join(dir, 'dnsmasq.pid'),
          logFile: join(dir, `dnsmasq-${i}.log`),
        }),
        { stdio: 'ignore' },
      );
      try {
        await new Promise((r) => setTimeout(r, 1000));
        rows.push(await perfdhcp(net, perf.ns, perf.ifname, rate, clients, 'dnsmasq'));
      } finally {
        dnsmasq.kill('SIGTERM');
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 5000);
          dnsmasq.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    }
  } finally {
    await net.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    `\nDHCP four-way exchanges, perfdhcp -r RATE -R CLIENTS -p ${SECONDS} (relayed, unicast), same namespaces:\n`,
  );
  console.log(table(rows));
  console.log('\nexch/s = DHCPACKs received / test period; drops = requests without an answer within 1 s;');
  console.log('p50/p99 from perfdhcp -x t timestamps (per DISCOVER→OFFER and REQUEST→ACK).');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
