import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  /** Where log lines go; defaults to stdout. Tests pass their own stream. */
  destination?: DestinationStream;
}

/** Structured JSON logs (pino). One logger per process; modules take a child with their own `module` key. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env['CORRAL_LOG_LEVEL'] ?? 'info';
  return options.destination
    ? pino({ level, base: { app: 'corral' } }, options.destination)
    : pino({ level, base: { app: 'corral' } });
}

/** A logger that drops everything, for unit tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
