#!/usr/bin/env node
/**
 * `corral` — the only place that reads argv, environment variables and the config file path (STYLE.md
 * habit 5). Commands declare their flags as data (master/cli/command.ts); this file finds the command,
 * parses its flags, answers --help, and hands it the environment and the way to the master.
 */
import { readFileSync } from 'node:fs';
import { profileClient } from './cli/api-client.js';
import { parseCommand, wantsHelp, type CliContext } from './cli/command.js';
import { configDir, readProfiles, selectProfile } from './cli/profiles.js';
import { COMMANDS, findCommand, LOCAL_COMMANDS, REMOTE_COMMANDS } from './cli/registry.js';
import { CorralError, isCorralError } from './util/errors.js';
import { createLogger } from './util/logger.js';
import { VERSION } from './util/version.js';

const shown = (specs: typeof COMMANDS): string =>
  specs
    .filter((s) => !s.hidden)
    .map((s) => s.help)
    .join('');

const HELP = `corral ${VERSION} — bare-metal cluster provisioning

Usage:
  corral COMMAND --help     Help for one command.

Talking to a running master (log in once; the profile pins its certificate):
${shown(REMOTE_COMMANDS)}
On the master's own machine, no running master needed (most need root):
${shown(LOCAL_COMMANDS)}
  corral --help | -h        This text.
  corral --version | -v     Print the version.

Environment: CORRAL_CONFIG_DIR (profiles; default ~/.config/corral), CORRAL_ADMIN_PASSWORD (first admin
password of a new master), CORRAL_LOG_LEVEL. Exit codes: 0 ok, 1 runtime failure, 2 bad usage or
configuration (one line on stderr naming the flag or key).
`;

function usage(message: string): never {
  throw new CorralError('USAGE', message);
}

function readConfigFile(path: string | undefined): unknown {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CorralError(
      'CONFIG_FILE_UNREADABLE',
      `config error: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CorralError(
      'CONFIG_INVALID',
      `config error: ${path} is not valid JSON: ${(err as Error).message}`,
    );
  }
}

const env: Readonly<Record<string, string | undefined>> = { ...process.env };

const context: CliContext = {
  env,
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  logger: (level = 'info', to = 'stderr') =>
    createLogger({
      level: env['CORRAL_LOG_LEVEL'] ?? level,
      ...(to === 'stderr' ? { destination: process.stderr } : {}),
    }),
  readConfigFile,
  api: async (name) => profileClient(selectProfile(readProfiles(configDir(env)), name).profile),
  stdin: process.stdin,
};

export async function main(argv: string[]): Promise<number> {
  const [first] = argv;
  switch (first) {
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(HELP);
      return first === undefined ? 2 : 0;
    case '--version':
    case '-v':
    case 'version':
      process.stdout.write(`corral ${VERSION}\n`);
      return 0;
  }
  const found = findCommand(argv);
  if (!found) {
    const family = COMMANDS.filter((s) => s.path[0] === first && s.path.length > 1);
    if (family.length && wantsHelp(argv.slice(1))) {
      process.stdout.write(family.map((s) => s.help).join(''));
      return 0;
    }
    if (family.length) {
      usage(
        `usage: corral ${first} ${family.map((s) => s.path[1]).join('|')} ... (see corral ${first} --help)`,
      );
    }
    return usage(`unknown command '${first}' (see corral --help)`);
  }
  const { spec, args } = found;
  if (wantsHelp(args)) {
    process.stdout.write(spec.help);
    return 0;
  }
  return spec.run(parseCommand(spec, args), context);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (isCorralError(err)) {
      process.stderr.write(`corral: ${err.message}\n`);
      process.exitCode = err.code === 'USAGE' || err.code.startsWith('CONFIG_') ? 2 : 1;
    } else {
      process.stderr.write(`corral: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
