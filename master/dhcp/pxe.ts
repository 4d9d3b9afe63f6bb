/**
 * Which boot program a client gets (pure). The chain is: the NIC's PXE ROM (BIOS or UEFI) receives an
 * iPXE binary by TFTP; iPXE then asks DHCP again, now with user class "iPXE", and receives the HTTP URL
 * of its boot script instead — so a node chainloads into iPXE exactly once and never loops.
 */
import type { DhcpOptions } from './codec.js';

export interface BootConfig {
  /** Base URL of the master's HTTP boot routes, e.g. "http://10.0.0.1:8080" (no trailing slash needed). */
  readonly httpBaseUrl: string;
  /** TFTP path of the BIOS iPXE binary (Debian `ipxe`: /usr/lib/ipxe/undionly.kpxe). */
  readonly biosFile: string;
  /** TFTP path of the x86-64 UEFI iPXE binary (Debian `ipxe`: /usr/lib/ipxe/ipxe.efi). */
  readonly uefiFile: string;
  /**
   * The x86-64 UEFI file for one MAC when its node chose a chain other than the default (issue 18:
   * boot-files.ts resolves it from the node's or its enrolment rule's setting); undefined: `uefiFile`.
   */
  readonly uefiFileFor?: (mac: string) => string | undefined;
  /**
   * For IA32 UEFI firmware (arch 6). Debian's ipxe.efi is x86-64 only and will not start there, so
   * operators with such machines point this at an i386 build; by default it is `uefiFile`.
   */
  readonly ia32UefiFile?: string;
  /** TFTP path for ARM64 UEFI firmware (arch 11); without it such clients get no boot file. */
  readonly arm64UefiFile?: string;
  /** The URL an x64 UEFI HTTP boot client (arch 16) loads; no TFTP involved (UEFI 2.5+ §24.7). */
  readonly x64HttpUrl?: string;
  /**
   * The x64 HTTP boot URL for one MAC, by its chain (issue 18: the Secure Boot chain's ISO, or iPXE);
   * undefined: `x64HttpUrl`.
   */
  readonly x64HttpUrlFor?: (mac: string) => string | undefined;
  /** The URL an ARM64 UEFI HTTP boot client (arch 19) loads. */
  readonly arm64HttpUrl?: string;
  /** next-server (siaddr) and option 66: the TFTP server's address. */
  readonly tftpServer: string;
}

/**
 * RFC 4578 §2.1 / IANA "Processor Architecture Types" for option 93, as far as we serve them.
 * 7 and 9 are both x86-64 UEFI: RFC 4578 called 9 "EFI x86-64" and 7 "EFI BC", and firmware in the field
 * sends either for the same machines (IANA later fixed both as x64 UEFI), so both get ipxe.efi.
 */
export const ARCH = {
  X86_BIOS: 0,
  IA32_UEFI: 6,
  X64_UEFI: 7,
  X64_UEFI_ALT: 9,
  ARM64_UEFI: 11,
  X64_UEFI_HTTP: 16,
  ARM64_UEFI_HTTP: 19,
} as const;

export type BootChoice =
  | { kind: 'none'; reason: string }
  | { kind: 'tftp'; file: string; server: string; arch: number }
  | { kind: 'http'; url: string }
  /** UEFI HTTP boot: the firmware itself fetches `url`; the reply must echo vendor class "HTTPClient". */
  | { kind: 'uefi-http'; url: string; arch: number };

/** Option 60 starts with "PXEClient" for PXE ROMs (PXE 2.1 §2.2) and for iPXE. */
export function isPxeClient(o: DhcpOptions): boolean {
  return o.vendorClassId?.startsWith('PXEClient') ?? false;
}

/**
 * UEFI HTTP boot clients (UEFI 2.5+ §24.7.2) send option 60 "HTTPClient:Arch:xxxxx:UNDI:yyyzzz" and will
 * only take an offer whose option 60 is "HTTPClient" and whose boot file is a URL.
 */
export function isHttpClient(o: DhcpOptions): boolean {
  return o.vendorClassId?.startsWith('HTTPClient') ?? false;
}

