/**
 * Every `corral` command, in the order `corral --help` shows them. cli.ts dispatches on the longest
 * matching path; test/unit/cli-help.test.ts runs each one's --help against its declared flags.
 */
import type { CommandSpec } from './command.js';
import { forwardCommand, labCommand, masterCommand, nodeImageCommand } from './local-commands.js';
import { loginCommand, logoutCommand, profileCommand } from './login.js';
import { nodeListCommand, nodeShowCommand } from './node-command.js';
import { snapshotCommand } from '../snapshots/cli-command.js';
import { dataSetCommand, dataSnapshotCommand } from '../data-snapshots/cli-command.js';
import { serviceCommand } from '../lb/service-cli.js';
import { imageCommand, nodeDeployCommand } from '../images/command.js';
import { nodeExecCommand, nodePowerCommand } from '../remote/cli-command.js';
import { cloneCommand, witnessCommand } from '../ha/cli-command.js';
import { nodeDisklessCommand, sharedRootCommand } from '../sharedroot/cli-command.js';
import { metricsScrapeConfigCommand } from '../metrics/cli-command.js';
import { nodeTagCommand, rulesCommand } from '../enrolment/cli-command.js';
import { cloudInitCommand } from '../cloudinit/cli-command.js';
import { dnsCommand } from '../dns/cli-command.js';
import { registryCommand } from '../registry/cli-command.js';
import { appCommand } from '../apps/cli-command.js';

/**
 * Commands that talk to a running master through the profile `corral login` saved. Those that once opened
 * the data directory still do with --config/--data-dir (image import and build-debian only that way).
 */
export const REMOTE_COMMANDS: CommandSpec[] = [
  loginCommand,
  logoutCommand,
  profileCommand,
  nodeListCommand,
  nodeShowCommand,
  nodeDeployCommand,
  nodePowerCommand,
  nodeExecCommand,
  nodeDisklessCommand,
  nodeTagCommand,
  rulesCommand,
  imageCommand,
  sharedRootCommand,
  serviceCommand,
  snapshotCommand,
  metricsScrapeConfigCommand,
  dataSetCommand,
  dataSnapshotCommand,
  cloudInitCommand,
  dnsCommand,
  appCommand,
];

/** Commands that run on the master's own machine and need no running master. */
export const LOCAL_COMMANDS: CommandSpec[] = [
  masterCommand,
  labCommand,
  nodeImageCommand,
  cloneCommand,
  witnessCommand,
  forwardCommand,
  registryCommand,
];

export const COMMANDS: CommandSpec[] = [...REMOTE_COMMANDS, ...LOCAL_COMMANDS];

/** The command whose path is the longest prefix of argv, and the arguments after its path. */
export function findCommand(argv: string[]): { spec: CommandSpec; args: string[] } | undefined {
  let best: CommandSpec | undefined;
  for (const spec of COMMANDS) {
    if (spec.path.every((word, i) => argv[i] === word) && (!best || spec.path.length > best.path.length)) {
      best = spec;
    }
  }
  return best && { spec: best, args: argv.slice(best.path.length) };
}
