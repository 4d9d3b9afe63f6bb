/**
 * Takes scheduled restore points and applies retention. A tick asks the pure `dueSchedules` whether a
 * period (hour, day, week) has no scheduled restore point yet; one restore point covers every due
 * period, then retention runs. Ticks never overlap; a failed tick is logged and the next one retries.
 */
import type { Logger } from '../util/logger.js';
import type { RestorePoints } from './restore-points.js';
import { dueSchedules, type RetentionPolicy, type Schedule } from './retention.js';

export interface SchedulerOptions {
  points: RestorePoints;
  schedule: () => Schedule;
  retention: () => RetentionPolicy;
  logger: Logger;
  tickMs: number;
  now?: () => Date;
}

export class SnapshotScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly now: () => Date;

  constructor(private readonly options: SchedulerOptions) {
    this.now = options.now ?? (() => new Date());
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.options.tickMs);
    this.timer.unref();
    void this.tick();
  }

  /** One check; returns when its restore point and retention are done (tests call it directly). */
  tick(): Promise<void> {
    this.running ??= this.check().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async check(): Promise<void> {
    const { points, logger } = this.options;
    try {
      const due = dueSchedules(this.now(), this.options.schedule(), points.list());
      if (!due.length) return;
      await points.create({ kind: 'scheduled', reason: `scheduled (${due.join(', ')})` });
      const plan = await points.applyRetention(this.options.retention());
      if (plan.remove.length) logger.info({ removed: plan.remove.map((r) => r.id) }, 'retention applied');
    } catch (err) {
      logger.error({ err }, 'scheduled restore point failed');
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
