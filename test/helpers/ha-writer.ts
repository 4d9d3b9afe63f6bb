/**
 * A steady API write load for HA tests, run inside a client namespace: POST /api/v1/enlist with a fresh
 * MAC every INTERVAL ms; each acknowledged write (HTTP 200/201) is printed as `ACK <mac> <ms>` at once,
 * failures as `ERR <reason>`. Stops on SIGTERM. Usage: node ha-writer.js URL INTERVAL_MS PREFIX
 */
const [url, intervalArg, prefix = '02'] = process.argv.slice(2);
const interval = Number(intervalArg ?? 50);
let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});

function mac(n: number): string {
  const hex = n.toString(16).padStart(8, '0');
  return `${prefix}:aa:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:${hex.slice(6, 8)}`;
}

async function main(): Promise<void> {
  let n = 0;
  while (!stopping) {
    const m = mac(n++);
    const t0 = Date.now();
    try {
      const res = await fetch(`${url}/api/v1/enlist`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ mac: m, inventory: { memoryBytes: 1 << 30 } }),
        signal: AbortSignal.timeout(5000),
      });
      await res.text();
      if (res.status === 200 || res.status === 201) process.stdout.write(`ACK ${m} ${Date.now() - t0}\n`);
      else process.stdout.write(`ERR ${m} HTTP ${res.status}\n`);
    } catch (err) {
      process.stdout.write(`ERR ${m} ${(err as Error).message}\n`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

void main();
