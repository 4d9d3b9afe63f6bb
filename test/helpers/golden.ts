import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { installPath } from '../../master/util/paths.js';

/** Where a golden file lives: `test/fixtures/<name>` in the source tree (not dist/). */
export function fixturePath(name: string): string {
  return installPath('test', 'fixtures', name);
}

/**
 * Compares rendered or decoded text with its checked-in golden file, `test/fixtures/<name>`.
 * `UPDATE_FIXTURES=1` (exactly "1") rewrites the file first, so the change is reviewed in the diff.
 */
export function golden(name: string, text: string, message?: string): void {
  const file = fixturePath(name);
  if (process.env['UPDATE_FIXTURES'] === '1') {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  assert.equal(
    text,
    readFileSync(file, 'utf8'),
    message ?? `golden ${name} differs (UPDATE_FIXTURES=1 to regenerate)`,
  );
}
