export interface LimiterOptions {
  /** Failures allowed inside one window before the key is refused. */
  maxFailures: number;
  windowMs: number;
  now: () => number;
  /** Bound on remembered keys, so a flood of distinct user names cannot grow memory without end. */
  maxKeys?: number;
}

/** How long a key refused only because of attempts still being checked should wait: one password check. */
const PENDING_RETRY_MS = 1000;

/**
 * Counts failed logins per key (a client IP, a user name) in a sliding window. A key with
 * `maxFailures` failures inside the window is refused until the oldest of them leaves it. Refused
 * attempts are not counted: the password is never checked for them, and counting them would let an
 * attacker keep a user locked out for ever by trying once a minute.
 *
 * An attempt is reserved before its password is checked and counted as a failure until it is released:
 * a check takes ~100 ms of scrypt, and counting only after it let 40 concurrent guesses all pass a limit
 * of 10. With reservations, at most `maxFailures` checks per key can be in flight or failed in a window.
 *
 * In memory on purpose: after a restart or fail-over the counts start again, which costs an attacker
 * one more window, and failed logins never write to the replicated store.
 */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();
  private readonly pending = new Map<string, number>();
  private readonly maxKeys: number;

  constructor(private readonly options: LimiterOptions) {
    this.maxKeys = options.maxKeys ?? 10_000;
  }

  /** Milliseconds until `key` may try again; 0 when it may try now. Reserved attempts count as failures. */
  retryAfterMs(key: string): number {
    const recent = this.recent(key);
    const inFlight = this.pending.get(key) ?? 0;
    if (recent.length + inFlight < this.options.maxFailures) return 0;
    if (recent.length < this.options.maxFailures) return PENDING_RETRY_MS;
    const oldestCounted = recent[recent.length - this.options.maxFailures] ?? 0;
    return Math.max(1, oldestCounted + this.options.windowMs - this.options.now());
  }

  /**
   * Holds one attempt for `key` while its password is checked; the caller must end it with `fail` or
   * `release`. Check `retryAfterMs` in the same tick first: both are synchronous, so no other request
   * can slip in between.
   */
  reserve(key: string): void {
    this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
  }

  /** Ends a reservation without counting it (the password was right). */
  release(key: string): void {
    const n = (this.pending.get(key) ?? 0) - 1;
    if (n > 0) this.pending.set(key, n);
    else this.pending.delete(key);
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
