/**
 * What a `corral` command is: its words, its flags as data, its help, and a function that receives the
 * parsed arguments. Commands declare; cli.ts alone parses argv (STYLE habit 5), so every command answers
 * `--help` and refuses an unknown flag the same way, and a test can read each command's flags from here.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { ApiClient } from './api-client.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

/** What parseArgs returns for these options (strict, positionals allowed). */
export type Parsed<O extends Options> = ReturnType<
  typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>
>;

export interface CommandInput<O extends Options> {
  values: Parsed<O>['values'];
  positionals: string[];
  /** The words after `--` (only for commands with `passthrough`). */
  rest: string[];
}

/** What cli.ts hands every command: the environment it read, output, and the way to the master. */
export interface CliContext {
  env: Readonly<Record<string, string | undefined>>;
  out: (text: string) => void;
  err: (text: string) => void;
  /** A pino logger at CORRAL_LOG_LEVEL or `level`, on stderr unless told (stdout carries output). */
  logger: (level?: string, to?: 'stdout' | 'stderr') => Logger;
  readConfigFile: (path: string | undefined) => unknown;
  /** The master's REST API through the active profile (or `--profile NAME`), certificate pinned. */
  api: (profile?: string) => Promise<ApiClient>;
  stdin: NodeJS.ReadStream;
}

export interface CommandSpec<O extends Options = Options> {
  /** The words that select it, e.g. ['node', 'power']. */
  path: string[];
  /** Sub-verbs it takes as its first positional (for help and the help test), e.g. list, show. */
  verbs?: string[];
  /** Usage lines and a sentence or two; shown by `corral PATH --help` and in `corral --help`. */
  help: string;
  options: O;
  /** Everything after `--` is passed through untouched (`corral node exec ... -- CMD`). */
  passthrough?: boolean;
  /**
   * Words with one leading `-` (not `--`) are positionals, not short flags: `corral node tag N +a -b`
   * removes tag b. Such a command declares no short options.
   */
  dashWords?: boolean;
  /** Left out of `corral --help` (internal plumbing such as the lab's relay). */
  hidden?: boolean;
  run(input: CommandInput<O>, ctx: CliContext): Promise<number>;
}

/** Keeps the options' literal types for `run` while the registry holds commands of any options. */
export function defineCommand<const O extends Options>(spec: CommandSpec<O>): CommandSpec {
  return spec as unknown as CommandSpec;
}

export function usage(message: string): never {
  throw new CorralError('USAGE', message);
}

/** The flags a command accepts, as typed on the command line (`--name`), for help and its test. */
export function flagsOf(spec: CommandSpec): string[] {
  return Object.keys(spec.options).map((k) => `--${k}`);
}

/**
 * Parses a command's arguments against its own option table. An unknown or malformed flag becomes one
 * USAGE line that names it (exit 2); the words after `--` are kept apart for passthrough commands.
 */
export function parseCommand(spec: CommandSpec, args: string[]): CommandInput<Options> {
  const dashdash = spec.passthrough ? args.indexOf('--') : -1;
  const own = dashdash >= 0 ? args.slice(0, dashdash) : args;
  const rest = dashdash >= 0 ? args.slice(dashdash + 1) : [];
  const isDashWord = (a: string): boolean => !!spec.dashWords && /^-[^-]/.test(a) && a !== '-h';
  try {
    const parsed = parseArgs({
      args: own.filter((a) => !isDashWord(a)),
      options: spec.options,
      allowPositionals: true,
      strict: true,
    });
    const positionals = [...parsed.positionals, ...own.filter(isDashWord)];
    return { values: parsed.values, positionals, rest };
  } catch (err) {
    const name = spec.path.join(' ');
    const m = /^Unknown option '([^']+)'/.exec((err as Error).message);
    if (m) return usage(`${name}: unknown option '${m[1]}' (see corral ${name} --help)`);
    return usage(`${name}: ${(err as Error).message.split('\n')[0] ?? 'bad arguments'}`);
  }
}

/** True when the arguments (before any `--`) ask for help. */
export function wantsHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end >= 0 ? args.slice(0, end) : args).some((a) => a === '--help' || a === '-h');
}

/**
 * The commands that can work either way: with --config or --data-dir they act on the master's files from
 * its own machine (also while it is stopped); otherwise through the API of the profile's master.
 */
export function onMasterFiles(values: {
  profile?: string | undefined;
  config?: string | undefined;
  'data-dir'?: string | undefined;
}): boolean {
  const local = values.config !== undefined || values['data-dir'] !== undefined;
  if (local && values.profile !== undefined) {
    usage(
      '--profile goes through the API; --config and --data-dir act on the files here: give one or the other',
    );
  }
  return local;
}
