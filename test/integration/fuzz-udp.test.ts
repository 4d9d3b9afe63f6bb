/**
 * Hostile-network fuzz test (issue 14), bounded in count and time, against a live `corral master` in a
 * network namespace. An attacker host on the segment sends, in batches:
 *  - real UDP datagrams to every UDP port the master listens on (67 and 69; 4011 in proxyDHCP mode; a
 *    live TFTP transfer port, from its own TID and a foreign one): random bytes, mutations, splices and
 *    truncations of real packets, oversized datagrams up to 65507 bytes, and datagrams from source port 0
 *    (raw socket);
 *  - malformed HTTP to every unauthenticated route: bad methods, paths, JSON and Content-Length, huge
 *    headers, raw garbage, and slow requests held open while the checks run.
 * Between batches, real clients check that DHCP (udhcpc, or proxyDHCP probes on 67 and 4011), TFTP
 * (tftp-hpa) and HTTP (GET /api/v1/health) still answer; at the end the master process must be alive
 * and nothing may have reached its process-level backstop.
 *
 * Generators are fast-check's, seeded: set FUZZ_SEED to replay a run (the seed is printed).
 * Needs root, iproute2, udhcpc, tftp-hpa, curl and python3.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { runIn } from '../helpers/dhcp-harness.js';
import { sendRawUdp } from '../helpers/raw-udp.js';
import { datagram, seedsFor } from '../helpers/udp-fuzz.js';
import { startHostileLab, type HostileLab, type Serving } from '../helpers/hostile-lab.js';

const UDP_FUZZ = fileURLToPath(new URL('../helpers/udp-fuzz.js', import.meta.url));
const HTTP_FUZZ = fileURLToPath(new URL('../helpers/http-fuzz.js', import.meta.url));
const SEED = Number(process.env['FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
/** Per batch: datagrams per UDP port, to the transfer port, from source port 0 per port, HTTP requests. */
const PER_PORT = 200;
const TRANSFER = 100;
const OVERSIZED = 2;
const PORT_ZERO = 25;
const HTTP = 80;
const SLOW = 40;
const SLOW_MS = 8000;

const labs: HostileLab[] = [];
after(async () => {
  for (const lab of labs.splice(0)) await lab.close();
});

interface Tally {
  udp: Record<string, number>;
  portZero: Record<string, number>;
  httpRoutes: Record<string, number>;
  httpKinds: Record<string, number>;
  httpOutcomes: Record<string, number>;
  slow: Record<string, number>;
  checks: number;
  worstTftpMs: number;
}

const add = (into: Record<string, number>, from: Record<string, number>): void => {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
};

async function udpBatch(lab: HostileLab, ports: number[], seed: number, t: Tally): Promise<void> {
  const argv = [
    process.execPath,
    UDP_FUZZ,
    '--to',
    lab.master.address,
    '--ports',
    ports.join(','),
    '--seed',
    String(seed),
  ];
  argv.push('--count', String(PER_PORT), '--oversized', String(OVERSIZED));
  if (ports.includes(69)) argv.push('--transfer', String(TRANSFER));
  const r = await runIn(lab.net, lab.attacker.ns, argv, 60_000);
  assert.equal(r.code, 0, `udp-fuzz: ${r.stderr}`);
  add(t.udp, (JSON.parse(r.stdout) as { sent: Record<string, number> }).sent);
  for (const port of ports) {
    // Source port 0: only a raw socket sends it; payloads kept under one MTU (a raw IP_HDRINCL send is
    // not fragmented for us).
    const payloads = fc
      .sample(datagram(seedsFor(port)), { seed: seed + port + 2, numRuns: PORT_ZERO })
      .map((b) => b.subarray(0, 1400));
    const n = await sendRawUdp(lab.net, lab.attacker.ns, {
      src: lab.attacker.address,
      dst: lab.master.address,
      sport: 0,
      dport: port,
      payloads,
    });
    t.portZero[String(port)] = (t.portZero[String(port)] ?? 0) + n;
  }
}

