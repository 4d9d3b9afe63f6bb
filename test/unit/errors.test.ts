import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CATALOGUE, CorralError } from '../../master/util/errors.js';
import { installPath } from '../../master/util/paths.js';

test('every error code is documented in docs/errors.md with its status', () => {
  const doc = readFileSync(installPath('docs', 'errors.md'), 'utf8');
  for (const [code, { status }] of Object.entries(ERROR_CATALOGUE)) {
    assert.match(doc, new RegExp(`\\| \`${code}\` \\| ${status} \\|`), `${code} missing from docs/errors.md`);
  }
});

test('CorralError carries code, status and hint', () => {
  const e = new CorralError('NODE_NOT_FOUND', 'no node x');
  assert.equal(e.status, 404);
  assert.match(e.hint, /GET \/api\/v1\/nodes/);
});
