/**
 * DHCPv6 benchmark (issue 18): Kea's perfdhcp -6 drives SOLICIT/ADVERTISE/REQUEST/REPLY exchanges
 * against Corral's DHCPv6 server (over its real SQLite store) and against dnsmasq's DHCPv6 as the
 * reference, in the same run, on the same namespace setup, at the same rates. Nothing is asserted.
 *
 *   node dist/test/bench/dhcp6-bench.js          (root; needs perfdhcp and dnsmasq)
 *   DHCP6_BENCH_SCENARIOS=500:200,1000:2000 DHCP6_BENCH_SECONDS=10 node dist/test/bench/dhcp6-bench.js
 *
 * A scenario is RATE:CLIENTS (perfdhcp -r and -R). Both servers lease from the same range with a 1 h
 * lifetime, both log every exchange to a file, neither sends router advertisements (radvd off; dnsmasq
 * without --enable-ra), and perfdhcp sends to ff02::1:2 from its link-local address, as clients do.
 */
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { TestNet, addIpv6, hasCommand, linkLocalReady, waitFor, type Host } from '../helpers/netns.js';
import { runPerfdhcp } from '../helpers/perfdhcp.js';
import { installPath } from '../../master/util/paths.js';

const SCENARIOS = (process.env['DHCP6_BENCH_SCENARIOS'] ?? '500:200,1000:2000').split(',').map((s) => {
  const [rate, clients] = s.split(':').map(Number);
  if (!rate || !clients) throw new Error(`DHCP6_BENCH_SCENARIOS: "${s}" is not RATE:CLIENTS`);
  return { rate, clients };
});
const SECONDS = Number(process.env['DHCP6_BENCH_SECONDS'] ?? '10');
const PREFIX = 'fd00:57::';
const RANGE = [`${PREFIX}1:0`, `${PREFIX}ffff:ffff`] as const;

interface Row {
  server: string;
  rate: number;
  clients: number;
  exchangesPerSecond: number;
  saDrops: number;
  rrDrops: number;
  rrAvgMs: number;
}

async function perfdhcp(
  net: TestNet,
  perf: Host,
  rate: number,
  clients: number,
  server: string,
): Promise<Row> {
  const { stats } = await runPerfdhcp(net, perf.ns, {
    family: 6,
    rate,
    clients,
    seconds: SECONDS,
    ifname: perf.ifname,
  });
  return {
    server,
    rate,
    clients,
    exchangesPerSecond: (stats.ackReceived ?? NaN) / SECONDS,
    saDrops: stats.offerDrops ?? NaN,
    rrDrops: stats.ackDrops ?? NaN,
    rrAvgMs: stats.ackAvgMs ?? NaN,
  };
}

async function stop(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  await new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    const t = setTimeout(resolve, 5000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('the DHCPv6 benchmark creates network namespaces: run it as root');
  for (const cmd of ['perfdhcp', 'dnsmasq'])
    if (!hasCommand(cmd)) throw new Error(`${cmd} is missing: run scripts/setup.sh`);
  const dir = mkdtempSync(join(tmpdir(), 'corral-dhcp6-bench-'));
  const net = new TestNet('b6');
  const rows: Row[] = [];
  try {
    const srv = net.addHost('srv', null);
    await addIpv6(net, srv, `${PREFIX}1/64`);
    const perf = net.addHost('perf', null);
    await linkLocalReady(net, perf.ns, perf.ifname);
    for (const [i, { rate, clients }] of SCENARIOS.entries()) {
      const data = join(dir, `corral-${i}`);
      const corral = net.spawnIn(
        srv.ns,
        [
          process.execPath,
          installPath('dist', 'test', 'helpers', 'dhcp6-serve.js'),
          '--data-dir',
          data,
          '--iface',
          srv.ifname,
          '--address',
          `${PREFIX}1`,
          '--prefix',
          `${PREFIX}/64`,
          '--range',
          `${RANGE[0]}-${RANGE[1]}`,
          '--no-ra',
          '--no-rapid-commit',
        ],
        { stdio: ['ignore', 'pipe', openSync(join(dir, `corral-${i}.log`), 'w')] },
      );
      let out = '';
      corral.stdout?.on('data', (b: Buffer) => (out += b.toString()));
      try {
        await waitFor('corral READY', () => (out.includes('READY') ? true : undefined), 20_000);
        rows.push(await perfdhcp(net, perf, rate, clients, 'corral'));
      } finally {
        await stop(corral);
      }
      const leases = join(dir, `dnsmasq-${i}.leases`);
      writeFileSync(leases, '');
      const dnsmasq = net.spawnIn(
        srv.ns,
        [
          'dnsmasq',
          '--no-daemon',
          '--conf-file=/dev/null',
          '--port=0',
          `--interface=${srv.ifname}`,
          '--bind-interfaces',
          `--dhcp-range=${RANGE[0]},${RANGE[1]},64,1h`,
          '--dhcp-lease-max=1000000',
          `--dhcp-leasefile=${leases}`,
          `--pid-file=${join(dir, 'dnsmasq.pid')}`,
          `--log-facility=${join(dir, `dnsmasq-${i}.log`)}`,
          '--log-dhcp',
          '--user=root',
          '--group=root',
        ],
        { stdio: 'ignore' },
      );
      try {
        await new Promise((r) => setTimeout(r, 1000));
        rows.push(await perfdhcp(net, perf, rate, clients, 'dnsmasq'));
      } finally {
        await stop(dnsmasq);
      }
    }
  } finally {
    await net.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    `\nDHCPv6 exchanges, perfdhcp -6 -r RATE -R CLIENTS -p ${SECONDS} (multicast, same namespaces):\n`,
  );
  console.log('| rate/s | clients | server | exch/s | SA drops | RR drops | REQUEST→REPLY avg |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.rate} | ${r.clients} | ${r.server} | ${r.exchangesPerSecond.toFixed(1)} | ${r.saDrops} | ${r.rrDrops} | ${r.rrAvgMs.toFixed(2)} ms |`,
    );
  console.log('\nexch/s = REPLYs to REQUEST received / test period; drops = no answer within 1 s.');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
