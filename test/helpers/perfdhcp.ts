/**
 * Kea's perfdhcp for the DHCP and DHCPv6 benchmarks: one runner, and its summary read into numbers.
 * DHCPv6's SOLICIT-ADVERTISE and REQUEST-REPLY are read into the offer and ack fields.
 */
import { runIn, type TestNet } from './netns.js';

/** The summary perfdhcp prints (basic scenario). */
export interface PerfdhcpStats {
  /** "Rate: N 4-way exchanges/second" */
  rate?: number;
  offerSent?: number;
  offerReceived?: number;
  offerDrops?: number;
  ackSent?: number;
  ackReceived?: number;
  ackDrops?: number;
  rejected?: number;
  /** REQUEST-ACK delays, milliseconds. */
  ackMinMs?: number;
  ackAvgMs?: number;
  ackMaxMs?: number;
  offerAvgMs?: number;
}

export function parsePerfdhcp(out: string, family: 4 | 6 = 4): PerfdhcpStats {
  const section = (name: string): string =>
    out.split(`***Statistics for: ${name}***`)[1]?.split('***')[0] ?? '';
  const num = (text: string, label: string): number | undefined => {
    const m = new RegExp(`${label}: ([\\d.]+)`).exec(text);
    return m?.[1] !== undefined ? Number(m[1]) : undefined;
  };
  const dor = section(family === 4 ? 'DISCOVER-OFFER' : 'SOLICIT-ADVERTISE');
  const ra = section(family === 4 ? 'REQUEST-ACK' : 'REQUEST-REPLY');
  const stats: PerfdhcpStats = {};
  const set = (key: keyof PerfdhcpStats, v: number | undefined): void => {
    if (v !== undefined) stats[key] = v;
  };
  set('rate', num(out, 'Rate'));
  set('offerSent', num(dor, 'sent packets'));
  set('offerReceived', num(dor, 'received packets'));
  set('offerDrops', num(dor, 'drops'));
  set('offerAvgMs', num(dor, 'avg delay'));
  set('ackSent', num(ra, 'sent packets'));
  set('ackReceived', num(ra, 'received packets'));
  set('ackDrops', num(ra, 'drops'));
  set('ackMinMs', num(ra, 'min delay'));
  set('ackAvgMs', num(ra, 'avg delay'));
  set('ackMaxMs', num(ra, 'max delay'));
  if (dor || ra) set('rejected', (num(dor, 'rejected leases') ?? 0) + (num(ra, 'rejected leases') ?? 0));
  return stats;
}

export interface PerfdhcpRun {
  family: 4 | 6;
  /** -r: exchanges started per second; -R: distinct clients; -p: seconds. */
  rate: number;
  clients: number;
  seconds: number;
  /** -l: the interface (or, DHCPv4, the local address) perfdhcp sends from. */
  ifname: string;
  /** The server to unicast to; without it perfdhcp broadcasts (v4) or sends to ff02::1:2 (v6). */
  server?: string;
  /** More options, before the server (e.g. -x t for per-packet timestamps). */
  extra?: string[];
}

/** Runs perfdhcp in `ns` (bounded: the period plus 30 s) and parses its summary; no summary is an error. */
export async function runPerfdhcp(
  net: TestNet,
  ns: string,
  run: PerfdhcpRun,
): Promise<{ stdout: string; stats: PerfdhcpStats }> {
  const argv = [
    'perfdhcp',
    `-${run.family}`,
    ...(run.extra ?? []),
    '-r',
    String(run.rate),
    '-R',
    String(run.clients),
    '-p',
    String(run.seconds),
    '-l',
    run.ifname,
    ...(run.server ? [run.server] : []),
  ];
  const r = await runIn(net, ns, argv, (run.seconds + 30) * 1000);
  const stats = parsePerfdhcp(r.stdout, run.family);
  if (stats.ackReceived === undefined)
    throw new Error(`perfdhcp printed no statistics:\n${r.stdout}\n${r.stderr}`);
  return { stdout: r.stdout, stats };
}
