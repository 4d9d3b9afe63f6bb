/**
 * The iPXE scripts Corral serves, one builder per template in templates/ipxe/: values in, the template's
 * name and variables out. Pure. Which one a node gets is decided in decision.ts.
 */
import { kernelCmdline } from '../../node-images/cmdline.js';
import type { BootFailurePolicy } from './config.js';

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
  /** Which boot attempt this is: 0 from DHCP, then the `attempt` a failed script's retry chain names. */
  attempt: number;
  /** boot.onFailure, boot.retries, boot.retrySeconds (boot/config.ts). */
  failure: BootFailurePolicy;
}

/** The doubling wait between attempts stops here: a node retrying forever still asks every 5 minutes. */
export const MAX_RETRY_WAIT_SECONDS = 300;

/** Seconds to wait after attempt `attempt` failed: retrySeconds, doubled per attempt, capped. */
export function retryWait(p: BootFailurePolicy, attempt: number): number {
  return Math.min(p.retrySeconds * 2 ** Math.min(attempt, 16), MAX_RETRY_WAIT_SECONDS);
}

/**
 * The script's URL for attempt `attempt` (a first attempt names none, as DHCP's URL does not), with
 * iPXE's `${platform}` as DHCP's URL has it (pxe.ts bootScriptUrl).
 */
const retryUrl = (b: ScriptBase, attempt: number): string =>
  `${b.baseUrl}/boot/ipxe?mac=${b.mac}${attempt > 0 ? `&attempt=${attempt}` : ''}&platform=\${platform}`;

/**
 * The iPXE lines of the operator's fallback and a phrase saying it, for a script whose retry chain could
 * not reach the master (so nothing can be reported) and for the master's own fallback script.
 * `exit 1`, never `exit 0`: a UEFI boot option that returns EFI_SUCCESS stops the boot manager at its menu
 * (UEFI 2.x section 3.1.1; Tinkerbell #984); an error status makes it go on to the next boot entry, the
 * disk, as a BIOS does after a failed network boot.
 */
function fallback(b: ScriptBase): { fallback: string; fallbackText: string } {
  switch (b.failure.onFailure) {
    case 'local-disk':
      return { fallback: 'exit 1', fallbackText: 'leaving for the next boot device (exit 1)' };
    case 'shell':
      return { fallback: 'shell\nexit 1', fallbackText: 'opening the iPXE shell (boot.onFailure shell)' };
    case 'retry-forever': {
      const wait = MAX_RETRY_WAIT_SECONDS;
      return {
        fallback: `sleep ${wait}\nchain --autofree ${retryUrl(b, b.attempt + 1)} || goto fallback`,
        fallbackText: `retrying in ${wait} s (boot.onFailure retry-forever)`,
      };
    }
  }
}

const common = (b: ScriptBase): Record<string, string | number> => ({
  mac: b.mac,
  baseUrl: b.baseUrl,
  retrySeconds: retryWait(b.failure, b.attempt),
  retryUrl: retryUrl(b, b.attempt + 1),
  ...fallback(b),
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
  // Waiting for the build is no failed attempt: it asks again at the first wait, with the same attempt.
  return {
    template: 'ipxe/no-image.hbs',
    vars: {
      ...common(b),
      retrySeconds: b.failure.retrySeconds,
      retryUrl: retryUrl(b, b.attempt),
      status: ipxeText(text),
    },
  };
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

/**
 * The master's answer once a node has used its retries (boot.retries): the operator's fallback
 * (boot.onFailure), never retry-forever (that one never gets here).
 */
export function fallbackScript(b: ScriptBase, node: { name: string } | undefined): BootScript {
  const who = node ? node.name : `unknown MAC ${b.mac}`;
  return {
    template: 'ipxe/fallback.hbs',
    vars: {
      ...common(b),
      attempts: b.attempt,
      reason: `${who}: no boot after ${b.attempt} attempts: ${b.failure.onFailure}`,
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
