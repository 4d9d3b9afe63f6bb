/**
 * The kernel command line of the node environment: the one contract between the master's iPXE
 * templates and the initramfs /init (node-images/agent/init parses exactly these parameters).
 */
import { CorralError } from '../master/util/errors.js';

export const NODE_MODES = ['discover', 'install', 'sharedroot'] as const;
export type NodeMode = (typeof NODE_MODES)[number];

/**
 * Consoles: the last `console=` becomes /dev/console, where /init prints its "corral: ..." markers; the
 * serial port comes last because VMs (-nographic) and BMC serial-over-LAN show it. `panic=30` turns an
 * init failure into a reboot (back to PXE) instead of a hung node.
 */
const BASE = ['console=tty0', 'console=ttyS0,115200n8', 'panic=30'];

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

export interface KernelCmdlineOptions {
  mode: string;
  /** The master's base URL as the node reaches it, e.g. http://10.0.0.1:8080 (no path needed). */
  serverUrl: string;
  /** The boot NIC; without it /init takes BOOTIF, else the first NIC with link. */
  mac?: string;
  /** More parameters, verbatim (e.g. `corral.ip=10.0.0.10/24`, `quiet`). */
  extra?: string[];
}

export function kernelCmdline(opts: KernelCmdlineOptions): string {
  if (!(NODE_MODES as readonly string[]).includes(opts.mode)) {
    throw new CorralError('INTERNAL', `unknown node mode '${opts.mode}' (expected ${NODE_MODES.join(', ')})`);
  }
  let url: URL;
  try {
    url = new URL(opts.serverUrl);
  } catch {
    throw new CorralError('CONFIG_INVALID', `server URL '${opts.serverUrl}' is not a URL`);
  }
  // busybox wget in the initramfs speaks plain HTTP; the URL must also survive as one cmdline word.
  if (url.protocol !== 'http:' || /\s/.test(opts.serverUrl) || url.search || url.hash) {
    throw new CorralError('CONFIG_INVALID', `server URL '${opts.serverUrl}' must be a plain http:// URL`);
  }
  const server = url.href.replace(/\/+$/, '');
  const params = [...BASE, `corral.mode=${opts.mode}`, `corral.server=${server}`];
  if (opts.mac !== undefined) {
    const mac = opts.mac.toLowerCase().replace(/-/g, ':');
    if (!MAC.test(mac)) throw new CorralError('MAC_INVALID', `'${opts.mac}' is not a MAC address`);
    params.push(`corral.mac=${mac}`);
  }
  for (const p of opts.extra ?? []) {
    if (p === '' || /\s/.test(p))
      throw new CorralError('INTERNAL', `kernel parameter '${p}' is empty or has spaces`);
    params.push(p);
  }
  return params.join(' ');
}
