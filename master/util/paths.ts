import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';

/**
 * The installation root (the folder with package.json, templates/, web-ui/). Compiled code runs from
 * dist/master/util/, so the root is three levels up from this file.
 */
export const INSTALL_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');

export function installPath(...segments: string[]): string {
  return join(INSTALL_ROOT, ...segments);
}
