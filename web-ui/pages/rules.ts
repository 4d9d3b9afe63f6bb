/**
 * Console pages for enrolment rules (issue 16): the ordered list with counts and limits, its dry run
 * (which current nodes each rule would catch, and which it passes and why), add/edit forms, enable,
 * disable, move, delete and "apply now"; and the node page's tag form. Every action calls the same
 * service as the API (master/enrolment/service.ts, NodeService.tag) with the same minimum role. The form
 * fields carry the CLI's flag names, so the one translation (ruleFromFlags) serves both.
 */
import type { Request, Response, Router } from 'express';
import { roleAllows } from '../../master/api/auth.js';
import { describeOutcome, ruleFromFlags } from '../../master/enrolment/cli-command.js';
import type { Rule } from '../../master/enrolment/service.js';
import type { Enrolment } from '../../master/enrolment/index.js';
import { NodeService } from '../../master/nodes/service.js';
import type { Role } from '../../master/store/users.js';
import { isCorralError } from '../../master/util/errors.js';
import { flash, formField, withFlash } from '../form.js';
import { requireConsoleRole, sendPage, signedIn, type ConsoleContext } from '../page.js';

const TEXT_FIELDS = [
  'mac',
  'vendor',
  'product',
  'serial',
  'cpu-model',
  'cpus',
  'memory-gib',
  'disks',
  'disk-gib',
  'nics',
  'nic-mbps',
  'firmware',
  'subnet',
  'has-tags',
  'name-pattern',
  'role',
  'tags',
  'power',
  'power-address',
  'power-port',
  'power-user',
  'layout',
] as const;

type FormValues = Parameters<typeof ruleFromFlags>[0];

/** The posted form → the rule body the API takes (validated by the same parseRuleSpec). */
function ruleFromForm(req: Request): Record<string, unknown> {
  const v: Record<string, string | boolean | undefined> = {};
  for (const f of TEXT_FIELDS) v[f] = formField(req, f, 400).trim() || undefined;
  const action = formField(req, 'action');
  if (action === 'deploy') v['deploy'] = formField(req, 'image') || '';
  else if (action === 'diskless') {
    v['diskless'] = formField(req, 'root') || '';
    v['persistent'] = formField(req, 'persistent') === 'yes' || undefined;
  } else v['wait'] = true;
  if (action !== 'deploy') v['layout'] = undefined;
  const limit = formField(req, 'limit').trim();
  return {
    name: formField(req, 'name', 64).trim(),
    enabled: formField(req, 'enabled') === 'yes',
    limit: limit === '' ? null : /^\d+$/.test(limit) ? Number(limit) : limit,
    ...ruleFromFlags(
      v as FormValues,
      { match: {}, outcome: { action: { type: 'wait' } } },
      formField(req, 'power-password', 128) || undefined,
    ),
  };
}

const range = (r: { min?: number; max?: number } | undefined): string =>
  !r ? '' : r.min !== undefined && r.min === r.max ? String(r.min) : `${r.min ?? ''}..${r.max ?? ''}`;

/** A stored rule → the form's field values (the inverse of ruleFromForm). */
function formOf(rule: Rule): Record<string, unknown> {
  const m = rule.match;
  const o = rule.outcome;
  const a = o.action;
  return {
    name: rule.name,
    enabled: rule.enabled,
    limit: rule.limit ?? '',
    mac: (m.mac ?? []).join(','),
    vendor: m.vendor ?? '',
    product: m.product ?? '',
    serial: m.serial ?? '',
    'cpu-model': m.cpuModel ?? '',
    cpus: range(m.cpuCount),
    'memory-gib': range(m.memoryGiB),
    disks: range(m.diskCount),
    'disk-gib': range(m.diskGiB),
    nics: range(m.nicCount),
    'nic-mbps': range(m.nicSpeedMbps),
    firmware: m.firmware ?? '',
    subnet: (m.subnet ?? []).join(','),
    'has-tags': (m.tags ?? []).join(','),
    'name-pattern': o.name ?? '',
    role: o.role ?? '',
    tags: (o.tags ?? []).join(','),
    power: o.power?.driver ?? '',
    'power-address': o.power && 'address' in o.power ? o.power.address : '',
    'power-port': o.power && 'port' in o.power && o.power.port ? String(o.power.port) : '',
    'power-user': o.power && 'username' in o.power ? o.power.username : '',
    action: a.type,
    image: a.type === 'deploy' ? a.image : '',
    layout: a.type === 'deploy' ? (a.layout ?? '') : '',
    root: a.type === 'diskless' ? a.root : '',
    persistent: a.type === 'diskless' && a.persistent === true,
  };
}

/** The form fields that describe the match (the rest describe the outcome). */
const MATCH_FIELDS: readonly string[] = TEXT_FIELDS.slice(0, TEXT_FIELDS.indexOf('has-tags') + 1);

function matchSummary(rule: Rule): string {
  const parts = Object.entries(formOf(rule))
    .filter(([k, v]) => MATCH_FIELDS.includes(k) && v !== '')
    .map(([k, v]) => `${k} ${String(v)}`);
  return parts.join('; ') || 'any machine';
}

