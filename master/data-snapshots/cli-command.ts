/**
 * `corral data-set ...` and `corral data-snapshot ...`: data sets and their snapshots through the running
 * master's API (the current profile, or --profile). Flags are declared here as data; cli.ts parses them.
 */
import { readFileSync } from 'node:fs';
import type { CallClient } from '../cli/api-client.js';
import { defineCommand, usage } from '../cli/command.js';
import { CorralError } from '../util/errors.js';
import type { DataSnapshotRecord } from '../store/data-sets.js';
import type { ArchiveDiff } from './archive.js';
import type { PublicDataSet, RestoreResult } from './service.js';

/** Snapshots and restores of large databases take a while; the API answers when they are done. */
const LONG_MS = 6 * 3600 * 1000;

const DATA_SET_HELP = `  corral data-set list|show NAME|delete NAME
  corral data-set create NAME --kind files|sqlite|postgresql|mysql --path PATH (--node N | --role R | --tag T)
                  [--host H] [--port N] [--user U] [--database D] [--password-file FILE]
                  [--stop-command CMD] [--start-command CMD] [--hourly] [--daily] [--weekly]
                  [--keep-last N] [--keep-hourly N] [--keep-daily N] [--keep-weekly N]
  corral data-set snapshot NAME [--node N] [--reason TEXT]
  corral data-set retention NAME [--node N] [--apply] [--keep-last N ...]   [--profile NAME] [--json]
      Data sets of nodes (a path and a kind on a node, or every node of a role or tag) and their online
      snapshots, taken on the node over SSH. The password is read from a file (never a flag: shells keep
      history) and sealed by the master.
`;

const DATA_SNAPSHOT_HELP = `  corral data-snapshot list [--node N] [--data-set NAME]|show NAME|diff NAME [--to NAME]|delete NAME
  corral data-snapshot restore NAME --confirm NAME [--node N] [--data-set NAME] [--no-safety]
                  [--profile NAME] [--json]
      Data snapshots of nodes. A restore checks the archive's checksum, takes a safety snapshot of the
      target (unless --no-safety), then stops the service on the node, lays the data, starts and checks it.
`;

const COMMON = { profile: { type: 'string' }, json: { type: 'boolean' } } as const;

const SET_OPTIONS = {
  ...COMMON,
  kind: { type: 'string' },
  path: { type: 'string' },
  node: { type: 'string' },
  role: { type: 'string' },
  tag: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  user: { type: 'string' },
  database: { type: 'string' },
  'password-file': { type: 'string' },
  'stop-command': { type: 'string' },
  'start-command': { type: 'string' },
  hourly: { type: 'boolean' },
  daily: { type: 'boolean' },
  weekly: { type: 'boolean' },
  'keep-last': { type: 'string' },
  'keep-hourly': { type: 'string' },
  'keep-daily': { type: 'string' },
  'keep-weekly': { type: 'string' },
  reason: { type: 'string' },
  apply: { type: 'boolean' },
} as const;

const SNAPSHOT_OPTIONS = {
  ...COMMON,
  node: { type: 'string' },
  'data-set': { type: 'string' },
  to: { type: 'string' },
  confirm: { type: 'string' },
  'no-safety': { type: 'boolean' },
} as const;

const enc = encodeURIComponent;

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) usage(`--${name} takes a whole number`);
  return Number(v);
}

export function formatSnapshotLine(s: DataSnapshotRecord): string {
  const pos = s.position?.walEnd
    ? `lsn ${s.position.walEnd}`
    : s.position?.binlogFile
      ? `binlog ${s.position.binlogFile}:${s.position.binlogPos}`
      : '';
  const stall = s.writerStallMs === null ? 'no lock' : `stall ${s.writerStallMs} ms`;
  return `${s.name}  ${s.createdAt}  ${s.nodeName}  ${s.dataSetName}  ${s.snapshotKind}  ${s.status}  ${s.bytes} bytes  ${s.method ?? ''}  ${pos}  ${stall}\n`;
}

