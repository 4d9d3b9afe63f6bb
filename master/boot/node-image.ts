import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface NodeImageFiles {
  kernelPath: string;
  initrdPath: string;
}

/** Where `corral node-image build` puts the node environment inside a data directory. */
export function nodeImageDir(dataDir: string): string {
  return join(dataDir, 'node-image');
}

export function locateNodeImage(dataDir: string): NodeImageFiles | undefined {
  const dir = nodeImageDir(dataDir);
  const files = { kernelPath: join(dir, 'vmlinuz'), initrdPath: join(dir, 'initrd.img') };
  return existsSync(files.kernelPath) && existsSync(files.initrdPath) ? files : undefined;
}
