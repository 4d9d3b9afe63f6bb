/**
 * Network byte counters of the master's interfaces from /proc/net/dev (proc(5)), read asynchronously.
 * systeminformation's `networkStats('*')` first lists the interfaces with `networkInterfaces()`, which on
 * Linux runs several `execSync` children per interface: each blocks the event loop until a fork of the
 * ~200 MiB master exits. In a boot storm at N=250 that was 1.4 s of a blocked loop in 38 s, the largest
 * single stall the iPXE script requests waited behind (docs/scale.md, "Boot storm, sixth session").
 */
import { readFile } from 'node:fs/promises';

export interface NetBytes {
  rx: number;
  tx: number;
}

/**
 * Sums received and transmitted bytes over every interface but loopback. /proc/net/dev has two header
 * lines, then `name: rx_bytes rx_packets errs drop fifo frame compressed multicast tx_bytes ...`.
 * Undefined when no line parses (not Linux's format).
 */
export function parseNetDev(text: string): NetBytes | undefined {
  let rx = 0;
  let tx = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const fields = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (!name || name === 'lo' || fields.length < 9) continue;
    const [r, t] = [fields[0], fields[8]];
    if (!Number.isFinite(r) || !Number.isFinite(t)) continue;
    rx += r!;
    tx += t!;
    seen = true;
  }
  return seen ? { rx, tx } : undefined;
}

/** The counters now, or undefined where /proc/net/dev cannot be read. */
export async function readNetBytes(path = '/proc/net/dev'): Promise<NetBytes | undefined> {
  try {
    return parseNetDev(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}
