/**
 * A bound on concurrent password checks. Each scrypt check takes ~32 MiB and ~100 ms of a core; without a
 * bound, a flood of guesses from many addresses (each under its own rate limit) would still queue
 * unbounded work on libuv's four threads and the heap. Waiters beyond `maxWaiting` are refused at once,
 * so a caller gets a quick "busy" instead of a request that hangs.
 */
export class HashSlots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly maxActive: number,
    private readonly maxWaiting: number,
  ) {}

  /** Runs `fn` in a slot; undefined, without running it, when every slot and the queue are full. */
  async run<T>(fn: () => Promise<T>): Promise<{ value: T } | undefined> {
    if (this.active >= this.maxActive) {
      if (this.waiting.length >= this.maxWaiting) return undefined;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return { value: await fn() };
    } finally {
      // Hand the slot straight to the next waiter (active stays the same), or free it.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
