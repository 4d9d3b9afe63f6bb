/**
 * Diskless boot time (printed, never asserted).
 *
 *   node dist/test/bench/sharedroot-bench.js [--nodes 1,4] [--memory 448]
 *
 * For each N: a lab (startLab) with N BIOS VMs that PXE-boot the discovery environment and enlist
 * (`discoverAction: wait`); a busybox shared root (test/helpers/sharedroot-tree.ts) is created through
 * the API, then every node is set diskless through the API in one burst, as the e2e does. Each node's
 * agent sees `reboot` at its next poll and resets the VM.
 *
 * Clocks, all read by this process from the VMs' serial consoles (1 line = 1 timestamp; the `login:`
 * prompt has no newline, so it is polled every 100 ms):
 * - diskless power-on: the agent's `corral: action reboot` line; the agent runs `sync; reboot -f` right
 *   after it, so the VM resets and SeaBIOS starts the PXE boot (iPXE → master's boot script in
 *   shared-root mode) within milliseconds. Per node, so the agents' poll phase (pollSeconds) is not in it.
 * - mounted: `corral: shared root mounted read-only` (initramfs has the NFS root).
 * - login: busybox getty's `login:` after `corral: switching root` (the shared root's init is up).
 * - discovery boot (reference): from startLab's return (QEMU just spawned) to `corral: enlisted as`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLab, type Lab } from '../../master/lab/lab.js';
import { silentLogger } from '../../master/util/logger.js';
import { apiOk } from '../helpers/api.js';
import { waitFor } from '../helpers/netns.js';
import { makeBusyboxRoot } from '../helpers/sharedroot-tree.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1,4' },
    memory: { type: 'string', default: '448' },
  },
});

const ENLIST_TIMEOUT_MS = 420_000;
const BOOT_TIMEOUT_MS = 600_000;
const MARK_REBOOT = 'corral: action reboot';
const MARK_ENLISTED = 'corral: enlisted as';
const MARK_MOUNTED = 'corral: shared root mounted';
const MARK_SWITCH = 'corral: switching root';

interface NodeTimes {
  vm: string;
  discoveryS: number;
  mountS: number;
  loginS: number;
}

const api = (lab: Lab, method: string, path: string, body?: unknown): Promise<unknown> =>
  apiOk<unknown>({ url: lab.hostUrl, password: lab.adminPassword }, method, path, body, {
    timeoutMs: 30_000,
  });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function runOnce(n: number, memoryMb: number, stop: AbortSignal): Promise<NodeTimes[]> {
  const dir = mkdtempSync(join(tmpdir(), 'corral-sr-bench-'));
  let lab: Lab | undefined;
  try {
    lab = await startLab({
      dir,
      vms: Array.from({ length: n }, () => ({ firmware: 'bios' as const })),
      logger: silentLogger(),
      memoryMb,
      diskGb: 1,
      subnetPrefix: '10.95.0',
      masterConfig: {
        nodes: { namePattern: 'bench-{n}', discoverAction: 'wait', pollSeconds: 3 },
        sharedRoot: { reconcileSeconds: 2 },
      },
    });
    const l = lab;
    const poweredOn = Date.now();
    const marks = new Map<string, Map<string, number>>();
    for (const vm of l.vms) {
      const m = new Map<string, number>();
      marks.set(vm.spec.name, m);
      vm.onLine((line) => {
        for (const key of [MARK_ENLISTED, MARK_REBOOT, MARK_MOUNTED, MARK_SWITCH]) {
          if (line.includes(key) && !m.has(key)) m.set(key, Date.now());
        }
      });
    }
    const tree = join(dir, 'busybox-root');
    makeBusyboxRoot(tree, 0); // no sleep in rcS: getty starts as soon as sysinit is done
    await api(l, 'POST', '/sharedroots', { name: 'bench', fromDir: tree });

    const enlisted = await waitFor(
      `${n} VMs to enlist`,
      async () => {
        if (stop.aborted) throw new Error('interrupted');
        const r = (await api(l, 'GET', '/nodes').catch(() => undefined)) as
          { nodes: { mac: string }[] } | undefined;
        return r && r.nodes.length === n ? r.nodes : undefined;
      },
      ENLIST_TIMEOUT_MS,
      1000,
    );
    await waitFor(
      'the NFS server to run',
      async () => ((await api(l, 'GET', '/sharedroots')) as { nfs: { running: boolean } }).nfs.running,
      60_000,
      500,
    );
    await Promise.all(
      enlisted.map((node) => api(l, 'POST', `/nodes/${node.mac}/diskless`, { root: 'bench' })),
    );

    await waitFor(
      `${n} VMs to reach login: on the shared root`,
      () => {
        if (stop.aborted) throw new Error('interrupted');
        for (const vm of l.vms) {
          const m = marks.get(vm.spec.name)!;
          if (m.has('login:')) continue;
          const c = vm.console();
          const sw = c.lastIndexOf(MARK_SWITCH);
          if (m.has(MARK_SWITCH) && sw >= 0 && c.slice(sw).includes('login:')) m.set('login:', Date.now());
        }
        return l.vms.every((vm) => marks.get(vm.spec.name)!.has('login:')) || undefined;
      },
      BOOT_TIMEOUT_MS,
      100,
    );
    return l.vms.map((vm) => {
      const m = marks.get(vm.spec.name)!;
      const at = (k: string): number => {
        const t = m.get(k);
        if (t === undefined) throw new Error(`${vm.spec.name}: no '${k}' on the console`);
        return t;
      };
      const reboot = at(MARK_REBOOT);
      return {
        vm: vm.spec.name,
        discoveryS: (at(MARK_ENLISTED) - poweredOn) / 1000,
        mountS: (at(MARK_MOUNTED) - reboot) / 1000,
        loginS: (at('login:') - reboot) / 1000,
      };
    });
  } catch (err) {
    if (lab) {
      for (const vm of lab.vms) process.stderr.write(`--- ${vm.spec.name}:\n${vm.console().slice(-2000)}\n`);
    }
    throw err;
  } finally {
    await lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const counts = values.nodes.split(',').map(Number);
  const memoryMb = Number(values.memory);
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const rows: string[] = [];
  const fmt = (x: number): string => x.toFixed(1);
  for (const n of counts) {
    if (stop.signal.aborted) break;
    const times = await runOnce(n, memoryMb, stop.signal);
    const login = times.map((t) => t.loginS);
    const disc = times.map((t) => t.discoveryS);
    rows.push(
      `| ${n} | ${times.map((t) => fmt(t.loginS)).join(', ')} | ${fmt(median(login))} | ${fmt(Math.max(...login))} ` +
        `| ${fmt(median(times.map((t) => t.mountS)))} | ${disc.map(fmt).join(', ')} (median ${fmt(median(disc))}) |`,
    );
    process.stdout.write(`# N=${n}: ${JSON.stringify(times)}\n`);
  }
  process.stdout.write(
    [
      '',
      `Diskless boot, power-on (agent's "corral: action reboot", then reboot -f) → "login:" of the shared root's getty.`,
      `BIOS VMs, QEMU TCG, ${memoryMb} MiB each, busybox shared root over NFSv4.1 (nfs-ganesha).`,
      '',
      '| N at once | per node login s | median s | max s | median mount s | discovery boot s (reference) |',
      '| --- | --- | --- | --- | --- | --- |',
      ...rows,
      '',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`sharedroot-bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
