/**
 * node-images/exec.ts: a stopping master ends the tools its node-environment build runs (killRunningTools),
 * so a child such as apt-cache cannot keep the process alive after everything else has closed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execBuffer, killRunningTools } from '../../node-images/exec.js';
import { CorralError } from '../../master/util/errors.js';

test('killRunningTools ends a running tool: its call fails at once as a build failure, and none is left', async () => {
  const started = Date.now();
  const call = execBuffer('sleep', ['30']);
  assert.equal(killRunningTools(), 1);
  await assert.rejects(
    call,
    (e: unknown) => e instanceof CorralError && e.code === 'NODE_IMAGE_BUILD_FAILED',
  );
  assert.ok(Date.now() - started < 10_000, 'the tool ended well before its 30 s');
  assert.equal(killRunningTools(), 0, 'a finished tool is no longer tracked');
});

test('a tool that ends by itself is no longer tracked', async () => {
  assert.equal((await execBuffer('echo', ['ok'])).toString().trim(), 'ok');
  assert.equal(killRunningTools(), 0);
});

test('a tool ended while its input is still being written fails as a build failure, not an uncaught EPIPE', async () => {
  // 64 MiB to `sleep`, which never reads it: the pipe fills, then the tool is ended mid-write.
  const call = execBuffer('sleep', ['30'], { input: Buffer.alloc(64 * 2 ** 20) });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(killRunningTools(), 1);
  await assert.rejects(
    call,
    (e: unknown) => e instanceof CorralError && e.code === 'NODE_IMAGE_BUILD_FAILED',
  );
  // An EPIPE left unhandled would surface as an uncaught exception, which fails this file.
  await new Promise((r) => setTimeout(r, 200));
});
