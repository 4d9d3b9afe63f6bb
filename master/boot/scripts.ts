/**
 * The boot decision: (node record or none, settings) → which iPXE script and with what values. Pure,
 * so the whole matrix is unit-tested; routes.ts only renders and sends.
 */
import type { NodeRecord } from '../store/nodes.js';
import { kernelCmdline } from '../../node-images/cmdline.js';

export type BootMode = 'discover' | 'install' | 'sharedroot';

export interface BootContext {
  mac: string;
  node: NodeRecord | undefined;
  baseUrl: string;
  kernelArgs: string;
  nodeImageReady: boolean;
  /** While it is not ready: one line on where its build stands (node-image-builder.ts). */
  nodeImageStatus?: string | undefined;
  /**
   * The node's current deployment (issue 5): `installed` boots the disk, otherwise the installer runs.
   * Its token is not here: a boot script goes to anyone who asks with the MAC (issue 14); the installer
   * fetches its plan, token included, with the node's credential.
   */
  deployment?: { id: number; status: string } | undefined;
  /** A diskless node's shared root (issue 6): root, version and the initramfs parameters for it. */
  sharedRoot?: { rootName: string; version: number; params: string[] } | undefined;
}

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

export function chooseBootScript(ctx: BootContext): BootScript {
  const base = { mac: ctx.mac, baseUrl: ctx.baseUrl, retrySeconds: 10 };
  const node = ctx.node;
  if (node?.state === 'deployed') {
    return {
      template: 'ipxe/local.hbs',
      vars: { ...base, name: node.name, reason: `${node.name} deployed` },
    };
  }
  if (!ctx.nodeImageReady) {
    const status =
      ctx.nodeImageStatus ??
      'the node environment (kernel + initramfs) is not available yet: on the master run `corral node-image build`';
    return { template: 'ipxe/no-image.hbs', vars: { ...base, status: ipxeText(status) } };
  }
  const d = ctx.deployment;
  if (node?.state === 'deploying' && d && d.status === 'installed') {
    // The image is on the disk: boot it (its agent then reports and the node becomes deployed).
    return {
      template: 'ipxe/local.hbs',
      vars: { ...base, name: node.name, reason: `${node.name} installed: first boot from disk` },
    };
  }
  if (node?.state === 'deploying' && d && (d.status === 'pending' || d.status === 'installing')) {
    const cmdline = nodeCmdline('install', ctx.baseUrl, ctx.mac, ctx.kernelArgs);
    return {
      template: 'ipxe/install.hbs',
      vars: {
        ...base,
        mode: 'install',
        reason: `${node.name} is deploying: install (deployment ${d.id})`,
        cmdline: `${cmdline} corral.deploy=${d.id}`,
      },
    };
  }
  const sr = ctx.sharedRoot;
  if (node?.state === 'diskless' && sr) {
    const cmdline = nodeCmdline('sharedroot', ctx.baseUrl, ctx.mac, ctx.kernelArgs);
    return {
      template: 'ipxe/sharedroot.hbs',
      vars: {
        ...base,
        mode: 'sharedroot',
        root: sr.rootName,
        version: sr.version,
        reason: `${node.name} is diskless: shared root ${sr.rootName} version ${sr.version}`,
        cmdline: [cmdline, ...sr.params].join(' '),
      },
    };
  }
  // Everything else runs discovery, whose agent polls the master for what to do: unknown and new nodes,
  // a deploying node whose deployment is missing or ended (failed, superseded), a diskless node whose
  // shared root is not known here.
  const mode: BootMode = 'discover';
  const reason = node ? `${node.name} is ${node.state}: ${mode}` : `unknown MAC ${ctx.mac}: discover`;
  return {
    template: 'ipxe/discover.hbs',
    vars: { ...base, mode, reason, cmdline: nodeCmdline(mode, ctx.baseUrl, ctx.mac, ctx.kernelArgs) },
  };
}
