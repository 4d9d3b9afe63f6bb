/**
 * `corral rules ...` (enrolment rules) and `corral node tag NODE +a -b`, through the API of the master the
 * profile names (master/enrolment/api.ts). A rule is given by flags, or whole as JSON with --file.
 */
import { readAllStdin } from '../cli/prompt.js';
import { readFileSync } from 'node:fs';
import { defineCommand, usage, type Parsed } from '../cli/command.js';
import { table } from '../cli/table.js';
import { parseTagWords } from '../nodes/tags.js';
import type { NodeRecord } from '../store/nodes.js';
import type { ApplyResult, DryRunEntry, Rule } from './service.js';
import type { RuleMatch, RuleOutcome } from './rule.js';

const RULES_HELP = `  corral rules list [--json]
  corral rules show RULE [--json]
  corral rules add NAME [MATCH FLAGS] [OUTCOME FLAGS] [--limit N] [--position N] [--disabled] | --file RULE.json
  corral rules edit RULE [MATCH FLAGS] [OUTCOME FLAGS] [--limit N|none] | --file RULE.json
  corral rules rm RULE
  corral rules move RULE POSITION
  corral rules enable RULE | corral rules disable RULE
  corral rules dry-run [--json]
  corral rules apply [NODE...]
      Enrolment rules: the first enabled rule that matches a newly discovered machine (and has not
      reached its --limit) names it, sets its role and tags, and deploys it, boots it diskless, or lets
      it wait. dry-run shows what each rule would catch now; apply runs them on discovered nodes.
      Match flags: --mac PREFIX,... (MAC or OUI) --vendor --product --serial --cpu-model (glob, or
      /regex/flags) --cpus --memory-gib --disks --disk-gib --nics --nic-mbps (N, MIN..MAX, MIN.., ..MAX)
      --firmware bios|uefi --subnet CIDR,... --has-tags a,b (tags set by hand, for apply)
      Outcome flags: --name-pattern P ({n} {seq} {mac} {vendor} {product} {serial}) --role R --tags a,b
      --power wol|manual|ipmi|redfish|auto (BMC drivers: --power-address PATTERN with {ip} {ip4}
      {serial} {mac}, e.g. 10.0.5.{ip4}; --power-user U [--power-port N] --power-password-stdin),
      and one of --deploy IMAGE [--layout L] | --diskless ROOT [--persistent] | --wait.
      --json prints the API's answer; --profile NAME picks a saved master. See docs/enrolment-rules.md.
`;

const RULE_OPTIONS = {
  profile: { type: 'string' },
  json: { type: 'boolean' },
  file: { type: 'string' },
  limit: { type: 'string' },
  position: { type: 'string' },
  disabled: { type: 'boolean' },
  mac: { type: 'string' },
  vendor: { type: 'string' },
  product: { type: 'string' },
  serial: { type: 'string' },
  'cpu-model': { type: 'string' },
  cpus: { type: 'string' },
  'memory-gib': { type: 'string' },
  disks: { type: 'string' },
  'disk-gib': { type: 'string' },
  nics: { type: 'string' },
  'nic-mbps': { type: 'string' },
  firmware: { type: 'string' },
  subnet: { type: 'string' },
  'has-tags': { type: 'string' },
  'name-pattern': { type: 'string' },
  role: { type: 'string' },
  tags: { type: 'string' },
  power: { type: 'string' },
  'power-address': { type: 'string' },
  'power-port': { type: 'string' },
  'power-user': { type: 'string' },
  'power-password-stdin': { type: 'boolean' },
  deploy: { type: 'string' },
  layout: { type: 'string' },
  diskless: { type: 'string' },
  persistent: { type: 'boolean' },
  wait: { type: 'boolean' },
} as const;

type Values = Parsed<typeof RULE_OPTIONS>['values'];

