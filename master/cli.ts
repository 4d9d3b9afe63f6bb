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
import { buildNodeImage } from '../node-images/index.js';
import { nodeImageDir } from './boot/node-image.js';
import { startLab, labDown } from './lab/lab.js';
import { followLab } from './lab/progress.js';
import { forwardUnixToTcp } from './lab/forward.js';
import { DEFAULT_NIC_LIST, NIC_MODELS, parseNicList } from './lab/qemu.js';
import { runSnapshotCommand, SNAPSHOT_HELP } from './snapshots/cli-command.js';
import { runServiceCli, SERVICE_HELP } from './lb/service-cli.js';
import { runImageCommand, runNodeCommand } from './images/command.js';
import { REMOTE_HELP, runExecCommand, runPowerCommand } from './remote/cli-command.js';
import { HA_HELP, runCloneCommand, runWitnessCommand } from './ha/cli-command.js';
import { runDisklessCommand, runSharedRootCommand, SHAREDROOT_HELP } from './sharedroot/cli-command.js';

const HELP = `corral ${VERSION} — bare-metal cluster provisioning

Usage:
  corral master --data-dir DIR --address IP [--interface IFACE]
                [--dhcp-range FIRST-LAST | --proxy-dhcp] [--http-port N]
                [--tftp-port N] [--config FILE] [--log-level LEVEL]
      Run the master: DHCP (PXE), TFTP, HTTP boot, REST API and web console.
  corral lab [--nodes N] [--uefi] [--nic LIST] [--dir DIR] [--port N] [--memory MB] [--disk GB]
      Build a virtual lab in network namespaces of its own: a master and N QEMU VMs
      that PXE-boot from it (SeaBIOS, or OVMF with --uefi). --nic gives VM i the i-th
      NIC model of LIST (virtio, e1000, e1000e; default virtio,e1000; VMs beyond it: virtio).
      The console is forwarded to a loopback port on this host. Ctrl-C tears it all down.
  corral lab down [--dir DIR]
      Tear down a lab whose \`corral lab\` process is gone.
  corral image import FILE|DIR --name NAME (--data-dir DIR | --config FILE) [--os ID --os-version V]
  corral image list|show NAME|delete NAME (--data-dir DIR | --config FILE) [--json]
  corral image build-debian [--name debian-12] (--data-dir DIR | --config FILE)
      OS images: tar/tar.gz/tar.zst root file systems or raw/raw.gz/qcow2 disks (docs/deploy.md).
  corral node deploy NODE --image NAME [--layout L] --config FILE
      Install an image on a node's disk (node → deploying; rebooted by its agent or over SSH).
${REMOTE_HELP}  corral node-image build --data-dir DIR [--cache-dir DIR] [--flavour generic|cloud]
      Build the node environment (Debian kernel + initramfs with the Corral agent).
${SERVICE_HELP}${SNAPSHOT_HELP}${HA_HELP}${SHAREDROOT_HELP}  corral --help | -h        This text.
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
  // A rejection nobody handled leaves some part in a state nobody planned for, so the master still exits
  // (as Node would), but deliberately: the cause goes to the structured log with its stack, not only to
  // raw stderr, and the non-zero code makes systemd start a clean master (and, with HA, the peer take over).
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled promise rejection: exiting');
    process.exit(1);
  });
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

const LAB_OPTIONS = {
  nodes: { type: 'string', default: '2' },
  uefi: { type: 'boolean' },
  nic: { type: 'string', default: DEFAULT_NIC_LIST },
  dir: { type: 'string', default: '.lab' },
  port: { type: 'string', default: '8080' },
  memory: { type: 'string', default: '512' },
  disk: { type: 'string', default: '4' },
  'cache-dir': { type: 'string', default: '/var/cache/corral' },
} as const satisfies ParseArgsConfig['options'];

function intFlag(name: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    usage(`--${name} must be a whole number from ${min} to ${max} (got '${value}')`);
  }
  return Number(value);
}

async function runLab(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, LAB_OPTIONS);
  const logger = createLogger({ level: process.env['CORRAL_LOG_LEVEL'] ?? 'warn' });
  if (positionals[0] === 'down') {
    const done = labDown(values.dir, logger);
    process.stdout.write(done ? `lab in ${values.dir} torn down\n` : `no lab state in ${values.dir}\n`);
    return 0;
  }
  if (positionals.length) usage(`unexpected argument '${positionals[0]}'`);
  if (process.getuid?.() !== 0) usage('corral lab creates network namespaces and needs root');
  const n = intFlag('nodes', values.nodes, 1, 16);
  const nics = parseNicList(values.nic, n);
  if ('bad' in nics) usage(`--nic: '${nics.bad}' is not a NIC model (${NIC_MODELS.join(', ')})`);
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  say(
    `corral lab: building the node environment and starting the master (first run downloads the kernel)...`,
  );
  const lab = await startLab({
    dir: values.dir,
    vms: nics.models.map((nic) => ({ firmware: values.uefi ? ('uefi' as const) : ('bios' as const), nic })),
    logger,
    cacheDir: values['cache-dir'],
    hostPort: intFlag('port', values.port, 0, 65535),
    memoryMb: intFlag('memory', values.memory, 256, 8192),
    diskGb: intFlag('disk', values.disk, 1, 64),
  });
  say('');
  say(
    `Corral lab ${lab.id} is up: master ${lab.masterAddress} in namespace ${lab.masterNs}, ${n} VM(s) PXE-booting.`,
  );
  say(`  Console:  ${lab.hostUrl}/   (user admin, password ${lab.adminPassword})`);
  say(`  API:      curl -u admin:${lab.adminPassword} ${lab.hostUrl}/api/v1/nodes`);
  for (const vm of lab.vms)
    say(`  VM:       ${vm.spec.name} ${vm.spec.mac} NIC ${vm.spec.nic} (${vm.spec.firmware})`);
  say(`  Logs:     ${values.dir}/master.log, ${values.dir}/vm1.log ...`);
  say('  Ctrl-C tears everything down (or `corral lab down` from another shell).');
  say('');
  const stopFollowing = followLab(lab, say);
  await new Promise<void>((resolve) => {
    // Handlers stay installed: a second Ctrl-C, or the terminal closing (SIGHUP), must not kill the
    // process half-way through the teardown and leave namespaces and VMs behind.
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => resolve());
  });
  say('corral lab: tearing down...');
  stopFollowing();
  await lab.destroy();
  say('corral lab: done');
  return 0;
}

async function runNodeImage(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    'data-dir': { type: 'string' },
    'cache-dir': { type: 'string', default: '/var/cache/corral' },
    flavour: { type: 'string', default: 'generic' },
  });
  if (positionals[0] !== 'build' || positionals.length > 1)
    usage('usage: corral node-image build --data-dir DIR');
  if (!values['data-dir']) usage('--data-dir is required');
  const flavour = values.flavour;
  if (flavour !== 'cloud' && flavour !== 'generic')
    usage(`--flavour must be cloud or generic (got '${flavour}')`);
  const epoch = process.env['SOURCE_DATE_EPOCH'];
  const image = await buildNodeImage({
    cacheDir: values['cache-dir'],
    outDir: nodeImageDir(values['data-dir']),
    flavour,
    logger: createLogger(),
    ...(epoch && /^\d+$/.test(epoch) ? { sourceDateEpoch: Number(epoch) } : {}),
  });
  process.stdout.write(`${JSON.stringify(image, null, 2)}\n`);
  return 0;
}

/** Internal: the lab's console relay inside the master namespace (`_forward SOCKET HOST PORT`). */
async function runForward(args: string[]): Promise<number> {
  const [sock, host, port] = args;
  if (!sock || !host || !port) usage('usage: corral _forward SOCKET HOST PORT');
  const server = await forwardUnixToTcp(sock, host, Number(port));
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  server.close();
  return 0;
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
    case 'lab':
      return runLab(rest);
    case 'image':
      return runImageCommand(rest, readConfigFile);
    case 'node':
      if (rest[0] === 'diskless') return runDisklessCommand(rest.slice(1), readConfigFile);
      if (rest[0] === 'power')
        return runPowerCommand(rest.slice(1), readConfigFile, (t) => void process.stdout.write(`${t}\n`));
      if (rest[0] === 'exec') {
        const actor = process.env['SUDO_USER'] ?? process.env['USER'] ?? 'cli';
        return runExecCommand(
          rest.slice(1),
          readConfigFile,
          (t) => void process.stdout.write(`${t}\n`),
          actor,
        );
      }
      return runNodeCommand(rest, readConfigFile);
    case 'sharedroot':
      return runSharedRootCommand(rest, readConfigFile);
    case 'node-image':
      return runNodeImage(rest);
    case 'snapshot':
      return runSnapshotCommand(rest, {
        url: process.env['CORRAL_URL'],
        user: process.env['CORRAL_USER'],
        password: process.env['CORRAL_PASSWORD'],
        // Logs on stderr: stdout carries the command's output (--json).
        logger: createLogger({
          level: process.env['CORRAL_LOG_LEVEL'] ?? 'warn',
          destination: process.stderr,
        }),
        out: (text) => void process.stdout.write(text),
      });
    case 'clone':
    case 'witness': {
      const haEnv = {
        ...(process.env['CORRAL_HA_TOKEN'] ? { token: process.env['CORRAL_HA_TOKEN'] } : {}),
        logger: createLogger({ level: process.env['CORRAL_LOG_LEVEL'] ?? 'info' }),
        out: (text: string) => void process.stdout.write(text),
      };
      return command === 'clone' ? runCloneCommand(rest, haEnv) : runWitnessCommand(rest, haEnv);
    }
    case '_forward':
      return runForward(rest);
    case 'service':
      return runServiceCli(rest, {
        url: process.env['CORRAL_URL'],
        password: process.env['CORRAL_PASSWORD'],
        out: (text) => void process.stdout.write(text),
      });
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
