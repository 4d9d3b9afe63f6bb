import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';

export interface TlsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** SHA-256 fingerprint of the certificate the server presented. */
  fingerprint256: string;
}

/**
 * One HTTPS request that verifies the server against `ca` (the master's self-signed certificate), as a
 * browser does after the admin accepted it; fetch() cannot take a CA without undici's Agent.
 */
export function httpsRequest(
  url: string,
  ca: Buffer,
  options: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<TlsResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        ca,
        agent: false,
        timeout: options.timeoutMs ?? 5000,
      },
      (res) => {
        const fingerprint256 = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            fingerprint256,
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout on ${url}`)));
    req.on('error', reject);
    if (options.body) req.write(options.body);
    req.end();
  });
}