/** `8` → exactly 8; `8..`, `..64`, `8..64` → bounds. */
export function parseRange(flag: string, text: string): { min?: number; max?: number } {
  const m = /^(\d+(?:\.\d+)?)?(\.\.)?(\d+(?:\.\d+)?)?$/.exec(text);
  if (!m || (!m[1] && !m[3]) || (!m[2] && m[3])) {
    usage(`--${flag} takes N, MIN..MAX, MIN.. or ..MAX (got '${text}')`);
  }
  const [, lo, dots, hi] = m;
  if (!dots) return { min: Number(lo), max: Number(lo) };
  return { ...(lo ? { min: Number(lo) } : {}), ...(hi ? { max: Number(hi) } : {}) };
}

const list = (s: string): string[] =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

function intFlag(flag: string, text: string): number {
  if (!/^\d{1,15}$/.test(text)) usage(`--${flag} must be a whole number (got '${text}')`);
  return Number(text);
}

/** The match and outcome the flags give, on top of `base` (edit keeps what the flags do not name). */
export function ruleFromFlags(
  v: Values,
  base: { match: RuleMatch; outcome: RuleOutcome },
  powerPassword?: string,
): { match: RuleMatch; outcome: RuleOutcome } {
  const match: Record<string, unknown> = { ...base.match };
  if (v.mac) match['mac'] = list(v.mac);
  if (v.vendor) match['vendor'] = v.vendor;
  if (v.product) match['product'] = v.product;
  if (v.serial) match['serial'] = v.serial;
  if (v['cpu-model']) match['cpuModel'] = v['cpu-model'];
  const ranges = [
    ['cpus', 'cpuCount'],
    ['memory-gib', 'memoryGiB'],
    ['disks', 'diskCount'],
    ['disk-gib', 'diskGiB'],
    ['nics', 'nicCount'],
    ['nic-mbps', 'nicSpeedMbps'],
  ] as const;
  for (const [flag, field] of ranges) {
    const text = v[flag];
    if (text) match[field] = parseRange(flag, text);
  }
  if (v.firmware) match['firmware'] = v.firmware;
  if (v.subnet) match['subnet'] = list(v.subnet);
  if (v['has-tags']) match['tags'] = list(v['has-tags']);
  const outcome: Record<string, unknown> = { ...base.outcome };
  if (v['name-pattern']) outcome['name'] = v['name-pattern'];
  if (v.role) outcome['role'] = v.role;
  if (v.tags) outcome['tags'] = list(v.tags);
  if (v.power === 'wol' || v.power === 'manual') outcome['power'] = { driver: v.power };
  else if (v.power) {
    // A BMC driver: the address pattern and credentials come with it (the rule validation names a gap).
    outcome['power'] = {
      driver: v.power,
      address: v['power-address'] ?? usage(`--power ${v.power} needs --power-address PATTERN`),
      username: v['power-user'] ?? usage(`--power ${v.power} needs --power-user U`),
      ...(v['power-port'] ? { port: intFlag('power-port', v['power-port']) } : {}),
      ...(powerPassword !== undefined ? { password: powerPassword } : {}),
    };
  }
  const actions = [v.deploy, v.diskless, v.wait].filter((a) => a !== undefined).length;
  if (actions > 1) usage('give one of --deploy, --diskless or --wait');
  if (v.layout && v.deploy === undefined) usage('--layout goes with --deploy IMAGE');
  // An empty image or root is passed on, so the rule validation names it rather than it becoming `wait`.
  if (v.deploy !== undefined)
    outcome['action'] = { type: 'deploy', image: v.deploy, ...(v.layout ? { layout: v.layout } : {}) };
  if (v.diskless !== undefined) {
    outcome['action'] = { type: 'diskless', root: v.diskless, ...(v.persistent ? { persistent: true } : {}) };
  }
  if (v.wait) outcome['action'] = { type: 'wait' };
  return { match: match as RuleMatch, outcome: outcome as RuleOutcome };
}

function describeMatch(m: RuleMatch): string {
  const parts = Object.entries(m).map(([k, v]) => {
    if (Array.isArray(v)) return `${k}=${v.join(',')}`;
    if (v && typeof v === 'object') {
      const r = v as { min?: number; max?: number };
      return `${k}=${r.min ?? ''}..${r.max ?? ''}`;
    }
    return `${k}=${String(v)}`;
  });
  return parts.join(' ') || 'any machine';
}

