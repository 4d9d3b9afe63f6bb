/** Reads the summary Kea's perfdhcp prints (DHCPv4, basic scenario) into numbers. */
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

export function parsePerfdhcp(out: string): PerfdhcpStats {
  const section = (name: string): string =>
    out.split(`***Statistics for: ${name}***`)[1]?.split('***')[0] ?? '';
  const num = (text: string, label: string): number | undefined => {
    const m = new RegExp(`${label}: ([\\d.]+)`).exec(text);
    return m?.[1] !== undefined ? Number(m[1]) : undefined;
  };
  const dor = section('DISCOVER-OFFER');
  const ra = section('REQUEST-ACK');
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
