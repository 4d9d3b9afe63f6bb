/**
 * Bounds on unauthenticated enlistment (issue 14): token buckets for NEW MACs, per source address and
 * for the whole master, and the count of what was refused. Pure apart from the clock it is given.
 */
import { z } from 'zod';

export const EnlistRateSchema = z
  .object({
    /** New MACs one source address may enlist at once, and refilled per minute after that. */
    perIpBurst: z.number().int().min(1).max(100_000).default(20),
    perIpPerMinute: z.number().min(0).max(1_000_000).default(60),
    /** New MACs all sources together may enlist at once, and refilled per minute. */
    globalBurst: z.number().int().min(1).max(1_000_000).default(200),
    globalPerMinute: z.number().min(0).max(10_000_000).default(600),
  })
  .strict();
export type EnlistRate = z.infer<typeof EnlistRateSchema>;

export const ENLIST_RATE_DEFAULTS: EnlistRate = {
  perIpBurst: 20,
  perIpPerMinute: 60,
  globalBurst: 200,
  globalPerMinute: 600,
};

/** A token bucket: `burst` tokens, refilled continuously at `perMinute`. */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly burst: number,
    private readonly perMinute: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  private refill(now: number): void {
    if (now > this.at)
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.perMinute) / 60_000);
    this.at = Math.max(this.at, now);
  }

  /** Whether a token is there (without taking it). */
  has(now: number): boolean {
    this.refill(now);
    return this.tokens >= 1;
  }

  take(now: number): void {
    this.refill(now);
    this.tokens -= 1;
  }

  /** Milliseconds until one token is there (Infinity with no refill). */
  waitMs(now: number): number {
    this.refill(now);
    if (this.tokens >= 1) return 0;
    if (this.perMinute <= 0) return Infinity;
    return Math.ceil(((1 - this.tokens) * 60_000) / this.perMinute);
  }

  /** Full again: nothing to remember about this source. */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }
}

/** At most this many per-address buckets are kept; full ones are dropped first (they carry no state). */
const MAX_SOURCES = 4096;

export class NewMacLimiter {
  private readonly global: TokenBucket;
  private readonly perIp = new Map<string, TokenBucket>();

  constructor(
    private readonly rate: EnlistRate,
    private readonly clock: () => number,
  ) {
    this.global = new TokenBucket(rate.globalBurst, rate.globalPerMinute, clock());
  }

  /**
   * Takes a token from both buckets, or none: `{ ok: false, retryAfterSeconds, scope }` when either is
   * empty. A flood from one address thus cannot spend the global budget beyond its own bucket.
   */
  admit(ip: string): { ok: true } | { ok: false; retryAfterSeconds: number; scope: 'address' | 'global' } {
    const now = this.clock();
    const bucket = this.bucketFor(ip, now);
    if (!bucket.has(now))
      return { ok: false, retryAfterSeconds: seconds(bucket.waitMs(now)), scope: 'address' };
    if (!this.global.has(now))
      return { ok: false, retryAfterSeconds: seconds(this.global.waitMs(now)), scope: 'global' };
    bucket.take(now);
    this.global.take(now);
    return { ok: true };
  }

  private bucketFor(ip: string, now: number): TokenBucket {
    let b = this.perIp.get(ip);
    if (b) return b;
    if (this.perIp.size >= MAX_SOURCES) {
      for (const [k, v] of this.perIp) if (v.full(now)) this.perIp.delete(k);
      // Still full of busy sources: forget the oldest (a Map iterates in insertion order).
      while (this.perIp.size >= MAX_SOURCES) {
        const oldest = this.perIp.keys().next().value;
        if (oldest === undefined) break;
        this.perIp.delete(oldest);
      }
    }
    b = new TokenBucket(this.rate.perIpBurst, this.rate.perIpPerMinute, now);
    this.perIp.set(ip, b);
    return b;
  }
}

function seconds(ms: number): number {
  return Number.isFinite(ms) ? Math.max(1, Math.ceil(ms / 1000)) : 3600;
}
