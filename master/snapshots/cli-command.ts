/**
 * `corral snapshot ...`. Three ways to reach restore points, chosen by the flags:
 *   the current profile (`corral login`, or --profile NAME): the running master's API over HTTPS with its
 *     pinned certificate — the normal way, so a restore is journaled and the master's view never goes stale;
 *   --url URL (or CORRAL_URL) with CORRAL_USER/CORRAL_PASSWORD: the same API, the older override;
 *   --data-dir DIR: directly on the data directory, for when the master is stopped (restore refuses
 *     while a master runs on it) — the way back from a database the master can no longer open.
 * cli.ts parses the flags declared here and hands in the environment (STYLE habit 5).
 */
import { join } from 'node:path';
import { urlClient, type CallClient } from '../cli/api-client.js';
import { defineCommand, usage, type Parsed } from '../cli/command.js';
import { openRepos } from '../store/repos.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { installPath } from '../util/paths.js';
import { DB_FILE, listManifests, type Manifest } from './manifest.js';
import { restoreOffline } from './offline.js';
import { RestorePoints, type SnapshotDiff } from './restore-points.js';
import { RetentionPolicySchema, type RetentionPlan, type RetentionPolicy } from './retention.js';

const SNAPSHOT_HELP = `  corral snapshot list|show ID|create [--name N] [--note T]|diff ID [--to ID]
                  |restore ID --confirm NAME|delete ID|retention [--apply] [--keep-last N ...]
                  [--profile NAME | --data-dir DIR [--snapshot-dir DIR]] [--json]
      Master restore points, through the running master's API (the current profile, or --profile;
      --url URL or CORRAL_URL with CORRAL_USER/CORRAL_PASSWORD still work) or on a stopped master's
      data directory (--data-dir). --keep-hourly, --keep-daily and --keep-weekly go with --keep-last.
`;

