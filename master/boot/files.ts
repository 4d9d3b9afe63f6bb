import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BootConfig } from './config.js';
import type { Logger } from '../util/logger.js';
import { loaderFileNames, type BootFilesConfig } from '../dhcp/boot-files.js';

/**
 * The TFTP root holds only the iPXE loaders, copied (not linked: the TFTP server refuses links out of its
 * root) from Debian's ipxe package. Copied again when the package's file changed (size or mtime).
 */
export function prepareTftpRoot(
  config: {
    dataDir: string;
    boot: Pick<BootConfig, 'biosFile' | 'uefiFile' | 'ipxeDir'>;
    bootFiles: Readonly<BootFilesConfig>;
  },
  logger: Logger,
): { root: string; missing: string[] } {
  const root = join(config.dataDir, 'tftp');
  mkdirSync(root, { recursive: true });
  const missing: string[] = [];
  for (const name of loaderFileNames(config.bootFiles, config.boot)) {
    const src = join(config.boot.ipxeDir, name);
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
    logger.warn({ missing }, 'iPXE loaders missing: install Debian package ipxe (the setup script does)');
  }
  return { root, missing };
}
