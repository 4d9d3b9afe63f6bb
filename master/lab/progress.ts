import type { Lab } from './lab.js';

interface ApiNode {
  mac: string;
  name: string;
  state: string;
  ip: string | null;
  inventory: { memoryBytes?: number; disks?: { sizeBytes: number }[]; cpu?: { count?: number } };
}

function gib(bytes: number | undefined): string {
  return bytes === undefined ? '?' : `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/**
 * Shows the lab's progress on a terminal: each VM's boot markers (from its serial console) and each
 * node's state changes (from the API). Returns a function that stops the polling.
 */
export function followLab(lab: Lab, print: (line: string) => void, intervalMs = 2000): () => void {
  for (const vm of lab.vms) {
    let last = '';
    vm.onLine((raw) => {
      const line = raw.trim();
      // iPXE's and the agent's own progress lines; the kernel's chatter stays in the VM log. A waiting
      // agent repeats its poll line: show it once.
      if (line === last || !/^corral: |^Corral: |^http:\/\/.*\.\.\. ok/.test(line)) return;
      last = line;
      print(`[${vm.spec.name}] ${line}`);
    });
  }
  const seen = new Map<string, string>();
  const auth = `Basic ${Buffer.from(`admin:${lab.adminPassword}`).toString('base64')}`;
  const timer = setInterval(() => {
    fetch(`${lab.hostUrl}/api/v1/nodes`, { headers: { authorization: auth } })
      .then((r) => (r.ok ? (r.json() as Promise<{ nodes: ApiNode[] }>) : undefined))
      .then((body) => {
        for (const n of body?.nodes ?? []) {
          const key = `${n.state}|${n.ip}`;
          if (seen.get(n.mac) === key) continue;
          seen.set(n.mac, key);
          const disk = n.inventory.disks?.reduce((a, d) => a + d.sizeBytes, 0);
          print(
            `[api] ${n.name} ${n.mac} ${n.state} ip=${n.ip ?? '-'} cpus=${n.inventory.cpu?.count ?? '?'} ` +
              `mem=${gib(n.inventory.memoryBytes)} disk=${gib(disk)}`,
          );
        }
      })
      .catch(() => undefined);
  }, intervalMs);
  return () => clearInterval(timer);
}

/**
 * The story's steps on the terminal, each with its duration and the time since the run began:
 *   [  41.2 s] ▸ enrolment rule "web" ...
 *   [  41.3 s] ✓ enrolment rule "web" ... (0.1 s)
 * A step's detail (what it returns) follows its duration.
 */
export class StepClock {
  private readonly t0: number;

  constructor(
    private readonly print: (line: string) => void,
    t0 = Date.now(),
  ) {
    this.t0 = t0;
  }

  private stamp(): string {
    return `[${((Date.now() - this.t0) / 1000).toFixed(1).padStart(6)} s]`;
  }

  note(line: string): void {
    this.print(`${this.stamp()}   ${line}`);
  }

  async step<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const start = Date.now();
    this.print(`${this.stamp()} ▸ ${what}`);
    try {
      const result = await fn();
      const detail = typeof result === 'string' ? `: ${result}` : '';
      this.print(`${this.stamp()} ✓ ${what} (${((Date.now() - start) / 1000).toFixed(1)} s)${detail}`);
      return result;
    } catch (err) {
      this.print(`${this.stamp()} ✗ ${what}: ${(err as Error).message}`);
      throw err;
    }
  }
}
