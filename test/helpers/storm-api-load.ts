/**
 * Background API load for the console-under-load figures (issue 19): `clients` loops, each sending the
 * node-list requests an automation client or a dashboard poller sends (a page, a filter, a search),
 * back to back, until stopped. Every response is read to the end and must be 200, so a failing or
 * truncated answer shows in `errors`, not as a fast one.
 */
export interface ApiLoad {
  /** Stops the loops; resolves with the requests completed, errors and the rate they were served at. */
  stop(): Promise<{ requests: number; errors: number; perSecond: number }>;
}

export function startApiLoad(
  base: string,
  authorization: string,
  clients: number,
  paths: readonly string[],
): ApiLoad {
  let running = true;
  let requests = 0;
  let errors = 0;
  const t0 = performance.now();
  const loops = Array.from({ length: clients }, async (_, c) => {
    for (let i = c; running; i++) {
      const path = paths[i % paths.length] ?? '/api/v1/nodes?limit=100';
      try {
        const res = await fetch(base + path, { headers: { authorization } });
        await res.arrayBuffer();
        if (res.status === 200) requests++;
        else errors++;
      } catch {
        errors++;
      }
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      const s = (performance.now() - t0) / 1000;
      return { requests, errors, perSecond: requests / s };
    },
  };
}
