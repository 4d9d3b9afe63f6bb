/**
 * A deployed node whose disk does not boot comes back to Corral (issue 18). The master answers a
 * deployed node's network boot with "boot your disk" (templates/ipxe/local.hbs, templates/grub/local.hbs);
 * where the boot loader can tell that the disk did not boot, it reports so instead of leaving for the next
 * boot device, which on a machine whose disk is broken is the firmware's menu or a halt:
 *
 *   BIOS (iPXE)         `sanboot --drive 0x80` returns when the disk has no boot signature (0x55AA) or
 *                       cannot be read: the script chains `/boot/local-failed?mac=…`.
 *   UEFI (network GRUB) `search --file /EFI/BOOT/BOOTX64.EFI` finds no disk with a loader, or its
 *                       `chainloader`/`boot` fails (under Secure Boot: a loader shim does not verify):
 *                       GRUB loads `grub/node/MAC/local-failed.cfg` over TFTP.
 *
 * MAAS chainloads a deployed UEFI machine's disk the same way (its GRUB template
 * uefi/config.local.amd64.template: `search --file` the loader, `chainloader`, `boot`), but when no loader
 * is found it ends with `exit 1` and the machine is left to its firmware. Corral takes the failure back
 * instead: the report is a fact the node's own boot loader states, so the answer is the node environment
 * (discovery), where the node is reachable and the operator redeploys it from the console. The node is
 * marked `failed` with the reason, and the boot timeline gets a `disk-failed` step.
 *
 * Two answers cannot report: iPXE on UEFI leaves with `exit 1` and the firmware boots the disk itself,
 * and GRUB started from the HTTP boot ISO (http-boot-iso.ts) has no network. For those the master
 * watches instead: the same node network-booting again within RETURN_WINDOW_MS of such an answer, with
 * no sign of its OS in between (its first-boot report, a cloud-init fetch, a metrics post), means the
 * firmware found no disk to boot and came back to the network: the same `failed` handling (`returned`).
 *
 * Nobody logs in at a boot loader, so a report is believed only right after this master told the MAC to
 * boot its disk (LOCAL_FAILURE_WINDOW_MS), and only once per such answer: a host on the segment cannot
 * fail a deployed node that is running its OS. A report without that answer (say the master restarted in
 * between) is refused and the node leaves for its next boot device, as before; its next power cycle
 * gets a fresh local answer and the report is then believed.
 */
import type { NodeRecord } from '../store/nodes.js';

/**
 * How the master learnt that the disk did not boot: the boot loader said so (`sanboot`, `grub`), or the
 * node came back to the network right after a local answer that cannot report (`returned`).
 */
export type DiskFailureVia = 'sanboot' | 'grub' | 'returned';

/**
 * A node back on the network this soon after a silent local answer did not boot its disk: the firmware
 * goes from a failed disk to its next boot entry in seconds, while a disk that boots runs its OS (which
 * reports) and a reboot passes through the firmware's POST again, which on servers alone takes minutes.
 */
export const RETURN_WINDOW_MS = 90_000;

/**
 * A local answer stays claimable this long: a boot loader reports within seconds of it (sanboot and
 * GRUB's search take well under a minute even under TCG), and a running OS is not a reporter.
 */
export const LOCAL_FAILURE_WINDOW_MS = 10 * 60_000;

/** Memory bound: MACs whose local answer is remembered (oldest forgotten first). */
export const MAX_WATCHED = 10_000;

export type LocalFailureJudgement =
  { accept: true; reason: string } | { accept: false; why: 'not-deployed' | 'no-local-answer' | 'expired' };

/** The words operators see: in the node's state reason and the timeline. */
export function diskFailureReason(via: DiskFailureVia): string {
  return `disk boot failed: ${diskFailureHow(via)}`;
}

/** How it was found, in words: the reason's (`… (BIOS)`) or the timeline's (`BIOS: …`) order. */
export function diskFailureHow(via: string, timeline = false): string {
  const [how, where] =
    via === 'sanboot'
      ? ['iPXE sanboot found no bootable disk', 'BIOS']
      : via === 'grub'
        ? ['network GRUB found no bootable /EFI/BOOT/BOOTX64.EFI', 'UEFI']
        : via === 'returned'
          ? [
              `network boot again within ${RETURN_WINDOW_MS / 1000} s of a local-disk answer, no sign of its OS`,
              'UEFI',
            ]
          : [via, ''];
  if (!where) return how;
  return timeline ? `${where}: ${how}` : `${how} (${where})`;
}

