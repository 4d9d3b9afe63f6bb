/**
 * The primary's view of its backup: the highest sequence the backup has acknowledged (a feed request
 * `since=N` means "I have applied everything up to N"), when it last asked, and the writers waiting for
 * an acknowledgement (synchronous replication).
 */
export class AckTracker {
  acked = 0;
  lastContactAt = 0;
  private waiters: { seq: number; resolve: (ok: boolean) => void; timer: NodeJS.Timeout }[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  /** Records a backup's request; `seq` counts as acknowledged only when its journal matches ours. */
  contact(seq: number | undefined): void {
    this.lastContactAt = this.now();
    if (seq === undefined || seq <= this.acked) return;
    this.acked = seq;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.seq <= seq) {
        clearTimeout(w.timer);
        w.resolve(true);
      } else still.push(w);
    }
    this.waiters = still;
  }

  /** Resolves true once `seq` is acknowledged, false after `timeoutMs`. */
  wait(seq: number, timeoutMs: number): Promise<boolean> {
    if (seq <= this.acked) return Promise.resolve(true);
    return new Promise((resolve) => {
      const entry = {
        seq,
        resolve,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== entry);
          resolve(false);
        }, timeoutMs),
      };
      this.waiters.push(entry);
    });
  }

  fresh(timeoutMs: number): boolean {
    return this.now() - this.lastContactAt < timeoutMs;
  }

  /** A new epoch starts: what the backup acknowledged before is not evidence about it. */
  reset(acked: number): void {
    this.acked = acked;
    this.lastContactAt = this.now();
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    this.waiters = [];
  }
}