export function mountRules(router: Router, ctx: ConsoleContext, enrolment: Enrolment): void {
  const role = (res: Response): Role => signedIn(res)?.user.role ?? 'viewer';
  const nodes = new NodeService(ctx.repos);
  const choices = (): Record<string, unknown> => ({
    images: ctx.repos.images.list().map((i) => i.name),
    layouts: ['default', ...Object.keys(ctx.config.deploy.layouts).filter((l) => l !== 'default')],
    roots: ctx.repos.sharedRoots.list().map((r) => r.name),
  });

  /** Runs a form action; a refusal the operator can fix (4xx) comes back as a flash on `back`. */
  const act = (
    path: string,
    minRole: Role,
    back: (req: Request) => string,
    fn: (req: Request, actor: string) => Promise<string> | string,
  ): void => {
    router.post(path, async (req, res) => {
      const actor = requireConsoleRole(res, minRole).user.name;
      try {
        res.redirect(303, withFlash(back(req), 'ok', await fn(req, actor)));
      } catch (err) {
        if (!isCorralError(err) || err.status >= 500) throw err;
        res.redirect(303, withFlash(back(req), 'err', `${err.message}. ${err.hint}`));
      }
    });
  };
  const id = (req: Request): string => String(req.params['id'] ?? '');

  router.get('/rules', (req, res) => {
    const dry = new Map(enrolment.dryRun().map((e) => [e.rule.id, e]));
    const rules = enrolment.list();
    sendPage(ctx, res, 'rules', {
      title: 'Enrolment rules',
      nav: 'rules',
      ...flash(req),
      canAdmin: roleAllows(role(res), 'admin'),
      canOperate: roleAllows(role(res), 'operator'),
      rules: rules.map((r, i) => ({
        ...r,
        first: i === 0,
        last: i === rules.length - 1,
        up: r.position - 1,
        down: r.position + 1,
        counted: r.limit === null ? String(r.caught) : `${r.caught} of ${r.limit}`,
        matchText: matchSummary(r),
        outcomeText: describeOutcome(r.outcome),
        dry: dry.get(r.id),
      })),
      form: { enabled: true, action: 'wait' },
      ...choices(),
    });
  });

  router.get('/rules/:id', (req, res) => {
    const rule = enrolment.find(id(req));
    sendPage(ctx, res, 'rule', {
      title: `Rule ${rule.name}`,
      nav: 'rules',
      ...flash(req),
      canAdmin: roleAllows(role(res), 'admin'),
      rule,
      form: formOf(rule),
      ...choices(),
    });
  });

  act(
    '/rules',
    'admin',
    () => '/rules',
    (req, actor) => {
      const position = formField(req, 'position').trim();
      const r = enrolment.create(
        ruleFromForm(req),
        actor,
        /^\d+$/.test(position) ? Number(position) : undefined,
      );
      return `Rule ${r.name} added at position ${r.position}.`;
    },
  );
  act(
    '/rules/apply',
    'operator',
    () => '/rules',
    async () => {
      const results = await enrolment.apply(undefined);
      const caught = results.filter((r) => r.rule);
      const failed = results.filter((r) => r.error);
      return results.length
        ? `Rules applied to ${results.length} node(s): ${caught.length} caught${failed.length ? `, ${failed.length} failed (${failed.map((f) => `${f.node}: ${f.error?.message}`).join('; ')})` : ''}. ${caught.map((c) => `${c.node} by ${c.rule}`).join(', ')}`
        : 'No discovered or ready node for the rules to act on.';
    },
  );
  act(
    '/rules/:id/edit',
    'admin',
    (req) => `/rules/${encodeURIComponent(id(req))}`,
    (req, actor) => {
      const r = enrolment.update(id(req), ruleFromForm(req), actor);
      return `Rule ${r.name} saved.`;
    },
  );
  act(
    '/rules/:id/enable',
    'admin',
    () => '/rules',
    (req, actor) => {
      const r = enrolment.patch(id(req), { enabled: true }, actor);
      return `Rule ${r.name} enabled.`;
    },
  );
  act(
    '/rules/:id/disable',
    'admin',
    () => '/rules',
    (req, actor) => {
      const r = enrolment.patch(id(req), { enabled: false }, actor);
      return `Rule ${r.name} disabled.`;
    },
  );
  act(
    '/rules/:id/move',
    'admin',
    () => '/rules',
    (req, actor) => {
      const r = enrolment.move(id(req), Number(formField(req, 'position')), actor);
      return `Rule ${r.name} is now at position ${r.position}.`;
    },
  );
  act(
    '/rules/:id/delete',
    'admin',
    () => '/rules',
    (req, actor) => {
      const r = enrolment.find(id(req));
      enrolment.remove(String(r.id), actor);
      return `Rule ${r.name} deleted.`;
    },
  );

  // The node page's tag form: the whole list, space- or comma-separated.
  act(
    '/nodes/:id/tags',
    'operator',
    (req) => `/nodes/${encodeURIComponent(id(req))}`,
    (req, actor) => {
      const node = nodes.find(id(req));
      const tags = formField(req, 'tags', 1100)
        .split(/[\s,]+/)
        .filter(Boolean);
      const n = nodes.tag(node, { set: tags }, actor);
      return `${n.name}: tags ${n.tags.join(' ') || '(none)'}.`;
    },
  );
}
