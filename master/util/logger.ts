import { pino, type Logger, type DestinationStream, type LoggerOptions as PinoOptions } from 'pino';
import { processRedactor, REDACTED } from './redact.js';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  /** Where log lines go; defaults to stdout. Tests pass their own stream. */
  destination?: DestinationStream;
}

/**
 * Fields that carry credentials wherever they appear (fast path, pino's own redaction); the value-based
 * pass below also catches a registered secret under any other key or inside a message.
 */
const REDACT_PATHS = [
  'password',
  'token',
  'secret',
  'passphrase',
  'authorization',
  '*.password',
  '*.token',
  '*.secret',
  '*.passphrase',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
];

/**
 * The one redaction rule (master/util/redact.ts) applied to every line: secret-named fields hidden, and
 * any registered secret value replaced in fields, errors and the message.
 */
function redactingOptions(level: string): PinoOptions {
  return {
    level,
    base: { app: 'corral' },
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    formatters: { log: (obj) => processRedactor.value(obj) },
    hooks: {
      logMethod(args, method) {
        const clean = args.map((a: unknown) => (typeof a === 'string' ? processRedactor.text(a) : a));
        return method.apply(this, clean as Parameters<typeof method>);
      },
    },
  };
}

/** Structured JSON logs (pino). One logger per process; modules take a child with their own `module` key. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env['CORRAL_LOG_LEVEL'] ?? 'info';
  return options.destination
    ? pino(redactingOptions(level), options.destination)
    : pino(redactingOptions(level));
}

/** A logger that drops everything, for unit tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
