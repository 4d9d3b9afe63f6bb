/**
 * The `bootFiles` config slice: which boot program each client architecture gets (RFC 4578 §2.1 and the
 * IANA "Processor Architecture Types" registry for DHCP option 93 and DHCPv6 option 61), and how it is
 * turned into the DHCP server's BootConfig and the names the master serves over TFTP and HTTP.
 *
 * The PXE (TFTP) entries default to the older `boot.biosFile`/`boot.uefiFile`, so existing configs keep
 * working. The HTTP entries are file names served at `/boot/loader/NAME`, or whole http(s) URLs.
 */
import { z } from 'zod';
import type { BootConfig } from './pxe.js';
import type { UefiChain } from '../boot/config.js';

/** A plain file name in boot.ipxeDir (served by fixed name, never a path: no '/' or '..'). */
const fileName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._+-]{0,126}$/,
    'expected a file name in boot.ipxeDir like ipxe.efi (no directories)',
  );

const fileOrUrl = z.union([
  fileName,
  z
    .string()
    .url()
    .regex(/^https?:\/\//, 'expected a file name or an http(s):// URL'),
]);

export const BootFilesSchema = z
  .object({
    /** Arch 0, x86 BIOS, over TFTP. Default: boot.biosFile (undionly.kpxe). */
    x86Bios: fileName.optional(),
    /** Arch 7 and 9, x64 UEFI, over TFTP. Default: boot.uefiFile (ipxe.efi). */
    x64Uefi: fileName.optional(),
    /** Arch 6, IA32 UEFI, over TFTP. Default: x64Uefi (which will not start there: set an i386 build). */
    ia32Uefi: fileName.optional(),
    /** Arch 11, ARM64 UEFI, over TFTP. No default: Debian 12's ipxe package has no ARM64 build. */
    arm64Uefi: fileName.optional(),
    /**
     * Arch 16, x64 UEFI HTTP boot: a file served at /boot/loader/NAME, or a URL, for every such client.
     * Unset (the default): boot.uefiChain decides, per node as for PXE — the Secure Boot chain's ISO
     * (boot/http-boot-iso.ts) or iPXE's `ipxe.efi`.
     */
    x64UefiHttp: fileOrUrl.optional(),
    /** Arch 19, ARM64 UEFI HTTP boot. Default: arm64Uefi over HTTP, if set. */
    arm64UefiHttp: fileOrUrl.optional(),
  })
  .strict();

export type BootFilesConfig = z.infer<typeof BootFilesSchema>;
export const BOOT_FILES_DEFAULTS = {} as const;

/** iPXE for x64 UEFI HTTP boot when the chain is `ipxe` (or no chain is given: DHCPv6). */
export const IPXE_HTTP_FILE = 'ipxe.efi';
/** iPXE on the firmware's network driver (SNP): what x64 UEFI clients get over IPv6 (dhcp6/uefi-loader.ts). */
export const IPXE_SNP_FILE = 'snponly.efi';

/** The older `boot` keys the TFTP entries fall back to. */
export interface LegacyBootFiles {
  readonly biosFile: string;
  readonly uefiFile: string;
}

/** Where a loader file is served over HTTP, relative to the public base URL. */
export function loaderUrl(httpBaseUrl: string, name: string): string {
  return `${httpBaseUrl.replace(/\/+$/, '')}/boot/loader/${encodeURIComponent(name)}`;
}

function httpUrl(httpBaseUrl: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return /^https?:\/\//.test(value) ? value : loaderUrl(httpBaseUrl, value);
}

/**
 * The Secure Boot chain's names in the TFTP root (issue 18). shim loads `grubx64.efi` from the directory
 * it was loaded from (shim's DEFAULT_LOADER), so both sit at the root, under the names shim expects.
 */
export const SHIM_NAME = 'shimx64.efi';
export const GRUB_NAME = 'grubx64.efi';

/**
 * Which chain UEFI x86-64 PXE and HTTP boot clients get: boot.uefiChain for all, `forNode` for a MAC whose node (or the
 * enrolment rule that configured it) chose otherwise. Without it (DHCPv6), iPXE as before.
 */
export interface UefiChainChoice {
  readonly uefiChain: UefiChain;
  readonly forNode?: (mac: string) => UefiChain | undefined;
}

/**
 * A node's own chain, from its tags (issue 18): `uefi-chain:ipxe` or `uefi-chain:secure-boot`, set on the
 * node (API, console) or by the enrolment rule that caught it (its `tags` action). Tags, not a column:
 * rules already set them, the console already edits them, and they replicate with the node.
 */
export const UEFI_CHAIN_TAG = 'uefi-chain:';

export function uefiChainFromTags(tags: readonly string[]): UefiChain | undefined {
  // The last one wins if both are set: tags are sorted, so `secure-boot` over `ipxe`, the safer chain.
  let chosen: UefiChain | undefined;
  for (const t of tags) {
    if (t === `${UEFI_CHAIN_TAG}ipxe`) chosen = 'ipxe';
    if (t === `${UEFI_CHAIN_TAG}secure-boot`) chosen = 'secure-boot';
  }
  return chosen;
}

/** The DHCP server's per-architecture choices, resolved from the slice and the older keys. */
export function resolveBootFiles(
  files: Readonly<BootFilesConfig>,
  legacy: LegacyBootFiles,
  httpBaseUrl: string,
  tftpServer: string,
  chain?: UefiChainChoice,
  /** The Secure Boot chain's URL for an HTTP boot client (boot/http-boot-iso.ts httpBootIsoUrl). */
  signedHttpUrl?: (mac: string) => string,
): BootConfig {
  const ipxeX64 = files.x64Uefi ?? legacy.uefiFile;
  // An explicit bootFiles.x64Uefi is the operator's choice for every x64 UEFI client: it wins.
  const signed = chain !== undefined && files.x64Uefi === undefined;
  const fileFor = (c: UefiChain): string => (c === 'secure-boot' ? SHIM_NAME : ipxeX64);
  const x64 = signed ? fileFor(chain.uefiChain) : ipxeX64;
  const forNode = signed ? chain.forNode : undefined;
  const arm64Http = httpUrl(httpBaseUrl, files.arm64UefiHttp ?? files.arm64Uefi);
  const ipxeHttp = loaderUrl(httpBaseUrl, IPXE_HTTP_FILE);
  const x64Http = httpUrl(httpBaseUrl, files.x64UefiHttp) ?? ipxeHttp;
  // HTTP boot (arch 16) follows the same chain choice, unless bootFiles.x64UefiHttp names the operator's
  // own loader: Secure Boot → the ISO of the signed chain, rendered per MAC; ipxe → ipxe.efi.
  const signedFor = chain !== undefined && files.x64UefiHttp === undefined ? signedHttpUrl : undefined;
  return {
    httpBaseUrl,
    tftpServer,
    biosFile: files.x86Bios ?? legacy.biosFile,
    uefiFile: x64,
    ...(forNode
      ? {
          uefiFileFor: (mac: string) => {
            const c = forNode(mac);
            return c === undefined ? undefined : fileFor(c);
          },
        }
      : {}),
    ...(files.ia32Uefi ? { ia32UefiFile: files.ia32Uefi } : {}),
    ...(files.arm64Uefi ? { arm64UefiFile: files.arm64Uefi } : {}),
    x64HttpUrl: x64Http,
    ...(signedFor && chain
      ? {
          x64HttpUrlFor: (mac: string) =>
            (chain.forNode?.(mac) ?? chain.uefiChain) === 'secure-boot' ? signedFor(mac) : ipxeHttp,
        }
      : {}),
    ...(arm64Http ? { arm64HttpUrl: arm64Http } : {}),
  };
}

/**
 * Every loader file name the master serves from boot.ipxeDir: over TFTP (copied to the TFTP root) and
 * over HTTP at /boot/loader/NAME. HTTP entries given as URLs point elsewhere and are not served here.
 */
export function loaderFileNames(files: Readonly<BootFilesConfig>, legacy: LegacyBootFiles): string[] {
  const names = [
    files.x86Bios ?? legacy.biosFile,
    files.x64Uefi ?? legacy.uefiFile,
    files.ia32Uefi,
    files.arm64Uefi,
    files.x64UefiHttp ?? IPXE_HTTP_FILE,
    files.arm64UefiHttp,
    IPXE_SNP_FILE,
  ];
  return [...new Set(names.filter((n): n is string => n !== undefined && !/^https?:\/\//.test(n)))];
}
