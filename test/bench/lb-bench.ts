/**
 * Load balancing figures: requests/s and p99 latency through Corral's HAProxy against the same load
 * sent directly to one backend (wrk, the reference, in the same run), and the time from a backend's
 * death to its removal.
 *
 *   node dist/test/bench/lb-bench.js [--duration 8] [--connections 32] [--kills 3]
 *
 * The lab of the integration test (test/helpers/lb-lab.ts): the real `corral master` with HAProxy in its
 * namespace, three backends running test/helpers/lb-backend (Node http), wrk in a client namespace.
 * Service: http, role app, check GET /healthz every 500 ms, rise 2, fall 2.
 *
 * Removal time: the backend process is SIGKILLed, then the master's API is polled every 20 ms until the
 * server reads DOWN (HAProxy's own state, as Corral last read it: Corral polls every 250 ms here). The
 * expected figure is up to fall × interval (1000 ms) plus Corral's poll. Prints; asserts nothing.
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import type { ServiceView } from '../../master/lb/load-balancer.js';
import { LbLab } from '../helpers/lb-lab.js';
import { waitFor } from '../helpers/netns.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '32' },
    kills: { type: 'string', default: '3' },
  },
});

interface WrkResult {
  rps: number;
  p50: string;
  p99: string;
  errors: string;
}

function wrk(lab: LbLab, url: string): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        lab.client.ns,
        'wrk',
        '-t2',
        `-c${values.connections}`,
        `-d${values.duration}s`,
        '--latency',
        url,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), (Number(values.duration) + 20) * 1000);
    child.once('exit', () => {
      clearTimeout(t);
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
      if (!rps) return reject(new Error(`wrk failed: ${out}`));
      resolve({
        rps,
        p50: /50%\s+(\S+)/.exec(out)?.[1] ?? '?',
        p99: /99%\s+(\S+)/.exec(out)?.[1] ?? '?',
        errors: /Socket errors: .*/.exec(out)?.[0] ?? 'none',
      });
    });
  });
}

const lab = await LbLab.start({ pollMs: 250 });
try {
  await lab.api('POST', '/services', {
    name: 'web',
    port: 8080,
    role: 'app',
    backendPort: 8000,
    check: { type: 'http', path: '/healthz' },
    intervalMs: 500,
    rise: 2,
    fall: 2,
  });
  const service = async (): Promise<ServiceView> =>
    (await lab.api<{ service: ServiceView }>('GET', '/services/web')).service;
  await waitFor('three up', async () => (await service()).up === 3, 15_000, 200);

  const direct = await wrk(lab, 'http://10.88.0.11:8000/');
  const through = await wrk(lab, 'http://10.88.0.1:8080/');
  console.log(`wrk -t2 -c${values.connections} -d${values.duration}s, Node http backends, 2 shared vCPUs`);
  console.log('| path | requests/s | p50 | p99 | errors |');
  console.log('| --- | --- | --- | --- | --- |');
  console.log(
    `| direct to one backend | ${direct.rps.toFixed(0)} | ${direct.p50} | ${direct.p99} | ${direct.errors} |`,
  );
  console.log(
    `| through Corral's HAProxy (3 backends) | ${through.rps.toFixed(0)} | ${through.p50} | ${through.p99} | ${through.errors} |`,
  );

  const removal: number[] = [];
  const back: number[] = [];
  const b = lab.backends[0]!;
  for (let i = 0; i < Number(values.kills); i++) {
    const killed = Date.now();
    await lab.stopBackend(b);
    await waitFor(
      'down',
      async () => (await service()).servers.find((s) => s.name === b.name)?.health === 'down',
      15_000,
      20,
    );
    removal.push(Date.now() - killed);
    await lab.startBackend(b);
    const started = Date.now();
    await waitFor(
      'up',
      async () => (await service()).servers.find((s) => s.name === b.name)?.health === 'up',
      15_000,
      20,
    );
    back.push(Date.now() - started);
  }
  console.log(`backend death → removal (fall 2 × 500 ms = 1000 ms): ${removal.join(', ')} ms`);
  console.log(`backend listening → back in rotation (rise 2 × 500 ms = 1000 ms): ${back.join(', ')} ms`);
} finally {
  await lab.destroy();
}
