/**
 * The iPXE scripts Corral serves, one builder per template in templates/ipxe/: values in, the template's
 * name and variables out. Pure. Which one a node gets is decided in decision.ts.
 */
import { kernelCmdline } from '../../node-images/cmdline.js';

export type BootMode = 'discover' | 'install' | 'sharedroot';

export interface BootScript {
  template: string;
  vars: Record<string, string | number | boolean>;
}

/**
 * Kernel command line for the node environment: node-images owns the contract (kernelCmdline); we add
 * BOOTIF (as pxelinux does) and the operator's extra arguments.
 */
export function nodeCmdline(mode: BootMode, baseUrl: string, mac: string, kernelArgs: string): string {
  const bootif = `BOOTIF=01-${mac.replace(/:/g, '-')}`;
  const extra = kernelArgs.split(/\s+/).filter(Boolean);
  return kernelCmdline({ mode, serverUrl: baseUrl, mac, extra: [bootif, ...extra] });
}

/**
 * Text safe on an iPXE `echo` line: one line of printable ASCII. iPXE expands `${...}` in every command,
 * ends a command at a `||`, `&&` or `;` token and a comment at a `#` token, so those characters (and
 * quotes and backslashes, which some builds treat specially) go: a build's error message can hold any.
 */
export function ipxeText(text: string, max = 200): string {
  const clean = text
    .replace(/[^\x20-\x7e]+/g, ' ')
    .replace(/;/g, ',')
    .replace(/["']/g, '')
    .replace(/[$#|&\\]/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
  return clean.length > max ? `${clean.slice(0, max - 3)}...` : clean;
}

/** What every script is rendered with: the node's MAC and the master's URL (for the retry chain). */
export interface ScriptBase {
  mac: string;
  baseUrl: string;
  kernelArgs: string;
}

/** Seconds a node waits before it asks again (node environment missing, a boot step failed). */
const RETRY_SECONDS = 10;

const common = (b: ScriptBase): Record<string, string | number> => ({
  mac: b.mac,
  baseUrl: b.baseUrl,
  retrySeconds: RETRY_SECONDS,
});

/** A request that named no MAC: ask again, naming the boot interface's. */
export function askMacScript(baseUrl: string): BootScript {
  return { template: 'ipxe/ask-mac.hbs', vars: { baseUrl } };
}

/** Leave iPXE for the local disk (local.hbs: `exit 1` on UEFI, `sanboot` on BIOS). */
export function localDiskScript(b: ScriptBase, name: string, reason: string): BootScript {
  return { template: 'ipxe/local.hbs', vars: { ...common(b), name, reason } };
}

/** The node environment is not built (or not yet): say where its build stands, wait, ask again. */
export function waitScript(b: ScriptBase, status: string | undefined): BootScript {
  const text =
    status ??
    'the node environment (kernel + initramfs) is not available yet: on the master run `corral node-image build`';
  return { template: 'ipxe/no-image.hbs', vars: { ...common(b), status: ipxeText(text) } };
}

/** The installer: the node environment with the installer tools, for deployment `deploymentId`. */
export function installScript(b: ScriptBase, name: string, deploymentId: number): BootScript {
  const cmdline = nodeCmdline('install', b.baseUrl, b.mac, b.kernelArgs);
  return {
    template: 'ipxe/install.hbs',
    vars: {
      ...common(b),
      mode: 'install',
      reason: `${name} is deploying: install (deployment ${deploymentId})`,
      cmdline: `${cmdline} corral.deploy=${deploymentId}`,
    },
  };
}

/** A diskless node: the node environment mounting its shared root (issue 6). */
export function sharedRootScript(
  b: ScriptBase,
  name: string,
  sr: { rootName: string; version: number; params: string[] },
): BootScript {
  const cmdline = nodeCmdline('sharedroot', b.baseUrl, b.mac, b.kernelArgs);
  return {
    template: 'ipxe/sharedroot.hbs',
    vars: {
      ...common(b),
      mode: 'sharedroot',
      root: sr.rootName,
      version: sr.version,
      reason: `${name} is diskless: shared root ${sr.rootName} version ${sr.version}`,
      cmdline: [cmdline, ...sr.params].join(' '),
    },
  };
}

/** Discovery: the node environment's agent enlists the node and polls the master for what to do. */
export function discoverScript(b: ScriptBase, node: { name: string; state: string } | undefined): BootScript {
  const mode: BootMode = 'discover';
  const reason = node ? `${node.name} is ${node.state}: ${mode}` : `unknown MAC ${b.mac}: discover`;
  return {
    template: 'ipxe/discover.hbs',
    vars: { ...common(b), mode, reason, cmdline: nodeCmdline(mode, b.baseUrl, b.mac, b.kernelArgs) },
  };
}
