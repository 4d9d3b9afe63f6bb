import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BootConfig } from './config.js';
import type { Logger } from '../util/logger.js';
import { GRUB_NAME, loaderFileNames, SHIM_NAME, type BootFilesConfig } from '../dhcp/boot-files.js';

/**
 * The TFTP root holds only the iPXE loaders, copied (not linked: the TFTP server refuses links out of its
 * root) from Debian's ipxe package. Copied again when the package's file changed (size or mtime).
 */
export function prepareTftpRoot(
  config: {
    dataDir: string;
    boot: Pick<BootConfig, 'biosFile' | 'uefiFile' | 'ipxeDir' | 'shimFile' | 'grubFile'>;
    bootFiles: Readonly<BootFilesConfig>;
  },
  logger: Logger,
): { root: string; missing: string[] } {
  const root = join(config.dataDir, 'tftp');
  mkdirSync(root, { recursive: true });
  const missing: string[] = [];
  // The Secure Boot chain (issue 18) comes from Debian's shim-signed and grub-efi-amd64-signed, under the
  // names shim looks for; the iPXE loaders from boot.ipxeDir.
  const files: [string, string][] = [
    ...loaderFileNames(config.bootFiles, config.boot).map((n): [string, string] => [
      join(config.boot.ipxeDir, n),
      n,
    ]),
    [config.boot.shimFile, SHIM_NAME],
    [config.boot.grubFile, GRUB_NAME],
  ];
  for (const [src, name] of files) {
    const dst = join(root, name);
    if (!existsSync(src)) {
      missing.push(src);
      continue;
    }
    const s = statSync(src);
    const d = existsSync(dst) ? statSync(dst) : undefined;
    if (!d || d.size !== s.size || d.mtimeMs < s.mtimeMs) copyFileSync(src, dst);
  }
  if (missing.length) {
    logger.warn(
      { missing },
      'boot loaders missing: install Debian packages ipxe, shim-signed and grub-efi-amd64-signed (the setup script does)',
    );
  }
  return { root, missing };
}
