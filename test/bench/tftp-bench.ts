/**
 * TFTP throughput: Corral against tftpd-hpa (the reference), side by side, in one run.
 *
 *   node dist/test/bench/tftp-bench.js [--size-mb 32] [--runs 3] [--placement both|free|pinned]
 *
 * Three namespaces on one bridge: Corral (tftp-serve) and tftpd-hpa (`in.tftpd -L -s ROOT`) each in
 * their own, and a client namespace. The same random file is fetched `runs` times per server and
 * configuration, alternating servers, and the median wall time of the client (spawn to exit) gives MB/s
 * (10^6 bytes/s). Every copy is checked by sha256 outside the timing.
 *
 * Clients: tftp-hpa's client cannot negotiate options, so it measures RFC 1350 lockstep at 512 bytes;
 * atftp measures the same block size on both servers with blksize 1468 (and with windowsize 8, which
 * tftpd-hpa 5.2 does not implement: it ignores the option and stays lockstep).
 *
 * Placement: "free" leaves CPUs to the scheduler. "pinned" puts server and client on CPU 0, which
 * measures the servers' own cost without the cross-CPU wake-ups that dominate lockstep on VMs.
 *
 * Prints a table; asserts nothing. Needs root, tftp-hpa, atftp and tftpd-hpa.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hasCommand, TestNet, waitFor, type Host } from '../helpers/netns.js';

const SERVE = fileURLToPath(new URL('../helpers/tftp-serve.js', import.meta.url));
const IN_TFTPD = '/usr/sbin/in.tftpd';

type Placement = 'free' | 'pinned';

interface Scenario {
  client: 'tftp-hpa' | 'atftp';
  blksize: number;
  windowsize: number;
}

const SCENARIOS: Scenario[] = [
  { client: 'tftp-hpa', blksize: 512, windowsize: 1 },
  { client: 'atftp', blksize: 1468, windowsize: 1 },
  { client: 'atftp', blksize: 1468, windowsize: 8 },
];

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** Runs a command to completion, bounded; resolves with its wall time in ms. */
function timed(argv: string[], timeoutMs: number): Promise<{ ms: number; code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    if (!cmd) return reject(new Error('empty command'));
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out after ${timeoutMs} ms: ${argv.join(' ')}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, code, out });
    });
  });
}

