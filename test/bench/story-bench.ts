/**
 * The story's figures (printed, never asserted): power-on to serving behind the load balancer.
 *
 *   node dist/test/bench/story-bench.js [--web 2,4]
 *
 * For each N: the lab of `corral lab` (two masters with the VIP and the witness, the rules, the cloud-init
 * layer and the `web` service declared before any VM powers on; master/lab/story.ts), with N web VMs and
 * the diskless one. Timed from power-on to each web node's `deployed` report and to HAProxy marking it UP
 * (the service check GETs the demo app that cloud-init started), per node and for all N. The reference is
 * measured in the same lab: the HTTP fetch of the same image (`wget` from a host on the lab bridge, best of
 * 3), whose floor for N nodes at once is N × image bytes ÷ that rate; the gap is PXE, the installer's work,
 * two reboots and cloud-init under TCG emulation.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { parseArgs, promisify } from 'node:util';
import { startLab, type Lab } from '../../master/lab/lab.js';
import { StepClock } from '../../master/lab/progress.js';
import { declareStory, labApi, watchStory, STORY_IMAGE } from '../../master/lab/story.js';
import { silentLogger } from '../../master/util/logger.js';

const exec = promisify(execFile);
const { values } = parseArgs({ options: { web: { type: 'string', default: '2,4' } } });

/** Seconds for `wget` of `url` from the witness host on the lab bridge (best of 3). */
async function fetchSeconds(lab: Lab, url: string): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = process.hrtime.bigint();
    await exec('ip', ['netns', 'exec', lab.ha!.witness.ns, 'wget', '-q', '-O', '/dev/null', url], {
      timeout: 300_000,
    });
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return best;
}

async function benchN(web: number): Promise<string[]> {
  // keepalived runs its notify scripts only from paths no other user can write: not under /tmp.
  const dir = mkdtempSync('/run/corral-story-bench-');
  const lines: string[] = [];
  const clock = new StepClock(() => undefined);
  const opts = { web, dir, cacheDir: '/var/cache/corral', clock };
  let lab: Lab | undefined;
  let floor = { bytes: 0, seconds: 0 };
  try {
    lab = await startLab({
      dir,
      vms: Array.from({ length: web + 1 }, () => ({ firmware: 'bios' as const })),
      logger: silentLogger(),
      memoryMb: 768,
      subnetPrefix: '10.95.0',
      ha: true,
      beforeVms: async (l) => {
        await declareStory(l, opts);
        // The floor, measured before the VMs compete for the link and the CPUs.
        const images = await labApi<{ images: { name: string; sha256: string; sizeBytes: number }[] }>(
          l,
          'GET',
          '/images',
        );
        const image = images.images.find((i) => i.name === STORY_IMAGE)!;
        const seconds = await fetchSeconds(l, `${l.masterUrl}/boot/images/${image.sha256}`);
        floor = { bytes: image.sizeBytes, seconds };
      },
    });
    const poweredOn = Date.now();
    const times = await watchStory(lab, opts, poweredOn);
    const rate = floor.bytes / floor.seconds;
    const s = (ms: number): string => `${(ms / 1000).toFixed(0)} s`;
    for (const [i, mac] of lab.macs.slice(0, web).entries()) {
      lines.push(
        `  web VM ${i + 1}: deployed ${s(times.deployed.get(mac)! - poweredOn)}, ` +
          `UP behind HAProxy ${s(times.serving.get(mac)! - poweredOn)} after power-on`,
      );
    }
    const last = Math.max(...times.serving.values()) - poweredOn;
    const floorS = (web * floor.bytes) / rate;
    lines.unshift(
      `N=${web}: all ${web} serving behind the LB ${s(last)} after power-on; floor ${floorS.toFixed(1)} s = ` +
        `${web} × ${(floor.bytes / 2 ** 20).toFixed(1)} MiB / ${(rate / 2 ** 20).toFixed(0)} MiB/s ` +
        `(wget of the image from a host on the lab bridge); ${(last / 1000 / floorS).toFixed(0)}× the floor`,
    );
    return lines;
  } finally {
    await lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

const loads = (await exec('cat', ['/proc/loadavg'])).stdout.trim();
console.log(`# story bench (two masters + VIP, TCG VMs of 768 MiB); load average at start: ${loads}`);
for (const n of (values.web ?? '2').split(',').map(Number)) {
  for (const line of await benchN(n)) console.log(line);
}
