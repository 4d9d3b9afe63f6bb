#!/usr/bin/env node
/**
 * `corral` — the only place that reads flags, environment variables and the config file path
 * (STYLE.md habit 5). Everything below receives a validated, frozen config.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { buildConfig, type ConfigFlags } from './config.js';
import { CorralError, isCorralError } from './util/errors.js';
import { createLogger, type Logger } from './util/logger.js';
import { VERSION } from './util/version.js';
import { startMaster } from './master.js';

const HELP = `corral ${VERSION} — bare-metal cluster provisioning

Usage:
  corral master --data-dir DIR --address IP [--interface IFACE]
                [--dhcp-range FIRST-LAST | --proxy-dhcp] [--http-port N]
                [--tftp-port N] [--config FILE] [--log-level LEVEL]
      Run the master: DHCP (PXE), TFTP, HTTP boot, REST API and web console.
  corral --help | -h        This text.
  corral --version | -v     Print the version.

Flags override the same keys of the JSON config file (see README "Configuration").
Environment: CORRAL_ADMIN_PASSWORD sets the first admin password (otherwise one is generated
into DATA_DIR/initial-admin-password, mode 0600); CORRAL_LOG_LEVEL sets the log level.
Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration.
`;

const MASTER_OPTIONS = {
  'data-dir': { type: 'string' },
  interface: { type: 'string' },
  address: { type: 'string' },
  'dhcp-range': { type: 'string' },
  'proxy-dhcp': { type: 'boolean' },
  'http-port': { type: 'string' },
  'tftp-port': { type: 'string' },
  config: { type: 'string' },
  'log-level': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

function usage(message: string): never {
  throw new CorralError('USAGE', message);
}

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    return usage((err as Error).message.split('\n')[0] ?? 'bad arguments');
  }
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

async function runMaster(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, MASTER_OPTIONS);
  if (positionals.length) usage(`unexpected argument '${positionals[0]}'`);
  const flags: ConfigFlags = {
    ...(values['data-dir'] !== undefined ? { dataDir: values['data-dir'] } : {}),
    ...(values.interface !== undefined ? { interface: values.interface } : {}),
    ...(values.address !== undefined ? { address: values.address } : {}),
    ...(values['dhcp-range'] !== undefined ? { dhcpRange: values['dhcp-range'] } : {}),
    ...(values['proxy-dhcp'] ? { proxyDhcp: true } : {}),
    ...(values['http-port'] !== undefined ? { httpPort: values['http-port'] } : {}),
    ...(values['tftp-port'] !== undefined ? { tftpPort: values['tftp-port'] } : {}),
    ...(values['log-level'] !== undefined ? { logLevel: values['log-level'] } : {}),
  };
  const config = buildConfig(readConfigFile(values.config), flags);
  const logger = createLogger({ level: config.log.level });
  const master = await startMaster(config, {
    logger,
    ...(process.env['CORRAL_ADMIN_PASSWORD']
      ? { initialAdminPassword: process.env['CORRAL_ADMIN_PASSWORD'] }
      : {}),
  });
  await waitForSignal(logger);
  await master.close();
  logger.info('corral master stopped');
  return 0;
}

function waitForSignal(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(HELP);
      return command === undefined ? 2 : 0;
    case '--version':
    case '-v':
    case 'version':
      process.stdout.write(`corral ${VERSION}\n`);
      return 0;
    case 'master':
      return runMaster(rest);
    default:
      return usage(`unknown command '${command}'`);
  }
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