export const dataSetCommand = defineCommand({
  path: ['data-set'],
  verbs: ['list', 'show', 'create', 'delete', 'snapshot', 'retention'],
  help: DATA_SET_HELP,
  options: SET_OPTIONS,
  async run({ values, positionals }, ctx) {
    const [verb, name, ...extra] = positionals;
    if (!verb) usage('usage: corral data-set list|show|create|delete|snapshot|retention ...');
    if (extra.length) usage(`unexpected argument '${extra[0]}'`);
    const needName = (): string => name ?? usage(`corral data-set ${verb} needs a data set name`);
    const api: CallClient = await ctx.api(values.profile);
    const print = (value: unknown, text: string): void =>
      ctx.out(values.json ? `${JSON.stringify(value, null, 2)}\n` : text);
    const retention = {
      ...(values['keep-last'] ? { keepLast: int('keep-last', values['keep-last']) } : {}),
      ...(values['keep-hourly'] ? { keepHourly: int('keep-hourly', values['keep-hourly']) } : {}),
      ...(values['keep-daily'] ? { keepDaily: int('keep-daily', values['keep-daily']) } : {}),
      ...(values['keep-weekly'] ? { keepWeekly: int('keep-weekly', values['keep-weekly']) } : {}),
    };
    switch (verb) {
      case 'list': {
        const r = await api.call<{ dataSets: (PublicDataSet & { nodes: string[] })[] }>('GET', '/data-sets');
        print(
          r.dataSets,
          r.dataSets
            .map(
              (d) =>
                `${d.name}  ${d.kind}  ${d.path}  ${d.nodeMac ? 'node' : d.role ? `role ${d.role}` : `tag ${d.tag}`}  nodes: ${d.nodes.join(',') || '-'}\n`,
            )
            .join('') || 'no data sets\n',
        );
        return 0;
      }
      case 'show': {
        const r = await api.call<{ dataSet: PublicDataSet }>('GET', `/data-sets/${enc(needName())}`);
        print(r.dataSet, `${JSON.stringify(r.dataSet, null, 2)}\n`);
        return 0;
      }
      case 'create': {
        if (!values.kind || !values.path) usage('corral data-set create needs --kind and --path');
        const password = values['password-file']
          ? readFileSync(values['password-file'], 'utf8').replace(/\r?\n$/, '')
          : undefined;
        const body = {
          name: needName(),
          kind: values.kind,
          path: values.path,
          ...(values.node ? { node: values.node } : {}),
          ...(values.role ? { role: values.role } : {}),
          ...(values.tag ? { tag: values.tag } : {}),
          connection: {
            ...(values.host ? { host: values.host } : {}),
            ...(values.port ? { port: int('port', values.port) } : {}),
            ...(values.user ? { user: values.user } : {}),
            ...(values.database ? { database: values.database } : {}),
            ...(password ? { password } : {}),
          },
          ...(values['stop-command'] ? { stopCommand: values['stop-command'] } : {}),
          ...(values['start-command'] ? { startCommand: values['start-command'] } : {}),
          schedule: { hourly: !!values.hourly, daily: !!values.daily, weekly: !!values.weekly },
          ...(Object.keys(retention).length
            ? { retention: { keepLast: 5, keepHourly: 24, keepDaily: 7, keepWeekly: 4, ...retention } }
            : {}),
        };
        const r = await api.call<{ dataSet: PublicDataSet }>('POST', '/data-sets', body);
        print(r.dataSet, `declared ${r.dataSet.name} (${r.dataSet.kind} ${r.dataSet.path})\n`);
        return 0;
      }
      case 'delete':
        await api.call('DELETE', `/data-sets/${enc(needName())}`);
        print({ deleted: name }, `deleted ${name}\n`);
        return 0;
      case 'snapshot': {
        const r = await api.call<{ snapshot: DataSnapshotRecord }>(
          'POST',
          `/data-sets/${enc(needName())}/snapshots`,
          {
            ...(values.node ? { node: values.node } : {}),
            ...(values.reason ? { reason: values.reason } : {}),
          },
          LONG_MS,
        );
        print(r.snapshot, formatSnapshotLine(r.snapshot));
        return 0;
      }
      case 'retention': {
        const body = {
          ...(values.node ? { node: values.node } : {}),
          ...(Object.keys(retention).length
            ? { retention: { keepLast: 5, keepHourly: 24, keepDaily: 7, keepWeekly: 4, ...retention } }
            : {}),
        };
        const plan = await api.call<{ keep: { id: string; reasons: string[] }[]; remove: { id: string }[] }>(
          'POST',
          `/data-sets/${enc(needName())}/retention/${values.apply ? 'apply' : 'preview'}`,
          body,
        );
        print(
          plan,
          [
            ...plan.keep.map((k) => `keep    ${k.id}  (${k.reasons.join(', ')})\n`),
            ...plan.remove.map((r) => `${values.apply ? 'removed' : 'remove '} ${r.id}\n`),
          ].join('') || 'no snapshots\n',
        );
        return 0;
      }
      default:
        usage(`unknown verb '${verb}'`);
    }
  },
});

