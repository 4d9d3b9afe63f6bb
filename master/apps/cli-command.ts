/**
 * `corral app ...`: a thin client of the apps REST API (the same validation and errors as the console),
 * through the master of the current profile (or --profile NAME). A declaration is a JSON file (docs/apps.md).
 */
import { readFile } from 'node:fs/promises';
import { defineCommand, usage } from '../cli/command.js';
import { table } from '../cli/table.js';
import type { AppView } from './service.js';
import { publishedText } from './tasks.js';

const APP_HELP = `  corral app list | show NAME | logs NAME [--tail N] | rm NAME | revert NAME | pause NAME | resume NAME
  corral app create --file APP.json
  corral app update NAME --file APP.json
      Apps on the cluster engine (Docker swarm mode on the engine nodes), via the REST API of the master
      of the current profile (or --profile NAME). APP.json is the declaration (docs/apps.md); an update
      with another command, image, environment or health check rolls out as a new version; revert goes
      back to the version before; pause holds the rollout in progress, resume lets it go on.
`;

const APP_OPTIONS = {
  profile: { type: 'string' },
  file: { type: 'string' },
  tail: { type: 'string' },
} as const;

export const appCommand = defineCommand({
  path: ['app'],
  verbs: ['list', 'show', 'logs', 'rm', 'revert', 'pause', 'resume', 'create', 'update'],
  help: APP_HELP,
  options: APP_OPTIONS,
  async run({ values: v, positionals }, ctx) {
    const [sub, name] = positionals;
    const api = await ctx.api(v.profile);
    const call = (method: string, path: string, body?: unknown): Promise<unknown> =>
      api.call(method, path, body, 120_000);
    const need = (label: string): string => name ?? usage(`missing ${label}`);
    const spec = async (): Promise<unknown> =>
      JSON.parse(
        await readFile(v.file ?? usage('give the declaration with --file APP.json'), 'utf8'),
      ) as unknown;
    switch (sub) {
      case 'list': {
        const { apps } = (await call('GET', '/apps')) as { apps: AppView[] };
        ctx.out(
          table([
            ['NAME', 'VERSION', 'RUNNING', 'ROLLOUT', 'LB'],
            ...apps.map((a) => [
              a.name,
              `v${a.version}`,
              `${a.instances.filter((i) => i.state === 'running').length}/${a.spec.instances}`,
              a.update?.state ?? '',
              a.lbService ?? '',
            ]),
          ]),
        );
        return 0;
      }
      case 'show': {
        const { app } = (await call('GET', `/apps/${encodeURIComponent(need('NAME'))}`)) as { app: AppView };
        const rollout = app.update ? ` (rollout ${app.update.state}${app.paused ? ', paused' : ''})` : '';
        ctx.out(`${app.name} v${app.version}${rollout}\n`);
        ctx.out(
          table([
            ['INSTANCE', 'STATE', 'NODE', 'VERSION', 'RESTARTS'],
            ...app.instances.map((i) => [
              String(i.slot),
              i.state,
              // Bridge apps: the node's ports the engine published for the instance, beside the node.
              [i.node ?? '', publishedText(i)].filter(Boolean).join(' '),
              `v${i.version ?? '?'}`,
              String(i.restarts),
            ]),
          ]),
        );
        return 0;
      }
      case 'logs': {
        const tail = v.tail ?? '100';
        const { lines } = (await call(
          'GET',
          `/apps/${encodeURIComponent(need('NAME'))}/logs?tail=${encodeURIComponent(tail)}`,
        )) as { lines: string[] };
        ctx.out(lines.map((l) => `${l}\n`).join(''));
        return 0;
      }
      case 'rm':
        await call('DELETE', `/apps/${encodeURIComponent(need('NAME'))}`);
        return 0;
      case 'revert':
      case 'pause':
      case 'resume':
        await call('POST', `/apps/${encodeURIComponent(need('NAME'))}/${sub}`);
        return 0;
      case 'create':
        await call('POST', '/apps', await spec());
        return 0;
      case 'update':
        await call('PUT', `/apps/${encodeURIComponent(need('NAME'))}`, await spec());
        return 0;
      default:
        return usage(`unknown app command '${sub ?? ''}'`);
    }
  },
});
