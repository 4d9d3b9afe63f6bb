/**
 * Images flat in N (issue 19): figures printed, never asserted.
 *
 *   node dist/test/bench/p2p-image-bench.js [--nodes 4,8,16,32] [--image-mb 16] [--master-mbit 25]
 *     [--client-mbit 25] [--web-seeds 2] [--every-web-seed] [--priority=-10]
 *
 * One lab (test/helpers/p2p-wave.ts): the master's namespace and the largest N of installer clients,
 * each in its own namespace on a bridge, every link shaped with tc (tbf) to the given rates in both
 * directions. For each N, the same run measures, until the last client holds every byte of one image:
 *   - unicast HTTP: every client wgets the image from the master (busybox wget, as the installer does);
 *   - p2p: every client runs the installer's own p2p_try (corral-install: aria2c, the same command line)
 *     against opentracker (Corral's supervisor) with the master as web seed, the first --web-seeds
 *     clients as the wave's web seeders (P2P_WEB_SEED, as the master's p2p.webSeeds names them);
 *   - with --every-web-seed, also p2p with every client on the web seed (no P2P_WEB_SEED: the first
 *     figures' behaviour), for comparison in the same run;
 *   - the floor: image bytes ÷ the master's link rate (no client can be served faster from the master).
 * Equal rates for master and clients are the case a rack of identical machines gives, and the one unicast
 * suffers most in: N clients share one link of the same size as each of theirs. The rates and the image
 * are small (25 Mbit/s, 16 MiB) so that 32 clients on a 2-core machine measure the links, not the CPU:
 * each row prints the CPU seconds of the wave's processes, how busy the machine was and the load average.
 * Needs root, aria2, opentracker, busybox-static, iproute2.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { P2pLab, type WaveResult } from '../helpers/p2p-wave.js';
import { requirePeers, requireRoot } from '../helpers/peers.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '4,8,16,32' },
    'image-mb': { type: 'string', default: '16' },
    'master-mbit': { type: 'string', default: '25' },
    'client-mbit': { type: 'string', default: '25' },
    'web-seeds': { type: 'string', default: '2' },
    'every-web-seed': { type: 'boolean', default: false },
    priority: { type: 'string' },
  },
});

const ns = values.nodes.split(',').map(Number);
const imageBytes = Number(values['image-mb']) * 2 ** 20;
const masterMbit = Number(values['master-mbit']);
const clientMbit = Number(values['client-mbit']);
const webSeeds = Number(values['web-seeds']);
const floor = (imageBytes * 8) / (masterMbit * 1e6);

const loadavg = async (): Promise<string> =>
  (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');

function check(w: WaveResult, what: string): void {
  const bad = w.clients.filter((c) => !c.ok || !c.sha256);
  if (bad.length) throw new Error(`${what}: ${bad.length} client(s) failed:\n${bad[0]?.log ?? ''}`);
}

async function main(): Promise<void> {
  requireRoot();
  // --priority=-10: the lab's processes (children inherit it) ahead of the machine's other jobs, to tell
  // the links' limit from CPU contention on a shared machine; printed with the figures.
  if (values.priority !== undefined) setPriority(Number(values.priority));
  requirePeers('aria2c', 'opentracker', 'busybox', 'tc', 'ip', 'ss');
  const dir = await mkdtemp(join(tmpdir(), 'corral-p2p-bench-'));
  let lab: P2pLab | undefined;
  try {
    console.log(
      `image ${values['image-mb']} MiB, master link ${masterMbit} Mbit/s, client links ${clientMbit} Mbit/s, ` +
        `${webSeeds} web seeder(s) per wave, nice ${values.priority ?? 'unchanged'}; ` +
        `floor (image bytes ÷ master link) ${floor.toFixed(1)} s; load average ${await loadavg()}`,
    );
    lab = await P2pLab.start({ clients: Math.max(...ns), imageBytes, masterMbit, clientMbit, dir });
    await lab.startTracker();
    const every = values['every-web-seed'];
    console.log(
      '| N | floor s | unicast HTTP s | p2p s | p2p ÷ floor | unicast ÷ floor | master sent (images), p2p | ' +
        'peers uploaded (images) | p2p clients on HTTP | ' +
        (every ? 'p2p, every client on the web seed: s, master sent (images) | ' : '') +
        'CPU s, unicast / p2p | machine busy %, unicast / p2p | load at the end, unicast / p2p |',
    );
    console.log(`|---|---|---|---|---|---|---|---|---|${every ? '---|' : ''}---|---|---|`);
    const cpu = (w: WaveResult): string => w.cpuSeconds.toFixed(0);
    const busy = (w: WaveResult): string => (w.machineBusy * 100).toFixed(0);
    for (const n of ns) {
      const timeoutMs = Math.max(300_000, (n * floor * 4 + 60) * 1000);
      const http = await lab.wave({ n, method: 'http', timeoutMs });
      check(http, `unicast N=${n}`);
      const p2pWave = (web: number | undefined): Promise<WaveResult> =>
        lab!.wave({ n, method: 'p2p', seedSeconds: 300, stallSeconds: 60, webSeeds: web, timeoutMs });
      const p2p = await p2pWave(webSeeds);
      check(p2p, `p2p N=${n}`);
      const all = every ? await p2pWave(undefined) : undefined;
      if (all) check(all, `p2p N=${n}, every client on the web seed`);
      for (const w of all ? [p2p, all] : [p2p]) {
        const wrong = w.clients.filter((c) => c.sha256 !== lab!.sha256).length;
        if (wrong) throw new Error(`p2p N=${n}: ${wrong} checksum mismatch(es)`);
      }
      const uploaded = p2p.clients.reduce((s, c) => s + c.uploaded, 0);
      console.log(
        `| ${n} | ${floor.toFixed(1)} | ${http.seconds.toFixed(1)} | ${p2p.seconds.toFixed(1)} | ` +
          `${(p2p.seconds / floor).toFixed(2)} | ${(http.seconds / floor).toFixed(2)} | ` +
          `${(p2p.masterTxBytes / imageBytes).toFixed(2)} | ${(uploaded / imageBytes).toFixed(2)} | ` +
          `${p2p.clients.filter((c) => c.method !== 'p2p').length} | ` +
          (all ? `${all.seconds.toFixed(1)}, ${(all.masterTxBytes / imageBytes).toFixed(2)} | ` : '') +
          `${cpu(http)} / ${cpu(p2p)} | ${busy(http)} / ${busy(p2p)} | ${http.load.toFixed(1)} / ${p2p.load.toFixed(1)} |`,
      );
    }
    console.log(`load average at the end ${await loadavg()}`);
  } finally {
    await lab?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
