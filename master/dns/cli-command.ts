/**
 * `corral dns [--json]`: the cluster zone as knot serves it, from the master of the current profile
 * (GET /api/v1/dns): the server, the serial, every record (SOA first), what was left out and the last error.
 */
import { defineCommand, usage } from '../cli/command.js';
import { table } from '../cli/table.js';
import type { DnsStatus } from './dns-service.js';

const HELP = `  corral dns [--json] [--profile NAME]
      The cluster zone (DNS-SD records of the load-balanced services, node addresses) as the master's
      knot serves it (docs/dns-sd.md). --json prints the API's answer as it is.
`;

export function formatDnsStatus(s: DnsStatus): string {
  const head = [
    `zone ${s.zone} serial ${s.serial ?? '-'} on ${s.listen.map((a) => `${a}:${s.port}`).join(', ')}` +
      ` (knot ${s.running ? 'running' : 'not running'})`,
    ...(s.lastError ? [`last update refused: ${s.lastError}`] : []),
    ...s.skipped.map((why) => `left out: ${why}`),
  ].join('\n');
  const rows = s.records.map((r) => [r.name, r.type, r.data]);
  return `${head}\n${rows.length ? table([['NAME', 'TYPE', 'DATA'], ...rows]) : 'no zone served yet\n'}`;
}

export const dnsCommand = defineCommand({
  path: ['dns'],
  help: HELP,
  options: { profile: { type: 'string' }, json: { type: 'boolean' } },
  async run({ values, positionals }, ctx) {
    if (positionals.length) usage(`unexpected argument '${positionals[0]}'`);
    const api = await ctx.api(values.profile);
    const status = await api.call<DnsStatus>('GET', '/dns');
    ctx.out(values.json ? `${JSON.stringify(status, null, 2)}\n` : formatDnsStatus(status));
    return 0;
  },
});