export const dataSnapshotCommand = defineCommand({
  path: ['data-snapshot'],
  verbs: ['list', 'show', 'diff', 'restore', 'delete'],
  help: DATA_SNAPSHOT_HELP,
  options: SNAPSHOT_OPTIONS,
  async run({ values, positionals }, ctx) {
    const [verb, name, ...extra] = positionals;
    if (!verb) usage('usage: corral data-snapshot list|show|diff|restore|delete ...');
    if (extra.length) usage(`unexpected argument '${extra[0]}'`);
    const needName = (): string => name ?? usage(`corral data-snapshot ${verb} needs a snapshot name`);
    const api: CallClient = await ctx.api(values.profile);
    const print = (value: unknown, text: string): void =>
      ctx.out(values.json ? `${JSON.stringify(value, null, 2)}\n` : text);
    switch (verb) {
      case 'list': {
        const q = new URLSearchParams({
          ...(values.node ? { node: values.node } : {}),
          ...(values['data-set'] ? { dataSet: values['data-set'] } : {}),
        }).toString();
        const r = await api.call<{ snapshots: DataSnapshotRecord[] }>(
          'GET',
          `/data-snapshots${q ? `?${q}` : ''}`,
        );
        print(r.snapshots, r.snapshots.map(formatSnapshotLine).join('') || 'no data snapshots\n');
        return 0;
      }
      case 'show': {
        const r = await api.call<{ snapshot: DataSnapshotRecord }>(
          'GET',
          `/data-snapshots/${enc(needName())}`,
        );
        print(r, `${JSON.stringify(r.snapshot, null, 2)}\n`);
        return 0;
      }
      case 'diff': {
        const r = await api.call<{ to: DataSnapshotRecord | null; diff: ArchiveDiff }>(
          'GET',
          `/data-snapshots/${enc(needName())}/diff${values.to ? `?to=${enc(values.to)}` : ''}`,
        );
        const d = r.diff;
        print(
          r,
          [
            `against ${r.to?.name ?? '(nothing: first snapshot)'}: ${d.added.length} added, ${d.removed.length} removed, ${d.changed.length} changed, ${d.same} same\n`,
            ...d.added.map((f) => `+ ${f.path}  ${f.size}\n`),
            ...d.removed.map((f) => `- ${f.path}  ${f.size}\n`),
            ...d.changed.map((f) => `~ ${f.path}  ${f.from} -> ${f.to}\n`),
          ].join(''),
        );
        return 0;
      }
      case 'restore': {
        const target = needName();
        if (values.confirm !== target) {
          throw new CorralError(
            'SNAPSHOT_CONFIRMATION_REQUIRED',
            `restoring replaces the data on the node: repeat the snapshot's name with --confirm ${target}`,
          );
        }
        const r = await api.call<RestoreResult>(
          'POST',
          `/data-snapshots/${enc(target)}/restore`,
          {
            confirm: values.confirm,
            ...(values.node ? { node: values.node } : {}),
            ...(values['data-set'] ? { dataSet: values['data-set'] } : {}),
            ...(values['no-safety'] ? { safety: false } : {}),
          },
          LONG_MS,
        );
        print(
          r,
          `restored ${r.snapshot.name} into ${r.target.dataSet} on ${r.target.node} in ${r.durationMs} ms\n` +
            (r.safety ? `safety snapshot: ${r.safety.name}\n` : '') +
            r.checks.map((c) => `check: ${c}\n`).join(''),
        );
        return 0;
      }
      case 'delete':
        await api.call('DELETE', `/data-snapshots/${enc(needName())}`);
        print({ deleted: name }, `deleted ${name}\n`);
        return 0;
      default:
        usage(`unknown verb '${verb}'`);
    }
  },
});
