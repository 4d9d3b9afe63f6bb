/**
 * The master prepares its own node environment (kernel + Corral initramfs), so a plain `corral master` on
 * a new data directory boots nodes without the operator first finding `corral node-image build`.
 *
 * At start it runs the same builder as that command (node-images/index.ts, buildNodeImage) in the
 * background. The builder is idempotent: with its inputs unchanged (kernel package, busybox, agent
 * scripts, module list, its own code) it returns the image already on disk after hashing them, so a
 * restart costs about a second; when the Debian kernel package or the agent changed, it rebuilds. An
 * image already on disk is served while that runs (files are replaced by rename, never half-written), and
 * stays served if a refresh fails. A failed build is logged with its reason and retried with a doubling
 * delay, capped (RETRY_BASE_MS, RETRY_MAX_MS): a missing apt list or a mirror that is down often mends.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeImageConfig } from './config.js';
import type { Logger } from '../util/logger.js';
import {
  buildNodeImage,
  MANIFEST_FILE,
  type BuildNodeImageOptions,
  type NodeImage,
  type NodeImageStage,
} from '../../node-images/index.js';
import { killRunningTools } from '../../node-images/exec.js';
import { locateNodeImage, nodeImageDir, type NodeImageFiles } from './node-image.js';

export const RETRY_BASE_MS = 30_000;
export const RETRY_MAX_MS = 15 * 60_000;

/**
 * - `building`: a build (or the check that finds the image up to date) is running;
 * - `ready`: the image on disk matches its inputs (or, with autoBuild off, is simply there);
 * - `failed`: the last build failed (`reason`); another is due at `retryAt`;
 * - `off`: nodeImage.autoBuild is false and no image has been built.
 * `available` says whether a kernel and initrd are on disk and served meanwhile.
 */
export type NodeImageState = 'building' | 'ready' | 'failed' | 'off';

export interface NodeImageStatus {
  state: NodeImageState;
  available: boolean;
  stage?: NodeImageStage;
  percent?: number;
  reason?: string;
  /** Failed builds in a row. */
  failures?: number;
  /** ISO time of the next attempt after a failure. */
  retryAt?: string;
  kernelVersion?: string;
  /** ISO time the state was entered. */
  since: string;
}

export interface NodeImageBuilder {
  status(): NodeImageStatus;
  /** The kernel and initrd to serve, or undefined while none is on disk. */
  files(): NodeImageFiles | undefined;
  /** Stops retries; a running build stops at its next stage (waited for up to `waitMs`). */
  close(waitMs?: number): Promise<void>;
}

export interface NodeImageBuilderDeps {
  config: { dataDir: string; nodeImage: NodeImageConfig };
  logger: Logger;
  /** The builder; buildNodeImage unless a caller brings its own. */
  build?: (opts: BuildNodeImageOptions) => Promise<NodeImage>;
  now?: () => number;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/** Delay before retry number `failures` (1 = after the first failure): base, 2×base, 4×base, ... capped. */
export function retryDelayMs(failures: number, baseMs = RETRY_BASE_MS, maxMs = RETRY_MAX_MS): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
}

/** One line for people: the dashboard, the boot script of a waiting node, the 404 of a node file. */
export function nodeImageSummary(s: NodeImageStatus, now: number): string {
  switch (s.state) {
    case 'building': {
      const where = `${s.stage ?? 'starting'}, ${s.percent ?? 0}%`;
      return s.available
        ? `checking the node environment for updates (${where}); the current one is served`
        : `Corral is building the node environment (${where})`;
    }
    case 'ready':
      return `ready${s.kernelVersion ? ` (kernel ${s.kernelVersion})` : ''}`;
    case 'failed': {
      const retry = s.retryAt
        ? `; next attempt in ${Math.max(0, Math.ceil((Date.parse(s.retryAt) - now) / 1000))} s`
        : '';
      const served = s.available ? '; the previous one is still served' : '';
      return `the node environment build failed: ${s.reason ?? 'unknown error'}${retry}${served}`;
    }
    case 'off':
      return 'the node environment is not built and nodeImage.autoBuild is off: on the master run `corral node-image build`';
  }
}

