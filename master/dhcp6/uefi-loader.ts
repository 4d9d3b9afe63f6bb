/**
 * Which iPXE build an x64 UEFI client gets over IPv6 (issue 18: never strand a node).
 *
 * Debian's `ipxe.efi` carries iPXE's own NIC drivers: started by the firmware's PXE over IPv6 (OVMF), it
 * disconnects the firmware's network driver from the NIC and drives it itself. When its script then leaves
 * with `exit 1` (a deployed node's local-disk answer, templates/ipxe/local.hbs), it does not hand the
 * firmware back a working boot: in the e2e run of 2026-12-07 it printed "No more network devices" and
 * the machine stayed there (15 minutes, network first in the boot order). `snponly.efi` (the same iPXE,
 * from the same Debian package) drives the NIC through the firmware's own Simple Network Protocol and
 * leaves it in place: on `exit 1` the boot manager logs `failed to start Boot0003 "UEFI PXEv6 …"` and goes
 * on to its next boot option (UEFI 2.x §3.1.1), as the IPv4 lab's iPXE option ROM does.
 *
 * So over IPv6 a client that would get Debian's full `ipxe.efi` (PXE over TFTP, or UEFI HTTP boot) gets
 * `dhcp6.uefiIpxe` instead, `snponly.efi` by default; a loader the operator named in `bootFiles` that is
 * not `ipxe.efi` is left alone.
 */
import { IPXE_HTTP_FILE, loaderUrl } from '../dhcp/boot-files.js';
import type { BootConfig } from '../dhcp/pxe.js';

/** The iPXE builds in Debian's ipxe package that boot x64 UEFI. */
export const UEFI_IPXE_BUILDS = ['snponly.efi', 'ipxe.efi'] as const;
export type UefiIpxeBuild = (typeof UEFI_IPXE_BUILDS)[number];

/**
 * The DHCPv4 choices (dhcp/boot-files.ts resolveBootFiles) with `build` for Debian's ipxe.efi, also where a
 * node's own chain (its `uefi-chain:ipxe` tag) picks iPXE. The Secure Boot chain (shim, the signed ISO) is
 * left as it is: it drives the NIC through the firmware's own network stack already.
 */
export function ipv6UefiLoader(boot: BootConfig, build: UefiIpxeBuild, httpBaseUrl: string): BootConfig {
  const fullHttp = loaderUrl(httpBaseUrl, IPXE_HTTP_FILE);
  const file = (f: string): string => (f === IPXE_HTTP_FILE ? build : f);
  const url = (u: string): string => (u === fullHttp ? loaderUrl(httpBaseUrl, build) : u);
  // A per-MAC choice with the same replacement applied to what it picks.
  const perMac =
    (choose: (mac: string) => string | undefined, map: (v: string) => string) =>
    (mac: string): string | undefined => {
      const v = choose(mac);
      return v === undefined ? undefined : map(v);
    };
  const { uefiFileFor, x64HttpUrlFor } = boot;
  return {
    ...boot,
    uefiFile: file(boot.uefiFile),
    ...(uefiFileFor ? { uefiFileFor: perMac(uefiFileFor, file) } : {}),
    ...(boot.x64HttpUrl !== undefined ? { x64HttpUrl: url(boot.x64HttpUrl) } : {}),
    ...(x64HttpUrlFor ? { x64HttpUrlFor: perMac(x64HttpUrlFor, url) } : {}),
  };
}
