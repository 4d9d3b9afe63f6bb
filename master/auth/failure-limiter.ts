export interface LimiterOptions {
  /** Failures allowed inside one window before the key is refused. */
  maxFailures: number;
  windowMs: number;
  now: () => number;
  /** Bound on remembered keys, so a flood of distinct user names cannot grow memory without end. */
  maxKeys?: number;
}

/**
 * Counts failed logins per key (a client IP, a user name) in a sliding window. A key with
 * `maxFailures` failures inside the window is refused until the oldest of them leaves it. Refused
 * attempts are not counted: the password is never checked for them, and counting them would let an
 * attacker keep a user locked out for ever by trying once a minute.
 *
 * In memory on purpose: after a restart or fail-over the counts start again, which costs an attacker
 * one more window, and failed logins never write to the replicated store.
 */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();
  private readonly maxKeys: number;

  constructor(private readonly options: LimiterOptions) {
    this.maxKeys = options.maxKeys ?? 10_000;
  }

  /** Milliseconds until `key` may try again; 0 when it may try now. */
  retryAfterMs(key: string): number {
    const recent = this.recent(key);
    if (recent.length < this.options.maxFailures) return 0;
    const oldestCounted = recent[recent.length - this.options.maxFailures] ?? 0;
    return Math.max(1, oldestCounted + this.options.windowMs - this.options.now());
  }

  fail(key: string): void {
    const recent = this.recent(key);
    recent.push(this.options.now());
    this.failures.delete(key);
    if (this.failures.size >= this.maxKeys) {
      // Maps iterate in insertion order and `recent` re-inserts on every failure: the first key is the stalest.
      const stalest = this.failures.keys().next().value;
      if (stalest !== undefined) this.failures.delete(stalest);
    }
    this.failures.set(key, recent);
  }

  reset(key: string): void {
    this.failures.delete(key);
  }

  private recent(key: string): number[] {
    const since = this.options.now() - this.options.windowMs;
    const kept = (this.failures.get(key) ?? []).filter((t) => t > since);
    if (kept.length === 0) this.failures.delete(key);
    return kept;
  }
}