/**
 * Whether a disk-failure report is believed (pure): the node is deployed, and this master answered it
 * "boot your disk" less than LOCAL_FAILURE_WINDOW_MS before.
 */
export function judgeLocalFailure(
  node: Pick<NodeRecord, 'state'> | undefined,
  localAnsweredAt: number | undefined,
  now: number,
  via: DiskFailureVia,
): LocalFailureJudgement {
  if (node?.state !== 'deployed') return { accept: false, why: 'not-deployed' };
  if (localAnsweredAt === undefined) return { accept: false, why: 'no-local-answer' };
  if (now - localAnsweredAt > LOCAL_FAILURE_WINDOW_MS) return { accept: false, why: 'expired' };
  return { accept: true, reason: diskFailureReason(via) };
}

/** A local answer: when, and whether its boot loader can report a failure itself. */
export interface LocalAnswer {
  at: number;
  /** iPXE (UEFI `exit 1`) and the HTTP boot ISO's GRUB: a failure shows only as the node coming back. */
  silent: boolean;
  /**
   * The firmware's boot options (activity.ts firmwareBootPath, e.g. "PXEClient over IPv6") that were told
   * to boot the disk in this run of silent answers, each within RETURN_WINDOW_MS of the one before.
   */
  paths: ReadonlySet<string>;
}

/**
 * Whether iPXE's local answer is silent, from iPXE's `${platform}` in the script URL (dhcp/pxe.ts
 * bootScriptUrl, the scripts' retry chains): on `efi` iPXE cannot boot a disk and exits; on `pcbios`
 * sanboot reports a failure itself (local.hbs). A URL without it (an older one, a hand-made chain)
 * counts as silent: a BIOS node is then judged by its return too, as before the URL said.
 */
export function ipxeLocalSilent(platform: unknown): boolean {
  return platform !== 'pcbios';
}

/**
 * Whether a network boot is a node coming back after a silent local answer (pure): the answer was silent
 * and at most RETURN_WINDOW_MS ago. The report is then judged like any other (judgeLocalFailure).
 */
export function isReturn(answer: LocalAnswer | undefined, now: number, path?: string): boolean {
  if (answer === undefined || !answer.silent || now - answer.at > RETURN_WINDOW_MS) return false;
  // A firmware with several network boot options (PXEv6 then HTTPv6, say) tries the next one after a
  // silent answer's `exit 1`, before its disk: asking again from an option not yet answered is that, not
  // a return. An option answered before means the firmware came round its boot order again. Where the
  // firmware's option is not known (iPXE as an option ROM does its own DHCP), any ask is a return.
  return path === undefined || answer.paths.size === 0 || answer.paths.has(path);
}

/** Remembers when each MAC was last told to boot its disk; a report consumes the answer. */
export class LocalAnswers {
  private readonly at = new Map<string, LocalAnswer>();

  served(mac: string, now: number, silent = false, path?: string): void {
    const previous = this.at.get(mac);
    // The same run of silent answers: the firmware went on to its next network boot option.
    const run = previous?.silent && silent && now - previous.at <= RETURN_WINDOW_MS ? previous.paths : [];
    const paths = new Set(run);
    if (path !== undefined) paths.add(path);
    this.at.delete(mac);
    this.at.set(mac, { at: now, silent, paths });
    if (this.at.size > MAX_WATCHED) this.at.delete(this.at.keys().next().value as string);
  }

  peek(mac: string): LocalAnswer | undefined {
    return this.at.get(mac);
  }

  /** The time of the MAC's last local answer, forgotten as it is read: one report per answer. */
  take(mac: string): number | undefined {
    const t = this.at.get(mac)?.at;
    this.at.delete(mac);
    return t;
  }

  /** The node's OS spoke: its disk booted, so the answer is no longer a failure's evidence. */
  forget(mac: string): void {
    this.at.delete(mac);
  }
}