async function httpBatch(lab: HostileLab, seed: number, t: Tally, slow: boolean): Promise<void> {
  const argv = [
    process.execPath,
    HTTP_FUZZ,
    '--host',
    lab.master.address,
    '--port',
    '80',
    '--seed',
    String(seed),
  ];
  argv.push('--count', String(HTTP));
  if (slow) argv.push('--slow', String(SLOW), '--slow-ms', String(SLOW_MS));
  const running = runIn(lab.net, lab.attacker.ns, argv, 120_000);
  // While the slow requests are held open, the master must still answer everyone else.
  if (slow) await check(lab, t);
  const r = await running;
  assert.equal(r.code, 0, `http-fuzz: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as {
    perRoute: Record<string, number>;
    perKind: Record<string, number>;
    outcomes: Record<string, number>;
    slow: Record<string, number>;
  };
  add(t.httpRoutes, out.perRoute);
  add(t.httpKinds, out.perKind);
  add(t.httpOutcomes, out.outcomes);
  add(t.slow, out.slow);
}

async function check(lab: HostileLab, t: Tally): Promise<Serving> {
  const s = await lab.serving();
  t.checks++;
  t.worstTftpMs = Math.max(t.worstTftpMs, s.tftpMs);
  return s;
}

function report(mode: string, lab: HostileLab, t: Tally, end: Serving): void {
  const lines = [
    `${mode}: seed ${SEED} (replay with FUZZ_SEED=${SEED})`,
    `UDP datagrams sent per target: ${JSON.stringify(t.udp)}`,
    `  from source port 0 (raw): ${JSON.stringify(t.portZero)}`,
    ...(Object.keys(t.httpRoutes).length > 0
      ? [
          `HTTP requests per route: ${JSON.stringify(t.httpRoutes)}`,
          `  per kind: ${JSON.stringify(t.httpKinds)}; answers: ${JSON.stringify(t.httpOutcomes)}`,
          `  slow requests held ${SLOW_MS} ms: ${JSON.stringify(t.slow)}`,
        ]
      : []),
    `held: ${t.checks} checks of DHCP (${end.dhcp}), TFTP (worst ${t.worstTftpMs} ms) and HTTP all answered; master alive: ${lab.alive()}`,
    `subsystems: ${JSON.stringify(end.http.subsystems)}`,
    `tftp: ${JSON.stringify(end.http.tftp)}`,
    `dhcp: ${JSON.stringify(end.http.dhcpStats ?? {})}`,
  ];
  for (const l of lines) console.log(`# ${l}`);
}

function assertHeld(lab: HostileLab, end: Serving): void {
  assert.ok(lab.alive(), 'the master process is alive');
  assert.equal(end.http.subsystems?.['process']?.faults, 0, 'nothing reached the process-level backstop');
  assert.ok(
    (end.http.subsystems?.['tftp']?.dropped ?? 0) > 0,
    'port-0 datagrams to TFTP were counted as dropped',
  );
}

describe('fuzz: hostile UDP and HTTP against a live master (issue 14)', { timeout: 600_000 }, () => {
  test('DHCP server mode: ports 67, 69, a TFTP transfer port, and HTTP', async () => {
    console.log(
      `# limits: tftp.maxPerClient 4, maxTransfers 256, first-ACK timeout 3000 ms x 6, retries 5; log lines 10 per 10 s per kind; HTTP: Node defaults (headers 16 KiB, headersTimeout 60 s), JSON bodies 1 MB (/api/v1), 64 kB (deploy reports), 8 kB (node metrics), 4 kB (shared-root reports)`,
    );
    const lab = await startHostileLab({ mode: 'server' });
    labs.push(lab);
    const t: Tally = {
      udp: {},
      portZero: {},
      httpRoutes: {},
      httpKinds: {},
      httpOutcomes: {},
      slow: {},
      checks: 0,
      worstTftpMs: 0,
    };
    await check(lab, t);
    for (let batch = 0; batch < 3; batch++) {
      await udpBatch(lab, [67, 69], SEED + batch * 1000, t);
      await check(lab, t);
      await httpBatch(lab, SEED + batch * 1000, t, batch === 0);
      await check(lab, t);
    }
    const end = await check(lab, t);
    report('server mode', lab, t, end);
    assertHeld(lab, end);
    assert.ok((end.http.subsystems?.['dhcp']?.dropped ?? 0) > 0);
  });

  test('proxyDHCP mode: ports 67 and 4011', async () => {
    const lab = await startHostileLab({ mode: 'proxy' });
    labs.push(lab);
    const t: Tally = {
      udp: {},
      portZero: {},
      httpRoutes: {},
      httpKinds: {},
      httpOutcomes: {},
      slow: {},
      checks: 0,
      worstTftpMs: 0,
    };
    await check(lab, t);
    for (let batch = 0; batch < 2; batch++) {
      await udpBatch(lab, [67, 4011, 69], SEED + 50_000 + batch * 1000, t);
      await check(lab, t);
    }
    const end = await check(lab, t);
    report('proxy mode', lab, t, end);
    assertHeld(lab, end);
    assert.ok(
      (end.http.subsystems?.['dhcp']?.dropped ?? 0) >= 2 * PORT_ZERO,
      'port-0 datagrams to 67 and 4011 dropped',
    );
  });
});
