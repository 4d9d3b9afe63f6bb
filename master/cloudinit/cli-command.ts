/**
 * `corral cloud-init ...`: the user-data layers and a node's rendered datasource, through the profile's
 * master (REST API; cli.ts parses the flags declared here).
 */
import { readFile } from 'node:fs/promises';
import { defineCommand, usage } from '../cli/command.js';
import type { CloudInitLayerRecord } from '../store/cloud-init-layers.js';
import type { NodeDatasource } from './service.js';

const HELP = `  corral cloud-init list [--json]
  corral cloud-init show SCOPE [TARGET]
  corral cloud-init set SCOPE [TARGET] --file FILE     (--file - reads stdin)
  corral cloud-init delete SCOPE [TARGET]
  corral cloud-init preview NODE [--part user-data|meta-data|network-config|vendor-data]
      #cloud-config layers merged into deployed nodes' user-data: SCOPE is global (no TARGET), role
      ROLE, tag TAG or node NODE; global first, then role, tags, node (docs/cloud-init.md). Layers are
      Handlebars templates: {{hostname}} {{ip}} {{role}} {{master}} {{mac}} {{tags}} {{instanceId}}.
      \`preview\` prints what the node's cloud-init reads. Through the master of the current profile
      (or --profile NAME); --json prints the layers as JSON.
`;

const OPTIONS = {
  profile: { type: 'string' },
  json: { type: 'boolean' },
  file: { type: 'string' },
  part: { type: 'string' },
} as const;

const PARTS: Record<string, keyof NodeDatasource> = {
  'user-data': 'userData',
  'meta-data': 'metaData',
  'network-config': 'networkConfig',
  'vendor-data': 'vendorData',
};

function layerPath(scope: string | undefined, target: string | undefined): string {
  if (!scope) usage('name a layer: global, role ROLE, tag TAG or node NODE');
  return `/cloud-init/layers/${encodeURIComponent(scope)}${target ? `/${encodeURIComponent(target)}` : ''}`;
}

function label(l: CloudInitLayerRecord): string {
  return l.scope === 'global' ? 'global' : `${l.scope} ${l.target}`;
}

async function readAll(stream: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks).toString('utf8');
}

export const cloudInitCommand = defineCommand({
  path: ['cloud-init'],
  verbs: ['list', 'show', 'set', 'delete', 'preview'],
  help: HELP,
  options: OPTIONS,
  run: async ({ values, positionals: [sub, ...args] }, ctx) => {
    const api = await ctx.api(values.profile);
    switch (sub) {
      case 'list': {
        const { layers } = await api.call<{ layers: CloudInitLayerRecord[] }>('GET', '/cloud-init/layers');
        if (values.json) ctx.out(JSON.stringify(layers, null, 2));
        else
          ctx.out(
            layers
              .map((l) => `${label(l)}\t${l.updatedAt}\t${l.content.split('\n').length} lines`)
              .join('\n') || '(no layers)',
          );
        return 0;
      }
      case 'show': {
        const { layer } = await api.call<{ layer: CloudInitLayerRecord }>('GET', layerPath(args[0], args[1]));
        ctx.out(layer.content.replace(/\n$/, ''));
        return 0;
      }
      case 'set': {
        const file =
          values.file ?? usage('corral cloud-init set SCOPE [TARGET] --file FILE (or --file - for stdin)');
        const content = file === '-' ? await readAll(ctx.stdin) : await readFile(file, 'utf8');
        const { layer } = await api.call<{ layer: CloudInitLayerRecord }>(
          'PUT',
          layerPath(args[0], args[1]),
          {
            content,
          },
        );
        ctx.out(`set cloud-init layer ${label(layer)}`);
        return 0;
      }
      case 'delete':
        await api.call('DELETE', layerPath(args[0], args[1]));
        ctx.out(`deleted cloud-init layer ${args.filter(Boolean).join(' ')}`);
        return 0;
      case 'preview': {
        const node = args[0] ?? usage('usage: corral cloud-init preview NODE');
        const part =
          PARTS[values.part ?? 'user-data'] ?? usage(`--part is one of ${Object.keys(PARTS).join(', ')}`);
        const d = await api.call<NodeDatasource>('GET', `/cloud-init/nodes/${encodeURIComponent(node)}`);
        ctx.out(String(d[part]).replace(/\n$/, ''));
        return 0;
      }
      default:
        return usage(HELP);
    }
  },
});