/** The sourceDateEpoch an operator's `corral node-image build` used, so a refresh does not rebuild for it. */
function builtEpoch(outDir: string): number {
  try {
    const m = JSON.parse(readFileSync(join(outDir, MANIFEST_FILE), 'utf8')) as { sourceDateEpoch?: unknown };
    return typeof m.sourceDateEpoch === 'number' && Number.isInteger(m.sourceDateEpoch)
      ? m.sourceDateEpoch
      : 0;
  } catch {
    return 0;
  }
}

class Cancelled extends Error {}

export function startNodeImageBuilder(deps: NodeImageBuilderDeps): NodeImageBuilder {
  const { config } = deps;
  const log = deps.logger.child({ module: 'node-image' });
  const now = deps.now ?? Date.now;
  const build = deps.build ?? buildNodeImage;
  const outDir = nodeImageDir(config.dataDir);
  let files = locateNodeImage(config.dataDir);
  let status: NodeImageStatus = { state: 'off', available: files !== undefined, since: iso(now()) };
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let closed = false;

  function iso(ms: number): string {
    return new Date(ms).toISOString();
  }
  function set(next: Omit<NodeImageStatus, 'since' | 'available'>): void {
    const since = next.state === status.state ? status.since : iso(now());
    status = { ...next, available: files !== undefined, since };
  }

  async function attempt(): Promise<void> {
    timer = undefined;
    let lastStage: NodeImageStage | undefined;
    set({ state: 'building', stage: 'kernel', percent: 0 });
    const started = now();
    try {
      const image = await build({
        cacheDir: config.nodeImage.cacheDir,
        outDir,
        flavour: config.nodeImage.flavour,
        sourceDateEpoch: builtEpoch(outDir),
        logger: deps.logger,
        onProgress: (p) => {
          // Throwing here is how a closing master stops a build between stages (the builder has no signal).
          if (closed) throw new Cancelled('the master is stopping');
          set({ state: 'building', stage: p.stage, percent: p.percent });
          if (p.stage !== lastStage)
            log.info({ stage: p.stage, percent: p.percent }, 'node environment build');
          lastStage = p.stage;
        },
      });
      files = { kernelPath: image.kernelPath, initrdPath: image.initrdPath };
      failures = 0;
      set({ state: 'ready', kernelVersion: image.kernelVersion });
      log.info({ kernelVersion: image.kernelVersion, ms: now() - started, outDir }, 'node environment ready');
    } catch (err) {
      if (err instanceof Cancelled || closed) {
        log.info('node environment build stopped: the master is stopping');
        return;
      }
      failures += 1;
      const delay = retryDelayMs(failures, deps.retryBaseMs, deps.retryMaxMs);
      const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? 'unknown error';
      files ??= locateNodeImage(config.dataDir);
      set({
        state: 'failed',
        reason,
        failures,
        retryAt: iso(now() + delay),
        ...(lastStage ? { stage: lastStage } : {}),
      });
      log.error({ err, reason, failures, retryInMs: delay }, 'node environment build failed; will retry');
      timer = setTimeout(() => void run(), delay);
      timer.unref();
    }
  }

  function run(): Promise<void> {
    if (closed || running) return running ?? Promise.resolve();
    running = attempt().finally(() => (running = undefined));
    return running;
  }

  if (config.nodeImage.autoBuild) {
    void run();
  } else if (files) {
    set({ state: 'ready' });
  } else {
    log.warn('node environment not built and nodeImage.autoBuild is off: run `corral node-image build`');
  }

  function currentStatus(): NodeImageStatus {
    // A `corral node-image build` run by hand is picked up without a restart.
    if (!files) {
      files = locateNodeImage(config.dataDir);
      if (files && status.state === 'off') set({ state: 'ready' });
      else status = { ...status, available: files !== undefined };
    }
    return status;
  }

  return {
    status: currentStatus,
    files: () => (currentStatus(), files),
    async close(waitMs = 5000) {
      closed = true;
      if (timer) clearTimeout(timer);
      const current = running;
      if (!current) return;
      // A tool the build runs (apt-cache, apt-get, gzip) would keep this process alive after everything
      // else closed: a master stopped seconds after its start waited out apt-cache (over 10 s beside another
      // test's master, CI run 9). Ended here, the build's step fails and the attempt reports it cancelled.
      killRunningTools();
      let bound: NodeJS.Timeout | undefined;
      await Promise.race([
        current,
        new Promise<void>((resolve) => {
          bound = setTimeout(resolve, waitMs);
          bound.unref();
        }),
      ]);
      if (bound) clearTimeout(bound);
    },
  };
}