function peakRssKiB(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function pin(pid: number, cpus: string): void {
  // -a: every thread of the process (node's helpers too); tftpd-hpa's per-transfer children inherit it.
  const r = spawn('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
  r.on('error', () => undefined);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'size-mb': { type: 'string', default: '32' },
      runs: { type: 'string', default: '3' },
      placement: { type: 'string', default: 'both' },
    },
  });
  const sizeBytes = Number(values['size-mb']) * 1024 * 1024;
  const runs = Number(values.runs);
  const placements: Placement[] =
    values.placement === 'both' ? ['free', 'pinned'] : [values.placement === 'pinned' ? 'pinned' : 'free'];

  const missing = ['ip', 'tftp', 'atftp', 'taskset', IN_TFTPD].filter((c) => !hasCommand(c));
  if (missing.length > 0)
    throw new Error(`missing ${missing.join(', ')} (apt-get install tftp-hpa atftp tftpd-hpa)`);
  if (process.getuid?.() !== 0) throw new Error('the benchmark creates network namespaces: run it as root');

  const base = await mkdtemp(join(tmpdir(), 'corral-tftp-bench-'));
  const root = join(base, 'root');
  const out = join(base, 'out');
  let net: TestNet | undefined;
  const servers: ChildProcess[] = [];
  try {
    await mkdir(root);
    await mkdir(out);
    const data = randomBytes(sizeBytes);
    const digest = createHash('sha256').update(data).digest('hex');
    await writeFile(join(root, 'big.bin'), data);
    // tftpd-hpa drops to user nobody after its chroot: the tree must be world-readable.
    await chmod(base, 0o755);
    await chmod(root, 0o755);
    await chmod(join(root, 'big.bin'), 0o644);

    net = new TestNet('ctb');
    const subnet = randomInt(1, 250);
    const corralHost = net.addHost('bcor', `10.78.${subnet}.1/24`);
    const client = net.addHost('bcli', `10.78.${subnet}.2/24`);
    const hpaHost = net.addHost('bhpa', `10.78.${subnet}.3/24`);

    const corral = net.spawnIn(corralHost.ns, [
      process.execPath,
      SERVE,
      '--root',
      root,
      '--address',
      corralHost.address,
      '--port',
      '69',
      '--log-level',
      'warn',
    ]);
    servers.push(corral);
    let ready = '';
    corral.stdout?.on('data', (d: Buffer) => (ready += d.toString()));
    corral.stderr?.on('data', (d: Buffer) => process.stderr.write(d));
    await waitFor('Corral READY', () => ready.includes('READY') || undefined, 10_000, 50);

    const hpa = net.spawnIn(hpaHost.ns, [IN_TFTPD, '-L', '-s', root, '--address', `${hpaHost.address}:69`]);
    servers.push(hpa);
    await waitFor(
      'tftpd-hpa listening',
      () => net?.nsExec(hpaHost.ns, ['ss', '-Hlun']).includes(`${hpaHost.address}:69`) || undefined,
      10_000,
      50,
    );

    const corralPid = corral.pid ?? 0;
    const hpaPid = hpa.pid ?? 0;
    const targets: Array<{ name: string; host: Host }> = [
      { name: 'Corral', host: corralHost },
      { name: 'tftpd-hpa', host: hpaHost },
    ];

    let n = 0;
    const fetch = async (s: Scenario, host: Host, placement: Placement): Promise<number> => {
      const local = join(out, `got-${n++}`);
      const argv =
        s.client === 'tftp-hpa'
          ? ['tftp', '-m', 'binary', host.address, '-c', 'get', 'big.bin', local]
          : [
              'atftp',
              '--get',
              '-r',
              'big.bin',
              '-l',
              local,
              '--option',
              `blksize ${s.blksize}`,
              ...(s.windowsize > 1 ? ['--option', `windowsize ${s.windowsize}`] : []),
              host.address,
            ];
      const pinned = placement === 'pinned' ? ['taskset', '-c', '0'] : [];
      const r = await timed(['ip', 'netns', 'exec', client.ns, ...pinned, ...argv], 300_000);
      const got = await readFile(local).catch(() => Buffer.alloc(0));
      const ok = createHash('sha256').update(got).digest('hex') === digest;
      await rm(local, { force: true });
      if (!ok) throw new Error(`${argv.join(' ')}: copy differs (exit ${r.code}): ${r.out.slice(0, 400)}`);
      return r.ms;
    };

    const rows: string[][] = [];
    for (const placement of placements) {
      pin(corralPid, placement === 'pinned' ? '0' : '0-1023');
      pin(hpaPid, placement === 'pinned' ? '0' : '0-1023');
      await new Promise((r) => setTimeout(r, 200));
      for (const s of SCENARIOS) {
        const times = new Map<string, number[]>(targets.map((t) => [t.name, []]));
        await fetch(s, corralHost, placement); // warm-up: JIT and page cache, not timed
        for (let i = 0; i < runs; i++) {
          const order = i % 2 === 0 ? targets : [...targets].reverse();
          for (const t of order) times.get(t.name)?.push(await fetch(s, t.host, placement));
        }
        const mbps = (name: string): number => sizeBytes / 1e6 / (median(times.get(name) ?? []) / 1000);
        const corralRate = mbps('Corral');
        const hpaRate = mbps('tftpd-hpa');
        rows.push([
          s.client,
          String(s.blksize),
          String(s.windowsize) + (s.windowsize > 1 ? ' (hpa: 1)' : ''),
          placement,
          corralRate.toFixed(2),
          hpaRate.toFixed(2),
          (corralRate / hpaRate).toFixed(2),
        ]);
        process.stderr.write(`  done: ${rows.at(-1)?.join(' | ')}\n`);
      }
    }

    const header = ['client', 'blksize', 'windowsize', 'placement', 'Corral MB/s', 'tftpd-hpa MB/s', 'ratio'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
    console.log(
      `\nTFTP read of a ${values['size-mb']} MiB random file, median of ${runs} runs (MB/s = 10^6 B/s)`,
    );
    console.log(line(header));
    console.log(line(widths.map((w) => '-'.repeat(w))));
    for (const r of rows) console.log(line(r));
    const rss = peakRssKiB(corralPid);
    console.log(
      `\nCorral server peak RSS (VmHWM): ${rss === null ? 'unknown' : `${(rss / 1024).toFixed(1)} MiB`}`,
    );
  } finally {
    for (const s of servers) if (s.exitCode === null) s.kill('SIGTERM');
    await net?.destroy();
    await rm(base, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
