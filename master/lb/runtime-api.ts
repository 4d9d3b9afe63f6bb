/**
 * HAProxy's runtime API (the "stats socket", and the master CLI given with -S): one command per
 * connection, the answer is everything until HAProxy closes it. Bounded by a timeout.
 */
import { createConnection } from 'node:net';

export function runtimeCommand(socketPath: string, command: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let out = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`HAProxy runtime API ${socketPath}: no answer to '${command}' in ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${command}\n`));
    sock.on('data', (d: string) => (out += d));
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}
