/**
 * `corral node list` and `corral node show NODE`: the inventory, read through the API of the master
 * the profile names (GET /api/v1/nodes, GET /api/v1/nodes/:id).
 */
import { defineCommand, usage } from './command.js';
import { table } from './table.js';
import type { EventRecord } from '../store/events.js';
import type { NodeRecord } from '../store/nodes.js';

const REMOTE = { profile: { type: 'string' }, json: { type: 'boolean' } } as const;

export function formatNodes(nodes: NodeRecord[]): string {
  if (!nodes.length) return 'no nodes\n';
  return table([
    ['NAME', 'MAC', 'STATE', 'ROLE', 'TAGS', 'IP', 'IMAGE', 'LAST SEEN'],
    ...nodes.map((n) => [
      n.name,
      n.mac,
      n.state,
      n.role ?? '-',
      n.tags.join(',') || '-',
      n.ip ?? '-',
      n.image ?? '-',
      n.lastSeenAt ?? '-',
    ]),
  ]);
}

export function formatNode(node: NodeRecord, events: EventRecord[]): string {
  const inv = node.inventory as { cpu?: { model?: string | null; count?: number }; memoryBytes?: number };
  const lines = [
    `name       ${node.name}`,
    `mac        ${node.mac}`,
    `state      ${node.state}${node.stateReason ? ` (${node.stateReason})` : ''}`,
    `role       ${node.role ?? '-'}`,
    `tags       ${node.tags.join(' ') || '-'}`,
    ...(node.enrolledBy ? [`enrolled   by rule ${node.enrolledBy}`] : []),
    `ip         ${node.ip ?? '-'}`,
    `firmware   ${node.firmware ?? '-'}`,
    `image      ${node.image ?? '-'}`,
    `created    ${node.createdAt}`,
    `last seen  ${node.lastSeenAt ?? '-'}`,
    ...(inv.cpu?.model
      ? [`cpu        ${inv.cpu.model}${inv.cpu.count ? ` (${inv.cpu.count} CPUs)` : ''}`]
      : []),
    ...(inv.memoryBytes ? [`memory     ${(inv.memoryBytes / 2 ** 30).toFixed(1)} GiB`] : []),
    `events     (newest first)`,
    ...events.slice(0, 20).map((e) => `  ${e.at}  ${e.severity.padEnd(5)} ${e.kind}  ${e.message}`),
  ];
  return `${lines.join('\n')}\n`;
}

export const nodeListCommand = defineCommand({
  path: ['node', 'list'],
  help: `  corral node list [--state STATE] [--tag TAG]... [--json] [--profile NAME]
      The master's nodes (name, MAC, state, role, tags, IP, image), through its API; --tag keeps those
      carrying every tag given.
`,
  options: { ...REMOTE, state: { type: 'string' }, tag: { type: 'string', multiple: true } },
  async run({ values, positionals }, ctx) {
    if (positionals.length) usage(`unexpected argument '${positionals[0]}'`);
    const api = await ctx.api(values.profile);
    const query = new URLSearchParams();
    if (values.state) query.set('state', values.state);
    for (const t of values.tag ?? []) query.append('tag', t);
    const q = query.size ? `?${query.toString()}` : '';
    const { nodes } = await api.call<{ nodes: NodeRecord[] }>('GET', `/nodes${q}`);
    ctx.out(values.json ? `${JSON.stringify(nodes, null, 2)}\n` : formatNodes(nodes));
    return 0;
  },
});

export const nodeShowCommand = defineCommand({
  path: ['node', 'show'],
  help: `  corral node show NODE [--json] [--profile NAME]
      One node (by name or MAC): its facts, inventory summary and latest events.
`,
  options: { ...REMOTE },
  async run({ values, positionals }, ctx) {
    const [id, ...extra] = positionals;
    if (!id) usage('usage: corral node show NODE');
    if (extra.length) usage(`unexpected argument '${extra[0]}'`);
    const api = await ctx.api(values.profile);
    const r = await api.call<{ node: NodeRecord; events: EventRecord[] }>(
      'GET',
      `/nodes/${encodeURIComponent(id)}`,
    );
    ctx.out(values.json ? `${JSON.stringify(r, null, 2)}\n` : formatNode(r.node, r.events));
    return 0;
  },
});
