/**
 * The master's background build of the node environment (master/boot/node-image-builder.ts): states,
 * retries with a capped doubling delay, autoBuild off, a stop between stages. The builder itself is
 * replaced by a scripted one; the real one runs in test/integration/node-image-auto-build.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Response } from 'express';
import {
  nodeImageSummary,
  retryDelayMs,
  startNodeImageBuilder,
  type NodeImageStatus,
} from '../../master/boot/node-image-builder.js';
import { sendFile } from '../../master/boot/send-file.js';
import type { BuildNodeImageOptions, NodeImage } from '../../node-images/index.js';
import { buildConfig } from '../../master/config.js';
import { silentLogger } from '../../master/util/logger.js';

/** A data directory that does not exist: nothing is on disk, and nothing is written by these tests. */
const DATA_DIR = '/nonexistent/corral-unit/.lab/data';

function config(nodeImage: Record<string, unknown> = {}): ReturnType<typeof buildConfig> {
  return buildConfig({ dataDir: DATA_DIR, address: '10.0.0.1', nodeImage }, {});
}

function image(outDir: string): NodeImage {
  return {
    kernelPath: join(outDir, 'vmlinuz'),
    initrdPath: join(outDir, 'initrd.img'),
    kernelVersion: '6.1.0-57-amd64',
    kernelSha256: 'k',
    initrdSha256: 'i',
  };
}

async function until(what: string, check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('retry delay doubles from 30 s and stops growing at 15 min', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 50].map((n) => retryDelayMs(n) / 1000),
    [30, 60, 120, 240, 480, 900, 900, 900],
  );
});

test('a failed build is reported with its reason and retried; the retry succeeds', async () => {
  const calls: BuildNodeImageOptions[] = [];
  let gate: (() => void) | undefined;
  const build = async (opts: BuildNodeImageOptions): Promise<NodeImage> => {
    calls.push(opts);
    opts.onProgress?.({ stage: 'kernel', percent: 0 });
    if (calls.length === 1) throw new Error('cannot resolve linux-image-amd64 with apt-cache\nsecond line');
    opts.onProgress?.({ stage: 'initramfs', percent: 65 });
    await new Promise<void>((r) => (gate = r));
    opts.onProgress?.({ stage: 'done', percent: 100 });
    return image(opts.outDir);
  };
  const b = startNodeImageBuilder({
    config: config({ flavour: 'generic', cacheDir: '/cache' }),
    logger: silentLogger(),
    build,
    retryBaseMs: 40,
  });
  try {
    await until('failure', () => b.status().state === 'failed');
    const failed = b.status();
    assert.equal(failed.reason, 'cannot resolve linux-image-amd64 with apt-cache');
    assert.equal(failed.failures, 1);
    assert.equal(failed.available, false);
    assert.equal(failed.stage, 'kernel');
    assert.ok(Date.parse(failed.retryAt ?? '') > Date.now() - 1000);
    assert.equal(calls[0]?.outDir, join(DATA_DIR, 'node-image'));
    assert.equal(calls[0]?.flavour, 'generic');
    assert.equal(calls[0]?.cacheDir, '/cache');
    assert.equal(calls[0]?.sourceDateEpoch, 0);

    await until('the retry to reach initramfs', () => b.status().stage === 'initramfs');
    assert.equal(b.status().state, 'building');
    assert.equal(b.status().percent, 65);
    assert.equal(b.files(), undefined, 'nothing served while building from nothing');
    gate?.();
    await until('ready', () => b.status().state === 'ready');
    assert.equal(calls.length, 2);
    assert.equal(b.status().kernelVersion, '6.1.0-57-amd64');
    assert.equal(b.status().failures, undefined);
    assert.deepEqual(b.files(), {
      kernelPath: join(DATA_DIR, 'node-image', 'vmlinuz'),
      initrdPath: join(DATA_DIR, 'node-image', 'initrd.img'),
    });
  } finally {
    await b.close();
  }
});

test('with autoBuild off nothing is built and the status says what to run', async () => {
  let called = false;
  const b = startNodeImageBuilder({
    config: config({ autoBuild: false }),
    logger: silentLogger(),
    build: () => {
      called = true;
      return Promise.reject(new Error('unexpected'));
    },
  });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(called, false);
  assert.equal(b.status().state, 'off');
  assert.match(
    nodeImageSummary(b.status(), Date.now()),
    /autoBuild is off: on the master run `corral node-image build`/,
  );
  await b.close();
});

test('closing stops a running build at its next stage, and no retry follows', async () => {
  let calls = 0;
  let gate: (() => void) | undefined;
  let stopped: unknown;
  const b = startNodeImageBuilder({
    config: config(),
    logger: silentLogger(),
    retryBaseMs: 1,
    build: async (opts) => {
      calls += 1;
      opts.onProgress?.({ stage: 'kernel', percent: 0 });
      await new Promise<void>((r) => (gate = r));
      try {
        opts.onProgress?.({ stage: 'modules', percent: 50 });
      } catch (err) {
        stopped = err;
        throw err;
      }
      return image(opts.outDir);
    },
  });
  await until('the build to start', () => gate !== undefined);
  const closing = b.close(2000);
  gate?.();
  await closing;
  assert.match(String(stopped), /the master is stopping/);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(calls, 1);
  assert.notEqual(b.status().state, 'failed', 'a stop is not a failure');
});

test('summary lines for the dashboard, the boot script and the 404 of a node file', () => {
  const now = Date.parse('2026-12-06T12:00:00Z');
  const base: NodeImageStatus = { state: 'building', available: false, since: '2026-12-06T11:59:00Z' };
  assert.equal(
    nodeImageSummary({ ...base, stage: 'initramfs', percent: 65 }, now),
    'Corral is building the node environment (initramfs, 65%)',
  );
  assert.equal(
    nodeImageSummary({ ...base, available: true, stage: 'kernel', percent: 0 }, now),
    'checking the node environment for updates (kernel, 0%); the current one is served',
  );
  assert.equal(
    nodeImageSummary({ ...base, state: 'ready', available: true, kernelVersion: '6.1.0-57-amd64' }, now),
    'ready (kernel 6.1.0-57-amd64)',
  );
  assert.equal(
    nodeImageSummary(
      { ...base, state: 'failed', reason: 'apt-get download failed', retryAt: '2026-12-06T12:01:00Z' },
      now,
    ),
    'the node environment build failed: apt-get download failed; next attempt in 60 s',
  );
});

test('the file sender takes only absolute, normalised paths chosen by the server', () => {
  const res = {} as Response;
  for (const bad of ['data/node-image/vmlinuz', '/srv/corral/../etc/shadow', '/srv//corral/x']) {
    assert.throws(() => sendFile(res, bad, silentLogger()), /absolute, normalised path/, bad);
  }
});
