/**
 * Faults of the master's subsystems (dhcp, tftp, and the process backstop), counted, logged at a bounded
 * rate and shown in GET /api/v1/health as `subsystems`. A fault is an exception that reached a
 * subsystem's boundary (a socket's message handler, a send, a timer): it is caught there, so one bad
 * datagram or one bug costs that one request, not the whole master (issue 14, finding 1).
 *
 * `dropped` counts datagrams refused before any parsing because their source is impossible (source port
 * 0, a broadcast or multicast source address; see udp-source.ts). They are not faults: nothing broke.
 */
import type { Logger } from './logger.js';

export interface FaultRecord {
  at: string;
  message: string;
}

export interface SubsystemHealth {
  faults: number;
  lastFault: FaultRecord | null;
  dropped: number;
}

/**
 * At most `perWindow` lines per window and kind; the rest are counted and reported in one line when the
 * next window opens, so a flood of garbage cannot also flood the log.
 */
export class RateLimitedLog {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly perWindow = 10,
    private readonly windowMs = 10_000,
  ) {}

  write(level: 'warn' | 'error', kind: string, fields: Record<string, unknown>, msg: string): void {
    const t = this.now();
    let w = this.windows.get(kind);
    if (!w || t - w.start >= this.windowMs) {
      if (w && w.count > this.perWindow) {
        this.log.warn({ kind, suppressed: w.count - this.perWindow }, 'similar log lines suppressed');
      }
      w = { start: t, count: 0 };
      this.windows.set(kind, w);
    }
    w.count++;
    if (w.count <= this.perWindow) this.log[level](fields, msg);
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

export class SubsystemFaults {
  private faults = 0;
  private dropped = 0;
  private lastFault: FaultRecord | null = null;
  private readonly limited: RateLimitedLog;

  constructor(
    readonly name: string,
    log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.limited = new RateLimitedLog(log, now);
  }

  /** An exception caught at this subsystem's boundary: counted, remembered, logged (rate-limited). */
  record(err: unknown, fields: Record<string, unknown> = {}, what = 'subsystem fault'): void {
    this.faults++;
    this.lastFault = { at: new Date(this.now()).toISOString(), message: describe(err) };
    this.limited.write('error', 'fault', { subsystem: this.name, err, ...fields }, `${what}; still serving`);
  }

  /** A datagram refused for its impossible source (not a fault: nothing broke). */
  drop(reason: string, from: string): void {
    this.dropped++;
    this.limited.write(
      'warn',
      'drop',
      { subsystem: this.name, from, reason, dropped: this.dropped },
      'datagram from an impossible source dropped',
    );
  }

  /**
   * Wraps an event handler (socket message, timer, setImmediate) so that a throw is a counted fault of
   * this subsystem, not an uncaught exception of the process.
   */
  guard<A extends unknown[]>(what: string, fn: (...args: A) => void): (...args: A) => void {
    return (...args: A) => {
      try {
        fn(...args);
      } catch (err) {
        this.record(err, { in: what });
      }
    };
  }

  health(): SubsystemHealth {
    return { faults: this.faults, lastFault: this.lastFault, dropped: this.dropped };
  }
}

/** The master's fault registry: one SubsystemFaults per name, kept across restarts of a subsystem. */
export class Faults {
  private readonly subsystems = new Map<string, SubsystemFaults>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  subsystem(name: string): SubsystemFaults {
    let s = this.subsystems.get(name);
    if (!s) {
      s = new SubsystemFaults(name, this.log.child({ module: name }), this.now);
      this.subsystems.set(name, s);
    }
    return s;
  }

  snapshot(): Record<string, SubsystemHealth> {
    return Object.fromEntries([...this.subsystems].map(([name, s]) => [name, s.health()]));
  }
}

export interface BackstopOptions {
  /** More faults than this within `windowMs` and the process exits for a clean restart. Default 10. */
  budget?: number;
  windowMs?: number;
  /** The process (tests pass an EventEmitter); default `process`. */
  target?: Pick<NodeJS.Process, 'on' | 'off'>;
  exit?: (code: number) => void;
  now?: () => number;
}

/**
 * The last resort for exceptions no subsystem boundary caught: counted as faults of `process`, logged
 * with their stack, and the master keeps serving. Node warns that state after an uncaught exception may
 * be inconsistent, so the boundaries (socket handlers, sends, timers, Express) are the real defence and
 * this is a backstop: an escape is a bug to fix, not a way of working. A burst of them (more than
 * `budget` in `windowMs`) means something keeps failing, and the process exits with 1 so that systemd
 * starts a clean master (and, with HA, the backup takes over) rather than limp on.
 */
export function installProcessBackstop(
  faults: Faults,
  logger: Logger,
  opts: BackstopOptions = {},
): () => void {
  const target = opts.target ?? process;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const now = opts.now ?? Date.now;
  const budget = opts.budget ?? 10;
  const windowMs = opts.windowMs ?? 60_000;
  const recent: number[] = [];
  const subsystem = faults.subsystem('process');
  const onFault = (kind: string) => (err: unknown) => {
    subsystem.record(err, { kind }, `${kind} caught by the process backstop`);
    const t = now();
    recent.push(t);
    while (recent.length > 0 && (recent[0] ?? t) <= t - windowMs) recent.shift();
    if (recent.length > budget) {
      logger.fatal(
        { err, kind, faults: recent.length, windowMs },
        'fault budget exceeded: exiting for a clean restart',
      );
      exit(1);
    }
  };
  const onException = onFault('uncaught exception');
  const onRejection = onFault('unhandled rejection');
  target.on('uncaughtException', onException);
  target.on('unhandledRejection', onRejection);
  return () => {
    target.off('uncaughtException', onException);
    target.off('unhandledRejection', onRejection);
  };
}
