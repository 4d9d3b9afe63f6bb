/**
 * The unauthenticated door of enlistment, kept bounded (issue 14): the strict schema, the new-MAC rate
 * limit, the node credential (nodes/enlist.ts), and a record of what was refused — counters (shown in
 * /api/v1/health) and at most one warning event and one log line per reason per minute, so a flood of
 * refusals cannot itself grow the event log without bound. The API route only adds HTTP around it.
 */
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import { LeaseStore } from '../store/leases.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { zodToCorral } from '../api/errors.js';
import { NewMacLimiter } from './enlist-rate.js';
import { EnlistSchema } from './inventory.js';
import { enlist } from './enlist.js';
import { leasedAddress } from './address.js';

export const REFUSAL_REASONS = ['invalid', 'too-large', 'rate-limited', 'credential'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** One event per reason per this many ms at most; the event says how many were refused since the last. */
const EVENT_INTERVAL_MS = 60_000;

export interface EnlistStats {
  accepted: number;
  created: number;
  credentialsIssued: number;
  refused: Record<RefusalReason, number>;
  limits: FrozenConfig['nodes']['enlistRate'];
}

export class EnlistGuard {
  readonly limiter: NewMacLimiter;
  private readonly counts = { accepted: 0, created: 0, credentialsIssued: 0 };
  private readonly refused: Record<RefusalReason, number> = {
    invalid: 0,
    'too-large': 0,
    'rate-limited': 0,
    credential: 0,
  };
  private readonly pending = new Map<RefusalReason, { n: number; lastAt: number }>();
  /** DHCP server mode: where the node's address comes from (nodes/address.ts). */
  private readonly leases: LeaseStore | undefined;

  constructor(
    private readonly deps: {
      repos: Repos;
      config: FrozenConfig;
      logger: Logger;
      clock?: () => number;
    },
  ) {
    this.limiter = new NewMacLimiter(deps.config.nodes.enlistRate, this.clock);
    this.leases = deps.config.dhcp.mode === 'server' ? new LeaseStore(deps.repos.store) : undefined;
  }

  /**
   * One enlist request: `body` as received, the TCP peer's address and the Bearer credential. Returns
   * what nodes/enlist.ts decided, or throws its coded refusal after counting it.
   */
  enlist(
    body: unknown,
    req: { sourceIp: string | null; credential: string | undefined },
  ): ReturnType<typeof enlist> {
    const parsed = EnlistSchema.safeParse(body);
    if (!parsed.success) {
      const err = zodToCorral(parsed.error);
      this.refusedBecause('invalid', { ip: req.sourceIp, message: err.message });
      throw err;
    }
    const mac = parsed.data.mac;
    const { repos, config } = this.deps;
    try {
      const r = enlist(repos, config, parsed.data, {
        ...req,
        leaseIp: this.leases ? leasedAddress(this.leases, mac, repos.store.now().getTime()) : undefined,
        admitNew: () => this.admitNew(req.sourceIp, mac),
      });
      this.accepted(r.created, r.credentialIssued !== null);
      return r;
    } catch (err) {
      const code = err instanceof CorralError ? err.code : undefined;
      const reason: RefusalReason | undefined =
        code === 'ENLIST_RATE_LIMITED'
          ? 'rate-limited'
          : code === 'NODE_CREDENTIAL_REQUIRED' || code === 'NODE_CREDENTIAL_INVALID'
            ? 'credential'
            : undefined;
      if (reason) this.refusedBecause(reason, { ip: req.sourceIp, mac, message: (err as Error).message });
      throw err;
    }
  }

  private readonly clock = (): number => (this.deps.clock ?? Date.now)();

  /** Throws ENLIST_RATE_LIMITED when a new MAC from `ip` is over the limit. */
  admitNew(ip: string | null, mac: string): void {
    const r = this.limiter.admit(ip ?? 'unknown');
    if (r.ok) return;
    throw new CorralError(
      'ENLIST_RATE_LIMITED',
      `too many new nodes enlisted ${r.scope === 'address' ? `from ${ip ?? 'this address'}` : 'in all'}: ${mac} refused`,
      { retryAfterSeconds: r.retryAfterSeconds, scope: r.scope },
    );
  }

  accepted(created: boolean, credentialIssued: boolean): void {
    this.counts.accepted++;
    if (created) this.counts.created++;
    if (credentialIssued) this.counts.credentialsIssued++;
  }

  /** Counts a refusal; writes an event and a log line for its reason at most once a minute. */
  refusedBecause(
    reason: RefusalReason,
    facts: { ip: string | null; mac?: string | undefined; message: string },
  ): void {
    this.refused[reason]++;
    const now = this.clock();
    const p = this.pending.get(reason) ?? { n: 0, lastAt: -Infinity };
    p.n++;
    this.pending.set(reason, p);
    if (now - p.lastAt < EVENT_INTERVAL_MS) return;
    const n = p.n;
    p.n = 0;
    p.lastAt = now;
    const message = `${n} enlist request${n === 1 ? '' : 's'} refused (${reason}) since the last report; latest from ${facts.ip ?? 'an unknown address'}${facts.mac ? ` for ${facts.mac}` : ''}: ${facts.message}`;
    this.deps.logger.warn({ reason, count: n, ip: facts.ip, mac: facts.mac }, message);
    try {
      this.deps.repos.events.append({
        // A refused credential names the node it tried to take; the others may name no real node.
        nodeMac:
          reason === 'credential' && facts.mac && this.deps.repos.nodes.get(facts.mac) ? facts.mac : null,
        kind: 'node.enlist-refused',
        severity: 'warning',
        message: message.slice(0, 1000),
        actor: 'agent',
        data: { reason, count: n, ip: facts.ip, mac: facts.mac ?? null },
      });
    } catch (err) {
      // A backup master (NOT_PRIMARY) or a full disk: the counter and the log line still say it.
      this.deps.logger.debug({ err }, 'enlist refusal event not written');
    }
  }

  stats(): EnlistStats {
    return { ...this.counts, refused: { ...this.refused }, limits: this.deps.config.nodes.enlistRate };
  }
}
