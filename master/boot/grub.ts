/**
 * The Secure Boot chain's node-facing side (issue 18): what network GRUB reads over TFTP. Debian's signed
 * grubnetx64 has no HTTP module and a built-in prefix of (tftp,SERVER)/grub, so everything it loads comes
 * from the TFTP server, made here per request rather than kept in the TFTP root:
 *
 *   grub/grub.cfg                 the same for every node: asks for the node's own file by its MAC
 *   grub/node/MAC/ATTEMPT.cfg     the boot decision (decision.ts, the same providers as /boot/ipxe),
 *                                 rendered from templates/grub/ instead of templates/ipxe/
 *   node/vmlinuz, node/initrd.img the node environment (Debian's signed kernel + Corral's initramfs)
 *   installer/tools.img           the installer tools initrd
 *
 * The attempt is in the path, as iPXE's retry chain has it in the query: GRUB retries by loading the next
 * attempt's file, and the master's fallback (boot.retries, boot.onFailure) applies unchanged.
 */
import { normaliseMac } from '../nodes/inventory.js';
import { renderTemplate } from '../util/templates.js';
import type { BootDecision } from './decision.js';
import { MAX_RETRY_WAIT_SECONDS, type ScriptBase } from './scripts.js';

export const GRUB_BOOTSTRAP = 'grub/grub.cfg';
const NODE_CFG = /^grub\/node\/([0-9a-fA-F:]{17})\/(\d{1,4})\.cfg$/;
const LOCAL_FAILED_CFG = /^grub\/node\/([0-9a-fA-F:]{17})\/local-failed\.cfg$/;

/** The node's config for attempt `attempt`, as GRUB names it (root-relative, leading slash). */
export function grubCfgPath(mac: string, attempt: number): string {
  return `/grub/node/${mac}/${attempt}.cfg`;
}

/** What GRUB loads when the deployed node's disk did not boot (boot/local-fallback.ts). */
export function grubLocalFailedPath(mac: string): string {
  return `/grub/node/${mac}/local-failed.cfg`;
}

/** Which generated file a TFTP name is, or undefined (then the TFTP root's own file, if any). */
export type GrubRequest =
  | { kind: 'bootstrap' }
  | { kind: 'node-cfg'; mac: string; attempt: number }
  | { kind: 'local-failed'; mac: string }
  | { kind: 'kernel' | 'initrd' | 'installer-tools' };

export function parseGrubRequest(relative: string): GrubRequest | undefined {
  if (relative === GRUB_BOOTSTRAP) return { kind: 'bootstrap' };
  if (relative === 'node/vmlinuz') return { kind: 'kernel' };
  if (relative === 'node/initrd.img') return { kind: 'initrd' };
  if (relative === 'installer/tools.img') return { kind: 'installer-tools' };
  const failed = LOCAL_FAILED_CFG.exec(relative);
  const failedMac = failed?.[1] ? normaliseMac(failed[1]) : undefined;
  if (failedMac) return { kind: 'local-failed', mac: failedMac };
  const m = NODE_CFG.exec(relative);
  const mac = m?.[1] ? normaliseMac(m[1]) : undefined;
  if (!m || !mac) return undefined;
  return { kind: 'node-cfg', mac, attempt: Math.min(Number(m[2]), 1000) };
}

/**
 * GRUB lines that boot the local disk: the loader the installer put on the ESP (--removable:
 * \EFI\BOOT\BOOTX64.EFI, which is shim on a Secure Boot image), chainloaded; under Secure Boot GRUB has
 * shim verify it. MAAS boots deployed UEFI machines the same way. When no disk has one, the template
 * goes on to `exit 1`: a non-zero status makes the firmware try its next boot entry (UEFI 2.x §3.1.1).
 */
const LOCAL_DISK = [
  'if search --no-floppy --set=disk --file /EFI/BOOT/BOOTX64.EFI; then',
  '  set root=$disk',
  '  chainloader /EFI/BOOT/BOOTX64.EFI',
  '  boot',
  'fi',
].join('\n');

/** boot.onFailure in GRUB's words, for a master that stopped answering and for its own fallback. */
function grubFallback(b: ScriptBase): { fallback: string; fallbackText: string } {
  switch (b.failure.onFailure) {
    case 'local-disk':
      return { fallback: `${LOCAL_DISK}\nexit 1`, fallbackText: 'booting the local disk, else exit 1' };
    case 'shell':
      // The end of a config file leaves GRUB at its prompt: the shell, for someone at the console.
      return { fallback: '', fallbackText: 'stopping at the GRUB prompt (boot.onFailure shell)' };
    case 'retry-forever':
      return {
        fallback: `sleep ${MAX_RETRY_WAIT_SECONDS}\nconfigfile ${grubCfgPath(b.mac, b.attempt + 1)}`,
        fallbackText: `retrying in ${MAX_RETRY_WAIT_SECONDS} s (boot.onFailure retry-forever)`,
      };
  }
}

/** GRUB's counterpart of an iPXE template: templates/grub/ holds one per templates/ipxe/ file. */
export function grubTemplate(ipxeTemplate: string): string {
  return ipxeTemplate.replace(/^ipxe\//, 'grub/');
}

/**
 * The decision's iPXE script, as GRUB config: the same template name under templates/grub/, with GRUB's
 * retry path and fallback in place of iPXE's. A waiting node asks again with the same attempt, as in
 * waitScript; every other retry names the next attempt.
 */
export function renderGrubConfig(decision: BootDecision, b: ScriptBase): string {
  const name = grubTemplate(decision.template);
  const retryAttempt = decision.by === 'wait' ? b.attempt : b.attempt + 1;
  return renderTemplate(name, {
    ...decision.vars,
    ...grubFallback(b),
    retryCfg: grubCfgPath(b.mac, retryAttempt),
    localDisk: LOCAL_DISK,
    localFailedCfg: grubLocalFailedPath(b.mac),
  });
}

/** The bootstrap file every node reads first. */
export function renderGrubBootstrap(): string {
  return renderTemplate('grub/grub.cfg.hbs', {});
}
