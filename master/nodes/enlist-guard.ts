/**
 * The unauthenticated door of enlistment, kept bounded (issue 14): the new-MAC rate limit, and a record of
 * what was refused — counters (shown in /api/v1/health) and at most one warning event and one log line
 * per reason per minute, so a flood of refusals cannot itself grow the event log without bound.
 */
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { NewMacLimiter } from './enlist-rate.js';

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

  constructor(
    private readonly deps: {
      repos: Repos;
      config: FrozenConfig;
      logger: Logger;
      clock?: () => number;
    },
  ) {
    this.limiter = new NewMacLimiter(deps.config.nodes.enlistRate, this.clock);
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