const OPTIONS = {
  profile: { type: 'string' },
  url: { type: 'string' },
  'data-dir': { type: 'string' },
  'snapshot-dir': { type: 'string' },
  name: { type: 'string' },
  note: { type: 'string' },
  to: { type: 'string' },
  confirm: { type: 'string' },
  apply: { type: 'boolean' },
  'keep-last': { type: 'string' },
  'keep-hourly': { type: 'string' },
  'keep-daily': { type: 'string' },
  'keep-weekly': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** The operations both back ends offer. */
interface Backend {
  list(): Promise<Manifest[]>;
  show(id: string): Promise<Manifest>;
  create(name?: string, note?: string): Promise<Manifest>;
  diff(id: string, to: string): Promise<SnapshotDiff>;
  restore(id: string, confirm: string): Promise<unknown>;
  delete(id: string): Promise<void>;
  retention(apply: boolean, policy?: RetentionPolicy): Promise<RetentionPlan & { policy?: RetentionPolicy }>;
  close(): void;
}

export const snapshotCommand = defineCommand({
  path: ['snapshot'],
  verbs: ['list', 'show', 'create', 'diff', 'restore', 'delete', 'retention'],
  help: SNAPSHOT_HELP,
  options: OPTIONS,
  async run({ values, positionals }, ctx) {
    const url = values.profile === undefined ? (values.url ?? ctx.env['CORRAL_URL']) : undefined;
    const client = url
      ? urlClient(
          url,
          ctx.env['CORRAL_USER'] ?? 'admin',
          ctx.env['CORRAL_PASSWORD'] ?? usage('set CORRAL_PASSWORD for --url'),
        )
      : undefined;
    const logger = ctx.logger('warn');
    return runSnapshot(values, positionals, {
      logger,
      out: ctx.out,
      api: async () => client ?? (await ctx.api(values.profile)),
    });
  },
});

interface SnapshotCliEnv {
  logger: Logger;
  out: (text: string) => void;
  api: () => Promise<CallClient>;
}

type Values = Parsed<typeof OPTIONS>['values'];

async function runSnapshot(values: Values, positionals: string[], env: SnapshotCliEnv): Promise<number> {
  const [verb, id, ...extra] = positionals;
  if (!verb) usage('usage: corral snapshot list|show|create|diff|restore|delete|retention ...');
  if (extra.length) usage(`unexpected argument '${extra[0]}'`);
  const dataDir = values['data-dir'];
  if (dataDir && (values.url || values.profile)) usage('--data-dir excludes --url and --profile');
  const needId = (): string => id ?? usage(`corral snapshot ${verb} needs a restore point id or name`);

  const backend: Backend = dataDir
    ? localBackend(dataDir, values['snapshot-dir'] ?? join(dataDir, 'snapshots'), env.logger)
    : apiBackend(await env.api());
  const print = (value: unknown, text: string): void =>
    env.out(values.json ? `${JSON.stringify(value, null, 2)}\n` : text);
  try {
    switch (verb) {
      case 'list': {
        const list = await backend.list();
        print(list, list.map(formatListLine).join('') || 'no restore points\n');
        return 0;
      }
      case 'show': {
        const m = await backend.show(needId());
        print(m, formatManifest(m));
        return 0;
      }
      case 'create': {
        const m = await backend.create(values.name, values.note);
        print(
          m,
          `created ${m.id}${m.name !== m.id ? ` (${m.name})` : ''}: ${m.dbBytes} bytes in ${m.durationMs} ms\n`,
        );
        return 0;
      }
      case 'diff': {
        const d = await backend.diff(needId(), values.to ?? 'current');
        print(d, formatDiff(d));
        return 0;
      }
      case 'restore': {
        const target = await backend.show(needId());
        if (values.confirm !== target.name && values.confirm !== target.id) {
          throw new CorralError(
            'SNAPSHOT_CONFIRMATION_REQUIRED',
            `restoring replaces the master's state: repeat the name with --confirm ${target.name}`,
          );
        }
        const r = await backend.restore(target.id, values.confirm);
        print(r, `restored ${target.name}\n${JSON.stringify(r, null, 2)}\n`);
        return 0;
      }
      case 'delete':
        await backend.delete(needId());
        print({ deleted: id }, `deleted ${id}\n`);
        return 0;
      case 'retention': {
        const flags = [
          values['keep-last'],
          values['keep-hourly'],
          values['keep-daily'],
          values['keep-weekly'],
        ];
        let policy: RetentionPolicy | undefined;
        if (flags.some((f) => f !== undefined)) {
          const r = RetentionPolicySchema.safeParse({
            ...(flags[0] !== undefined ? { keepLast: Number(flags[0]) } : {}),
            ...(flags[1] !== undefined ? { keepHourly: Number(flags[1]) } : {}),
            ...(flags[2] !== undefined ? { keepDaily: Number(flags[2]) } : {}),
            ...(flags[3] !== undefined ? { keepWeekly: Number(flags[3]) } : {}),
          });
          if (!r.success)
            usage(`retention: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
          policy = r.data;
        }
        const plan = await backend.retention(values.apply ?? false, policy);
        print(
          plan,
          `${values.apply ? 'applied' : 'preview (nothing deleted; add --apply)'}\n` +
            plan.keep.map((k) => `keep    ${k.id}  ${k.reasons.join(', ')}\n`).join('') +
            plan.remove.map((r) => `remove  ${r.id}  ${r.kind}\n`).join(''),
        );
        return 0;
      }
      default:
        return usage(`unknown snapshot command '${verb}'`);
    }
  } finally {
    backend.close();
  }
}

/** Total size of a restore point's files (the database alone for one written before checksums). */
export function restorePointBytes(m: Manifest): number {
  return m.files ? Object.values(m.files).reduce((n, f) => n + f.bytes, 0) : m.dbBytes;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** One line of `corral snapshot list`: id, created, size, database sha256 (12 digits), kind, name, why. */
export function formatListLine(m: Manifest): string {
  const sha = m.files?.[DB_FILE]?.sha256.slice(0, 12) ?? 'unchecked   ';
  const name = m.name === m.id ? '' : `${m.name}  `;
  return `${m.id}  ${m.createdAt}  ${mib(restorePointBytes(m)).padStart(10)}  ${sha}  ${m.kind.padEnd(9)} ${name}${m.reason || m.note}\n`;
}

/** `corral snapshot show`: the facts, then every file with its size and sha256. */
export function formatManifest(m: Manifest): string {
  const lines = [
    `id        ${m.id}`,
    `name      ${m.name}`,
    `kind      ${m.kind}${m.reason ? ` (${m.reason})` : ''}`,
    `created   ${m.createdAt}${m.actor ? ` by ${m.actor}` : ''}`,
    `corral    ${m.corralVersion}, schema version ${m.schemaVersion}`,
    `size      ${restorePointBytes(m)} bytes`,
    ...(m.note ? [`note      ${m.note}`] : []),
    ...(m.corrupt ? ['corrupt   the database was moved aside as it was found (offline restore)'] : []),
    `images    ${m.images.map((i) => i.name).join(', ') || '-'}`,
    `manifest  sha256 ${m.manifestSha256 ?? '- (written before checksums)'}`,
  ];
  if (m.files) {
    lines.push('files');
    const width = Math.max(...Object.keys(m.files).map((f) => f.length));
    for (const [file, sum] of Object.entries(m.files)) {
      lines.push(`  ${file.padEnd(width)}  ${String(sum.bytes).padStart(10)}  sha256 ${sum.sha256}`);
    }
  } else lines.push('files     no checksums (written before checksums existed; integrity check only)');
  return `${lines.join('\n')}\n`;
}

export function formatDiff(d: SnapshotDiff): string {
  const lines = [`diff ${d.from} → ${d.to}`];
  if (!d.tables.some((t) => t.restored) && !d.config.length && !d.templates.length) {
    lines.push('nothing a restore would change');
  }
  for (const t of d.tables) {
    lines.push(
      `${t.table}: +${t.added} -${t.removed} ~${t.changed}${t.restored ? '' : ' (kept as is by a restore)'}`,
    );
    for (const r of t.rows) {
      const sign = r.change === 'added' ? '+' : r.change === 'removed' ? '-' : '~';
      lines.push(`  ${sign} ${r.key}${r.fields ? ` (${r.fields.join(', ')})` : ''}`);
    }
    if (t.truncated) lines.push('  ...');
  }
  for (const c of d.config)
    lines.push(`config ${c.key}: ${JSON.stringify(c.from)} → ${JSON.stringify(c.to)}`);
  for (const t of d.templates) lines.push(`template ${t.change} ${t.file}`);
  return `${lines.join('\n')}\n`;
}

function localBackend(dataDir: string, dir: string, logger: Logger): Backend {
  let repos: ReturnType<typeof openRepos> | undefined;
  const points = (): RestorePoints => {
    repos ??= openRepos({ path: join(dataDir, 'corral.db'), logger });
    return new RestorePoints({ repos, dir, logger, templatesDir: installPath('templates') });
  };
  // Listing and showing read only the folder, so they work even when the database is broken.
  const show = (id: string): Manifest => {
    const all = listManifests(dir);
    const m = all.find((x) => x.id === id) ?? all.find((x) => x.name === id);
    if (!m) throw new CorralError('SNAPSHOT_NOT_FOUND', `no restore point with id or name '${id}'`);
    return m;
  };
  return {
    list: async () => listManifests(dir),
    show: async (id) => show(id),
    create: (name, note) =>
      points().create({ ...(name ? { name } : {}), ...(note ? { note } : {}), kind: 'manual', actor: 'cli' }),
    diff: async (id, to) => points().diff(id, to),
    restore: (id) => restoreOffline({ dataDir, dir, idOrName: id, logger }),
    delete: async (id) => void (await points().delete(id, 'cli')),
    retention: async (apply, policy) => {
      const p = policy ?? RetentionPolicySchema.parse({});
      return {
        policy: p,
        ...(apply ? await points().applyRetention(p, 'cli') : points().previewRetention(p)),
      };
    },
    close: () => repos?.store.close(),
  };
}

function apiBackend(api: CallClient): Backend {
  // A restore or a create of a large store takes minutes, not the usual seconds.
  const call = <T>(method: string, path: string, body?: unknown): Promise<T> =>
    api.call<T>(method, `/snapshots${path}`, body, 600_000);
  const enc = encodeURIComponent;
  return {
    list: async () => (await call<{ snapshots: Manifest[] }>('GET', '')).snapshots,
    show: async (id) => (await call<{ snapshot: Manifest }>('GET', `/${enc(id)}`)).snapshot,
    create: async (name, note) =>
      (
        await call<{ snapshot: Manifest }>('POST', '', {
          ...(name ? { name } : {}),
          ...(note ? { note } : {}),
        })
      ).snapshot,
    diff: (id, to) => call<SnapshotDiff>('GET', `/${enc(id)}/diff?to=${enc(to)}`),
    restore: (id, confirm) => call('POST', `/${enc(id)}/restore`, { confirm }),
    delete: async (id) => call<void>('DELETE', `/${enc(id)}`),
    retention: (apply, policy) =>
      call('POST', `/retention/${apply ? 'apply' : 'preview'}`, policy ? { policy } : {}),
    close: () => undefined,
  };
}