export function describeOutcome(o: RuleOutcome): string {
  const a = o.action;
  const action =
    a.type === 'deploy'
      ? `deploy ${a.image}${a.layout ? `/${a.layout}` : ''}`
      : a.type === 'diskless'
        ? `diskless ${a.root}`
        : 'wait';
  return [
    o.name ? `name ${o.name}` : '',
    o.role ? `role ${o.role}` : '',
    o.tags?.length ? `tags ${o.tags.join(',')}` : '',
    o.power ? `power ${o.power.driver}${'address' in o.power ? ` at ${o.power.address}` : ''}` : '',
    action,
  ]
    .filter(Boolean)
    .join(', ');
}

export function formatRules(rules: Rule[]): string {
  if (!rules.length) return 'no enrolment rules\n';
  return table([
    ['#', 'NAME', 'ON', 'CAUGHT', 'MATCH', 'OUTCOME'],
    ...rules.map((r) => [
      String(r.position),
      r.name,
      r.enabled ? 'yes' : 'no',
      r.limit === null ? String(r.caught) : `${r.caught}/${r.limit}`,
      describeMatch(r.match),
      describeOutcome(r.outcome),
    ]),
  ]);
}

export function formatDryRun(entries: DryRunEntry[]): string {
  if (!entries.length) return 'no enrolment rules\n';
  const lines: string[] = [];
  for (const e of entries) {
    lines.push(
      `${e.rule.position}. ${e.rule.name}${e.rule.enabled ? '' : ' (disabled)'}: ${describeOutcome(e.rule.outcome)}`,
    );
    for (const c of e.catches)
      lines.push(`   catches ${c.name} (${c.mac})${c.as && c.as !== c.name ? ` as ${c.as}` : ''}`);
    for (const p of e.passes) lines.push(`   passes  ${p.name} (${p.mac}): ${p.why}`);
    if (!e.catches.length && !e.passes.length) lines.push('   catches nothing now');
  }
  return `${lines.join('\n')}\n`;
}

