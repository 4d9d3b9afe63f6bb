/**
 * Deployment figures (printed, never asserted).
 *
 *   node dist/test/bench/deploy-bench.js [--nodes 1,4] [--memory 768]
 *
 * For each N: a lab with N BIOS VMs (TCG) PXE-boots and enlists; the real Debian image (cached build) is
 * imported; then all N are deployed at once and timed from the deploy calls to the last `deployed`
 * report (installed system booted from disk). The reference is the floor of image bytes × N divided by the
 * HTTP throughput of the lab link, measured in the same lab by `wget` of the same image from a host
 * namespace on the bridge: no deploy of N nodes can beat it; the gap is the installer's work (partition,
 * decompress, tar writes, GRUB) and the two reboots under emulation.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { startLab, type Lab } from '../../master/lab/lab.js';
import { CLI } from '../../master/lab/master-process.js';
import { waitFor } from '../../master/lab/net.js';
import { silentLogger } from '../../master/util/logger.js';
import { apiOk } from '../helpers/api.js';

const exec = promisify(execFile);
const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1,4' },
    memory: { type: 'string', default: '768' },
  },
});

interface ApiNode {
  mac: string;
  name: string;
  state: string;
  stateReason: string | null;
}

const api = <T>(lab: Lab, method: string, path: string, body?: unknown): Promise<T> =>
  apiOk<T>({ url: lab.hostUrl, password: lab.adminPassword }, method, path, body);

const nodes = async (lab: Lab): Promise<ApiNode[]> =>
  (await api<{ nodes: ApiNode[] }>(lab, 'GET', '/nodes')).nodes;

/** Seconds for `wget` of the image from a host namespace on the lab bridge (best of 3). */
async function linkSeconds(lab: Lab, prefix: string, url: string): Promise<number> {
  const client = lab.net.addHost('corral-bc', `${prefix}.250/24`);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = process.hrtime.bigint();
    await exec('ip', ['netns', 'exec', client.ns, 'wget', '-q', '-O', '/dev/null', url], {
      timeout: 300_000,
    });
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return best;
}

async function benchN(n: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'corral-deploy-bench-'));
  const prefix = '10.96.0';
  let lab: Lab | undefined;
  try {
    const t0 = Date.now();
    lab = await startLab({
      dir,
      vms: Array.from({ length: n }, () => ({ firmware: 'bios' as const })),
      logger: silentLogger(),
      memoryMb: Number(values.memory),
      diskGb: 3,
      subnetPrefix: prefix,
      masterConfig: {
        nodes: { namePattern: 'bench-{n}', discoverAction: 'wait', pollSeconds: 3 },
        deploy: { stallSeconds: 900 },
      },
    });
    const l = lab;
    await waitFor(
      `${n} nodes discovered`,
      async () => ((await nodes(l)).filter((x) => x.state === 'discovered').length === n ? true : undefined),
      600_000,
      2000,
    );
    const bootS = (Date.now() - t0) / 1000;
    const { stdout } = await exec(
      'node',
      [CLI, 'image', 'build-debian', '--name', 'debian-12', '--data-dir', join(dir, 'master'), '--json'],
      { timeout: 1_800_000 },
    );
    const image = JSON.parse(stdout) as { sha256: string; sizeBytes: number };
    const linkS = await linkSeconds(l, prefix, `${l.masterUrl}/boot/images/${image.sha256}`);
    const linkBps = image.sizeBytes / linkS;

    const started = Date.now();
    for (const node of await nodes(l))
      await api(l, 'POST', `/nodes/${node.name}/deploy`, { image: 'debian-12' });
    await waitFor(
      `${n} nodes deployed`,
      async () => {
        const all = await nodes(l);
        const failed = all.find((x) => x.state === 'failed');
        if (failed) throw new Error(`${failed.name} failed: ${failed.stateReason}`);
        return all.filter((x) => x.state === 'deployed').length === n ? true : undefined;
      },
      1_800_000,
      2000,
    );
    const deployS = (Date.now() - started) / 1000;
    const floorS = (image.sizeBytes * n) / linkBps;
    return (
      `N=${n}: deployed in ${deployS.toFixed(0)} s (discovery boot ${bootS.toFixed(0)} s); ` +
      `floor ${floorS.toFixed(1)} s = ${n} × ${(image.sizeBytes / 2 ** 20).toFixed(1)} MiB / ` +
      `${(linkBps / 2 ** 20).toFixed(0)} MiB/s lab-link HTTP (wget from a namespace on the bridge); ` +
      `${(deployS / floorS).toFixed(0)}× the floor`
    );
  } finally {
    await lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

const loads = (await exec('cat', ['/proc/loadavg'])).stdout.trim();
console.log(`# deploy bench (TCG VMs, ${values.memory} MiB each); load average at start: ${loads}`);
for (const n of (values.nodes ?? '1').split(',').map(Number)) {
  console.log(await benchN(n));
}
