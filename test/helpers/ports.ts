import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A loopback port that was free a moment ago (TCP is asked; a test peer may use the same number for
 * UDP). For a process that must be told its port before it starts; a server of the test's own listens
 * on port 0 instead.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