/** iPXE sends user class (77) "iPXE", as a bare string or RFC 3004 list; either decodes to a list. */
export function isIpxe(o: DhcpOptions): boolean {
  return o.userClass?.includes('iPXE') ?? false;
}

/**
 * The client's architecture: the first type in option 93, else the one named in the vendor class
 * ("PXEClient:Arch:00007:UNDI:003016", PXE 2.1 §2.2), else null. Only the first type counts: a client
 * listing several ranks them by preference (RFC 4578 §2.1).
 */
export function clientArchitecture(o: DhcpOptions): number | null {
  const first = o.clientArch?.[0];
  if (first !== undefined) return first;
  const m = /^(?:PXEClient|HTTPClient):Arch:(\d{5})/.exec(o.vendorClassId ?? '');
  return m?.[1] !== undefined ? Number(m[1]) : null;
}

export function bootScriptUrl(httpBaseUrl: string, mac: string): string {
  // The boot route reads the MAC from the query; the DHCP server already knows it, so iPXE need not
  // expand ${net0/mac} and the URL is the same whichever NIC iPXE booted from. `${platform}` (pcbios or
  // efi) is expanded by iPXE (it expands settings in its DHCP filename): the master's local-disk answer can
  // report a failed disk on BIOS only (boot/local-fallback.ts).
  return `${httpBaseUrl.replace(/\/+$/, '')}/boot/ipxe?mac=${mac}&platform=\${platform}`;
}

export function chooseBoot(o: DhcpOptions, mac: string, boot: BootConfig): BootChoice {
  if (isIpxe(o)) return { kind: 'http', url: bootScriptUrl(boot.httpBaseUrl, mac) };
  if (isHttpClient(o)) return chooseHttpBoot(o, mac, boot);
  if (!isPxeClient(o)) return { kind: 'none', reason: 'not a PXE client (no "PXEClient" vendor class)' };
  const arch = clientArchitecture(o);
  switch (arch) {
    case null:
    case ARCH.X86_BIOS:
      // A PXE ROM that names no architecture predates RFC 4578: those are all BIOS.
      return { kind: 'tftp', file: boot.biosFile, server: boot.tftpServer, arch: arch ?? 0 };
    case ARCH.IA32_UEFI:
      return { kind: 'tftp', file: boot.ia32UefiFile ?? boot.uefiFile, server: boot.tftpServer, arch };
    case ARCH.X64_UEFI:
    case ARCH.X64_UEFI_ALT:
      return { kind: 'tftp', file: boot.uefiFileFor?.(mac) ?? boot.uefiFile, server: boot.tftpServer, arch };
    case ARCH.ARM64_UEFI:
      if (boot.arm64UefiFile)
        return { kind: 'tftp', file: boot.arm64UefiFile, server: boot.tftpServer, arch };
      return { kind: 'none', reason: 'ARM64 UEFI (arch 11) has no boot file: set bootFiles.arm64Uefi' };
    default:
      return {
        kind: 'none',
        reason: `client architecture ${arch} has no boot file (BIOS 0, UEFI 6/7/9/11 are served)`,
      };
  }
}

/**
 * An HTTPClient's architecture must be an HTTP one (IANA "Processor Architecture Types": 16 x64 UEFI HTTP,
 * 19 ARM64 UEFI HTTP). A PXE architecture under an HTTPClient class is a confused client: nothing.
 */
function chooseHttpBoot(o: DhcpOptions, mac: string, boot: BootConfig): BootChoice {
  const arch = clientArchitecture(o);
  const url =
    arch === ARCH.X64_UEFI_HTTP
      ? (boot.x64HttpUrlFor?.(mac) ?? boot.x64HttpUrl)
      : arch === ARCH.ARM64_UEFI_HTTP
        ? boot.arm64HttpUrl
        : undefined;
  if (url) return { kind: 'uefi-http', url, arch: arch ?? 0 };
  const which = arch === null ? 'no architecture' : `architecture ${arch}`;
  return {
    kind: 'none',
    reason: `HTTPClient with ${which} has no HTTP boot URL (x64 16: bootFiles.x64UefiHttp, ARM64 19: bootFiles.arm64UefiHttp)`,
  };
}
