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
    return { template: 'ipxe/no-image.hbs', vars: base };
  }
  // deploying / diskless get their own modes once the imaging and shared-root issues land; until then
  // such nodes run discovery, whose agent polls the master for what to do.
  const mode: BootMode = 'discover';
  const reason = node ? `${node.name} is ${node.state}: ${mode}` : `unknown MAC ${ctx.mac}: discover`;
  return {
    template: 'ipxe/discover.hbs',
    vars: { ...base, mode, reason, cmdline: nodeCmdline(mode, ctx.baseUrl, ctx.mac, ctx.kernelArgs) },
  };
}
