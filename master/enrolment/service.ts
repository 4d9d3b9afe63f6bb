/**
 * Enrolment rules (issue 16), the Foreman discovery-rule / MAAS auto-tag idea for Corral: an ordered list;
 * when a machine is discovered (or on `apply`), the first enabled rule that matches it and has not reached
 * its limit names it, gives it a role and tags, a power-driver default, and deploys it, boots it diskless,
 * or leaves it waiting. The deploy and the diskless assignment go through the same services as the API's
 * (master/deploy/deployer.ts, master/sharedroot/), so they write the same events. Every automatic act is
 * an event and an audit entry whose actor is `rule:NAME`.
 */
import type { FrozenConfig } from '../config.js';
import type { Deployer } from '../deploy/deployer.js';
import { resolveLayout } from '../deploy/deploy.js';
import { findImage } from '../images/registry.js';
import { NodeService } from '../nodes/service.js';
import { applyTagChange } from '../nodes/tags.js';
import type { PowerControl } from '../remote/power.js';
import type { SharedRootSubsystem } from '../sharedroot/index.js';
import type { RuleRecord } from '../store/enrolment-rules.js';
import type { NodeRecord, NodeState } from '../store/nodes.js';
import type { Repos } from '../store/repos.js';
import { CorralError, isCorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { factsOf, firstMatchingRule, mismatch } from './match.js';
import { renderName } from './name-pattern.js';
import { bmcAddressFor } from './power-outcome.js';
import { parseRuleSpec, RuleMatchSchema, RuleOutcomeSchema, type RuleSpec } from './rule.js';

/** States a rule may act on: machines nobody has put to work yet. */
export const ENROLLABLE_STATES: readonly NodeState[] = ['discovered', 'ready'];

/** A stored rule with its match and outcome parsed (they were validated when saved). */
export interface Rule extends RuleSpec {
  id: number;
  position: number;
  caught: number;
  createdAt: string;
  updatedAt: string;
}

export function ruleOf(r: RuleRecord): Rule {
  return {
    id: r.id,
    position: r.position,
    name: r.name,
    enabled: r.enabled,
    limit: r.maxNodes,
    caught: r.caught,
    match: RuleMatchSchema.parse(r.match),
    outcome: RuleOutcomeSchema.parse(r.outcome),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

export interface DryRunEntry {
  rule: Rule;
  /** Nodes the rule would catch now, in order. */
  catches: { name: string; mac: string; as: string | null }[];
  /** Nodes it matches but leaves: an earlier rule takes them, or its limit is reached. */
  passes: { name: string; mac: string; why: string }[];
}

export interface ApplyResult {
  node: string;
  mac: string;
  rule: string | null;
  /** What was done (names, role, tags, action), or why nothing. */
  done: string[];
  error?: { code: string; message: string };
}

export interface EnrolmentDeps {
  repos: Repos;
  config: FrozenConfig;
  logger: Logger;
  deployer: Pick<Deployer, 'deploy'>;
  sharedRoot?: Pick<SharedRootSubsystem, 'roots' | 'reconcile'> | undefined;
  power?: Pick<PowerControl, 'configure' | 'sealRuleSecret' | 'openRuleSecret'> | undefined;
}

export class Enrolment {
  private readonly nodes: NodeService;
  private readonly log: Logger;
  /** Serialises rule runs: each reads the counts the previous one wrote (limits hold under a burst). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: EnrolmentDeps) {
    this.nodes = new NodeService(deps.repos);
    this.log = deps.logger.child({ module: 'enrolment' });
  }

  list(): Rule[] {
    return this.deps.repos.enrolmentRules.list().map(ruleOf);
  }

  find(id: string): Rule {
    const rules = this.deps.repos.enrolmentRules;
    const r = (/^\d+$/.test(id) ? rules.get(Number(id)) : undefined) ?? rules.getByName(id);
    if (!r) throw new CorralError('RULE_NOT_FOUND', `no enrolment rule with id or name '${id}'`);
    return ruleOf(r);
  }

  /** Refuses a rule whose image, layout or shared root does not exist now (RULE_TARGET_UNKNOWN). */
  private checkTargets(spec: RuleSpec): void {
    const a = spec.outcome.action;
    try {
      if (a.type === 'deploy') {
        findImage(this.deps.repos, a.image);
        resolveLayout(this.deps.config, a.layout);
      }
      if (a.type === 'diskless') {
        if (!this.deps.sharedRoot) throw new CorralError('RULE_TARGET_UNKNOWN', 'shared roots are off');
        this.deps.sharedRoot.roots.get(a.root);
      }
    } catch (err) {
      if (isCorralError(err) && err.code !== 'RULE_TARGET_UNKNOWN') {
        throw new CorralError('RULE_TARGET_UNKNOWN', `outcome.action: ${err.message}`);
      }
      throw err;
    }
  }

  private audit(actor: string, action: string, target: string | null, detail: string, ok = true): void {
    try {
      this.deps.repos.audit.append({
        actor,
        via: 'system',
        action,
        target,
        outcome: ok ? 'ok' : 'failed',
        detail,
      });
    } catch (err) {
      this.log.warn({ err }, 'could not write the audit log');
    }
  }

  private fields(spec: RuleSpec): Parameters<Repos['enrolmentRules']['insertIn']>[1] {
    return {
      name: spec.name,
      enabled: spec.enabled,
      maxNodes: spec.limit,
      match: spec.match as Record<string, unknown>,
      outcome: spec.outcome as Record<string, unknown>,
    };
  }

  /**
   * A BMC power outcome's password is sealed before the rule is stored (write-only, as a node's BMC
   * password is); an edit without one keeps the sealed one of the rule it replaces.
   */
  private sealPower(spec: RuleSpec, previous?: Rule): RuleSpec {
    const p = spec.outcome.power;
    if (!p || !('address' in p)) return spec;
    const { password, ...rest } = p;
    const before = previous?.outcome.power;
    const kept = before && 'passwordSealed' in before ? before.passwordSealed : undefined;
    let sealed = rest.passwordSealed ?? kept;
    if (password !== undefined) {
      if (!this.deps.power) throw new CorralError('RULE_INVALID', 'outcome.power: power control is off');
      sealed = this.deps.power.sealRuleSecret(password);
    }
    if (!sealed)
      throw new CorralError('RULE_INVALID', `outcome.power: the ${p.driver} driver needs a password`);
    return { ...spec, outcome: { ...spec.outcome, power: { ...rest, passwordSealed: sealed } } };
  }

  create(input: unknown, actor: string | null, position?: number): Rule {
    const spec = this.sealPower(parseRuleSpec(input));
    this.checkTargets(spec);
    const { repos } = this.deps;
    if (repos.enrolmentRules.getByName(spec.name)) {
      throw new CorralError('CONFLICT', `an enrolment rule named ${spec.name} exists`);
    }
    return ruleOf(
      repos.store.write((journal) => {
        const r = repos.enrolmentRules.insertIn(journal, this.fields(spec), position);
        repos.events.appendIn(journal, {
          kind: 'rule.created',
          message: `enrolment rule ${r.name} added at position ${r.position}`,
          actor,
          data: { rule: r.name, id: r.id },
        });
        return r;
      }),
    );
  }

  /** Replaces a rule's definition; its count of caught machines is kept. */
  update(id: string, input: unknown, actor: string | null): Rule {
    const current = this.find(id);
    const spec = this.sealPower(parseRuleSpec(input), current);
    this.checkTargets(spec);
    const { repos } = this.deps;
    const other = repos.enrolmentRules.getByName(spec.name);
    if (other && other.id !== current.id) {
      throw new CorralError('CONFLICT', `an enrolment rule named ${spec.name} exists`);
    }
    return ruleOf(
      repos.store.write((journal) => {
        const r = repos.enrolmentRules.updateIn(journal, current.id, this.fields(spec));
        repos.events.appendIn(journal, {
          kind: 'rule.updated',
          message: `enrolment rule ${r.name} changed`,
          actor,
          data: { rule: r.name, id: r.id },
        });
        return r;
      }),
    );
  }

  /** The rule as stored, with `patch` applied to its fields (enable/disable, a new limit). */
  patch(id: string, patch: Partial<RuleSpec>, actor: string | null): Rule {
    const r = this.find(id);
    const { name, enabled, limit, match, outcome } = { ...r, ...patch };
    return this.update(String(r.id), { name, enabled, limit, match, outcome }, actor);
  }

  move(id: string, position: number, actor: string | null): Rule {
    const r = this.find(id);
    if (!Number.isInteger(position) || position < 1) {
      throw new CorralError('RULE_INVALID', `position: ${position} is not a position (1 is the first rule)`);
    }
    const { repos } = this.deps;
    return ruleOf(
      repos.store.write((journal) => {
        const moved = repos.enrolmentRules.moveIn(journal, r.id, position);
        repos.events.appendIn(journal, {
          kind: 'rule.moved',
          message: `enrolment rule ${moved.name} moved to position ${moved.position}`,
          actor,
          data: { rule: moved.name, from: r.position, to: moved.position },
        });
        return moved;
      }),
    );
  }

  remove(id: string, actor: string | null): void {
    const r = this.find(id);
    const { repos } = this.deps;
    repos.store.write((journal) => {
      repos.enrolmentRules.deleteIn(journal, r.id);
      repos.events.appendIn(journal, {
        kind: 'rule.deleted',
        message: `enrolment rule ${r.name} deleted (it had caught ${r.caught})`,
        actor,
        data: { rule: r.name, id: r.id },
      });
    });
  }

  private candidates(): NodeRecord[] {
    return this.deps.repos.nodes
      .list()
      .filter((n) => ENROLLABLE_STATES.includes(n.state) && n.enrolledBy === null);
  }

  /**
   * What the rules would do now to the machines they may act on (discovered or ready, not enrolled yet):
   * the same matcher as enrolment, with the counts advanced as each node is caught, in node order.
   */
  dryRun(): DryRunEntry[] {
    const rules = this.list();
    const counts = new Map(rules.map((r) => [r.id, r.caught]));
    const entries = new Map(rules.map((r) => [r.id, { rule: r, catches: [], passes: [] } as DryRunEntry]));
    for (const node of this.candidates()) {
      const facts = factsOf(node);
      const winner = firstMatchingRule(rules, facts, counts);
      if (winner) {
        const n = (counts.get(winner.id) ?? 0) + 1;
        counts.set(winner.id, n);
        const as = winner.outcome.name ? (this.nameFor(winner, node, n) ?? null) : null;
        entries.get(winner.id)!.catches.push({ name: node.name, mac: node.mac, as });
      }
      for (const r of rules) {
        if (r.id === winner?.id || mismatch(r.match, facts) !== null) continue;
        const why = !r.enabled
          ? 'rule disabled'
          : winner && winner.position < r.position
            ? `caught first by ${winner.name}`
            : `limit ${r.limit} reached`;
        entries.get(r.id)!.passes.push({ name: node.name, mac: node.mac, why });
      }
    }
    return [...entries.values()];
  }

  /** A free node name from the rule's pattern, the `{n}` advancing past names already taken. */
  private nameFor(rule: Rule, node: NodeRecord, n: number): string | undefined {
    const pattern = rule.outcome.name;
    if (!pattern) return undefined;
    const inv = node.inventory as { dmi?: { vendor?: string; product?: string; serial?: string } };
    const values = {
      seq: node.seqNo,
      mac: node.mac.replace(/:/g, ''),
      vendor: inv.dmi?.vendor,
      product: inv.dmi?.product,
      serial: inv.dmi?.serial,
    };
    for (let k = n; k < n + 1000; k++) {
      const name = renderName(pattern, { ...values, n: k });
      if (!name) return undefined;
      const holder = this.deps.repos.nodes.getByName(name);
      if (!holder || holder.mac === node.mac) return name;
      if (!pattern.includes('{n}')) return undefined;
    }
    return undefined;
  }

  /** Called once a new machine is recorded (the enlist route): runs the rules on it in the background. */
  onDiscovered(node: NodeRecord): void {
    void this.enqueue(() => this.enrol(node.mac)).catch((err: unknown) =>
      this.log.error({ err, mac: node.mac }, 'enrolment failed'),
    );
  }

  /** `apply`: runs the rules now on the named machines, or on every one they may act on. */
  async apply(ids: readonly string[] | undefined): Promise<ApplyResult[]> {
    const macs = ids?.length ? ids.map((id) => this.nodes.find(id).mac) : this.candidates().map((n) => n.mac);
    return this.enqueue(async () => {
      const results: ApplyResult[] = [];
      for (const mac of macs) results.push(await this.enrol(mac));
      return results;
    });
  }

  /** Resolves once no rule run is in flight (close waits for it before the store closes). */
  async idle(): Promise<void> {
    await this.queue;
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Catches one machine: the first matching rule's count goes up and the node's name, role, tags and
   * `enrolledBy` change in one transaction with its `enrolment.matched` event; then the power default and
   * the action, each through its own service. A failed action (say the image was deleted since the rule
   * was saved) leaves the node caught and waiting, with a warning event and a failed audit entry.
   */
  private async enrol(mac: string): Promise<ApplyResult> {
    const { repos } = this.deps;
    const node = repos.nodes.get(mac);
    if (!node) return { node: mac, mac, rule: null, done: ['node deleted'] };
    const base = { node: node.name, mac };
    if (!ENROLLABLE_STATES.includes(node.state)) {
      return { ...base, rule: null, done: [`${node.state}: rules act on discovered or ready nodes`] };
    }
    if (node.enrolledBy !== null)
      return { ...base, rule: null, done: [`already enrolled by ${node.enrolledBy}`] };
    const rules = this.list();
    const rule = firstMatchingRule(rules, factsOf(node), new Map(rules.map((r) => [r.id, r.caught])));
    if (!rule) {
      // Said once per machine when there are rules at all, so "why was it not deployed?" has an answer.
      if (rules.length) {
        repos.events.append({
          nodeMac: mac,
          kind: 'enrolment.unmatched',
          message: `${node.name}: no enabled enrolment rule matches it (or each that does reached its limit); it waits`,
          actor: 'enrolment',
          data: { rules: rules.length },
        });
      }
      return { ...base, rule: null, done: ['no rule matches'] };
    }
    const actor = `rule:${rule.name}`;
    const { outcome } = rule;
    const done: string[] = [];
    const caught = repos.store.write((journal) => {
      const counted = repos.enrolmentRules.countCaughtIn(journal, rule.id);
      const name = this.nameFor(rule, node, counted.caught);
      const tags = outcome.tags?.length ? applyTagChange(node.tags, { add: outcome.tags }) : undefined;
      const patch = {
        enrolledBy: rule.name,
        ...(name && name !== node.name ? { name } : {}),
        ...(outcome.role ? { role: outcome.role } : {}),
        ...(tags ? { tags } : {}),
      };
      const n = repos.nodes.patchIn(journal, node.mac, patch);
      if (name && name !== node.name) done.push(`renamed ${node.name} → ${name}`);
      if (outcome.name && !name)
        done.push(`name pattern ${outcome.name} gave no free name: kept ${node.name}`);
      if (outcome.role) done.push(`role ${outcome.role}`);
      if (tags) done.push(`tags ${outcome.tags!.join(' ')}`);
      repos.events.appendIn(journal, {
        nodeMac: node.mac,
        kind: 'enrolment.matched',
        message: `${n.name} caught by enrolment rule ${rule.name} (${counted.caught}${rule.limit ? ` of ${rule.limit}` : ''}): ${done.join(', ') || 'no changes'}; next: ${outcome.action.type}`,
        actor,
        data: { rule: rule.name, ruleId: rule.id, count: counted.caught, ...patch, action: outcome.action },
      });
      return n;
    });
    this.audit(actor, 'enrolment.matched', caught.name, `${node.mac}: ${done.join(', ') || 'no changes'}`);
    this.log.info({ mac, rule: rule.name, name: caught.name }, 'enrolment rule matched');

    const result: ApplyResult = { node: caught.name, mac, rule: rule.name, done };
    try {
      const p = outcome.power;
      if (p && this.deps.power && (p.driver === 'wol' || p.driver === 'manual')) {
        this.deps.power.configure(
          caught,
          { driver: p.driver, ...(p.driver === 'wol' ? { wolMac: caught.mac } : {}) },
          actor,
        );
        done.push(`power driver ${p.driver}`);
        this.audit(actor, 'enrolment.power', caught.name, `power driver ${p.driver}`);
      } else if (p && this.deps.power && 'address' in p) {
        const where = bmcAddressFor(p.address, caught);
        if ('missing' in where) throw new CorralError('RULE_INVALID', `outcome.power: ${where.missing}`);
        this.deps.power.configure(
          caught,
          {
            driver: p.driver,
            address: where.address,
            port: p.port,
            username: p.username,
            password: this.deps.power.openRuleSecret(p.passwordSealed ?? ''),
          },
          actor,
        );
        const what = `power driver ${p.driver} at ${where.address}${p.port ? `:${p.port}` : ''}`;
        done.push(what);
        this.audit(actor, 'enrolment.power', caught.name, what);
      }
      const action = outcome.action;
      if (action.type === 'deploy') {
        const { deployment, reboot } = await this.deps.deployer.deploy(caught, {
          image: action.image,
          layout: action.layout,
          actor,
        });
        done.push(`deploy ${action.image} (deployment ${deployment.id}, reboot by ${reboot})`);
        this.audit(
          actor,
          'enrolment.deploy',
          caught.name,
          `deploy ${action.image} layout ${deployment.layout}`,
        );
      } else if (action.type === 'diskless') {
        if (!this.deps.sharedRoot) throw new CorralError('RULE_TARGET_UNKNOWN', 'shared roots are off');
        this.deps.sharedRoot.roots.assign(caught, action.root, {
          ...(action.persistent !== undefined ? { persistent: action.persistent } : {}),
          actor,
        });
        await this.deps.sharedRoot.reconcile();
        done.push(`diskless from ${action.root}`);
        this.audit(actor, 'enrolment.diskless', caught.name, `diskless from shared root ${action.root}`);
      }
    } catch (err) {
      const e = isCorralError(err) ? err : new CorralError('INTERNAL', String(err));
      result.error = { code: e.code, message: e.message };
      repos.events.append({
        nodeMac: mac,
        kind: 'enrolment.failed',
        severity: 'warning',
        message: `enrolment rule ${rule.name} could not ${outcome.action.type} ${caught.name}: ${e.message}`,
        actor,
        data: { rule: rule.name, code: e.code },
      });
      this.audit(actor, `enrolment.${outcome.action.type}`, caught.name, `${e.code}: ${e.message}`, false);
      this.log.warn({ mac, rule: rule.name, err: e.message }, 'enrolment action failed');
    }
    return result;
  }
}