export const rulesCommand = defineCommand({
  path: ['rules'],
  verbs: ['list', 'show', 'add', 'edit', 'rm', 'move', 'enable', 'disable', 'dry-run', 'apply'],
  help: RULES_HELP,
  options: RULE_OPTIONS,
  async run({ values: v, positionals }, ctx) {
    const [sub, id, ...more] = positionals;
    const api = await ctx.api(v.profile);
    const out = ctx.out;
    const path = (r: string): string => `/rules/${encodeURIComponent(r)}`;
    const need = (what: string | undefined, name: string): string =>
      what ?? usage(`corral rules ${sub}: give ${name}`);
    const json = (x: unknown): void => out(`${JSON.stringify(x, null, 2)}\n`);
    const powerPassword = async (): Promise<string | undefined> =>
      v['power-password-stdin'] ? readAllStdin(ctx.stdin) : undefined;
    const limitOf = (text: string | undefined): { limit?: number | null } =>
      text === undefined ? {} : { limit: text === 'none' ? null : intFlag('limit', text) };
    switch (sub) {
      case undefined:
      case 'list': {
        const { rules } = await api.call<{ rules: Rule[] }>('GET', '/rules');
        if (v.json) json(rules);
        else out(formatRules(rules));
        return 0;
      }
      case 'show': {
        const { rule } = await api.call<{ rule: Rule }>('GET', path(need(id, 'RULE')));
        if (v.json) json(rule);
        else out(formatRules([rule]));
        return 0;
      }
      case 'add': {
        const name = need(id, 'NAME');
        const body = v.file
          ? { ...(JSON.parse(readFileSync(v.file, 'utf8')) as Record<string, unknown>), name }
          : {
              name,
              ...(v.disabled ? { enabled: false } : {}),
              ...limitOf(v.limit),
              ...ruleFromFlags(
                v,
                { match: {}, outcome: { action: { type: 'wait' } } },
                await powerPassword(),
              ),
            };
        const position = v.position === undefined ? {} : { position: intFlag('position', v.position) };
        const { rule } = await api.call<{ rule: Rule }>('POST', '/rules', { ...body, ...position });
        out(`rule ${rule.name} added at position ${rule.position}\n`);
        return 0;
      }
      case 'edit': {
        const { rule } = await api.call<{ rule: Rule }>('GET', path(need(id, 'RULE')));
        const body = v.file
          ? (JSON.parse(readFileSync(v.file, 'utf8')) as Record<string, unknown>)
          : {
              name: rule.name,
              enabled: v.disabled ? false : rule.enabled,
              limit: rule.limit,
              ...limitOf(v.limit),
              ...ruleFromFlags(v, rule, await powerPassword()),
            };
        const r = await api.call<{ rule: Rule }>('PUT', path(String(rule.id)), body);
        out(formatRules([r.rule]));
        return 0;
      }
      case 'rm':
        await api.call('DELETE', path(need(id, 'RULE')));
        out(`rule ${id} deleted\n`);
        return 0;
      case 'move': {
        const position = intFlag('position', need(more[0], 'POSITION'));
        const { rule } = await api.call<{ rule: Rule }>('POST', `${path(need(id, 'RULE'))}/move`, {
          position,
        });
        out(`rule ${rule.name} is now at position ${rule.position}\n`);
        return 0;
      }
      case 'enable':
      case 'disable': {
        const { rule } = await api.call<{ rule: Rule }>('PATCH', path(need(id, 'RULE')), {
          enabled: sub === 'enable',
        });
        out(`rule ${rule.name} ${rule.enabled ? 'enabled' : 'disabled'}\n`);
        return 0;
      }
      case 'dry-run': {
        const { rules } = await api.call<{ rules: DryRunEntry[] }>('GET', '/rules/dry-run');
        if (v.json) json(rules);
        else out(formatDryRun(rules));
        return 0;
      }
      case 'apply': {
        const nodes = [id, ...more].filter((x): x is string => !!x);
        const { results } = await api.call<{ results: ApplyResult[] }>(
          'POST',
          '/rules/apply',
          nodes.length ? { nodes } : {},
          120_000,
        );
        if (v.json) json(results);
        else {
          for (const r of results) {
            out(
              `${r.node}: ${r.rule ? `rule ${r.rule}: ` : ''}${r.done.join(', ') || 'nothing'}${r.error ? ` — FAILED ${r.error.code}: ${r.error.message}` : ''}\n`,
            );
          }
          if (!results.length) out('no discovered nodes for the rules to act on\n');
        }
        return results.some((r) => r.error) ? 1 : 0;
      }
      default:
        return usage(`corral rules: unknown verb '${sub}' (see corral rules --help)`);
    }
  },
});

export const nodeTagCommand = defineCommand({
  path: ['node', 'tag'],
  help: `  corral node tag NODE [+]TAG... [-TAG...] [--set] [--json] [--profile NAME]
      Adds (+tag, or a bare word) and removes (-tag) a node's tags; --set replaces them all with the
      given ones. Tags select nodes for services, exec and the node list (corral node list --tag T).
`,
  dashWords: true,
  options: { profile: { type: 'string' }, json: { type: 'boolean' }, set: { type: 'boolean' } },
  async run({ values, positionals }, ctx) {
    const [id, ...words] = positionals;
    if (!id) usage('usage: corral node tag NODE +TAG -TAG');
    if (!words.length && !values.set) usage('give tags to add (+t) or remove (-t)');
    const { add, remove } = parseTagWords(words);
    if (values.set && remove.length) usage('--set takes the whole list of tags: no -TAG');
    const api = await ctx.api(values.profile);
    const target = `/nodes/${encodeURIComponent(id)}/tags`;
    const { node } = values.set
      ? await api.call<{ node: NodeRecord }>('PUT', target, { tags: add })
      : await api.call<{ node: NodeRecord }>('POST', target, { add, remove });
    ctx.out(
      values.json
        ? `${JSON.stringify(node, null, 2)}\n`
        : `${node.name}: ${node.tags.join(' ') || '(no tags)'}\n`,
    );
    return 0;
  },
});
