/**
 * The console's TLS certificate. A user-supplied certificate and key (console.certFile/keyFile) win;
 * otherwise a self-signed one is generated on first start into DATA_DIR/tls/ with the `openssl` CLI
 * (an ECDSA P-256 key, mode 0600) and reused on every later start, so a browser exception the admin
 * accepted once keeps holding.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { processRedactor } from '../util/redact.js';

const run = promisify(execFile);

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** Where they came from, for the log and the settings page. */
  certPath: string;
  generated: boolean;
  /** SHA-256 fingerprint, for comparing what the browser shows. */
  fingerprint256: string;
  validTo: string;
}

export function tlsDir(dataDir: string): string {
  return join(dataDir, 'tls');
}

/** Subject alternative names: the master's address, plus loopback for forwarded or local access. */
export function subjectAltNames(address: string): string {
  const ips = [...new Set([address, '127.0.0.1'])];
  return ['DNS:localhost', ...ips.map((ip) => `IP:${ip}`)].join(',');
}

async function generate(dir: string, address: string, logger: Logger): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyTmp = join(dir, 'key.pem.tmp');
  const certTmp = join(dir, 'cert.pem.tmp');
  try {
    await run(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyTmp,
        '-out',
        certTmp,
        // Browsers cap publicly trusted certificates at 398 days; a self-signed one is trusted by
        // exception anyway, so it lives longer to spare the admin a yearly re-acceptance.
        '-days',
        '825',
        '-subj',
        `/O=Corral/CN=corral ${address}`,
        '-addext',
        `subjectAltName=${subjectAltNames(address)}`,
      ],
      { timeout: 20_000 },
    );
  } catch (err) {
    rmSync(keyTmp, { force: true });
    rmSync(certTmp, { force: true });
    throw new CorralError(
      'TLS_FAILED',
      `cannot generate the console certificate with openssl: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  chmodSync(keyTmp, 0o600);
  // Key first: a cert without its key is never left in place.
  renameSync(keyTmp, join(dir, 'key.pem'));
  renameSync(certTmp, join(dir, 'cert.pem'));
  logger.info({ dir }, 'generated a self-signed console certificate');
}

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new CorralError(
      'TLS_FAILED',
      `cannot read the console ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

export async function ensureTls(options: {
  dataDir: string;
  address: string;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  logger: Logger;
}): Promise<TlsMaterial> {
  let certPath: string;
  let keyPath: string;
  let generated = false;
  if (options.certFile && options.keyFile) {
    certPath = options.certFile;
    keyPath = options.keyFile;
  } else {
    const dir = tlsDir(options.dataDir);
    certPath = join(dir, 'cert.pem');
    keyPath = join(dir, 'key.pem');
    if (!existsSync(certPath) || !existsSync(keyPath)) {
      await generate(dir, options.address, options.logger);
      generated = true;
    }
  }
  const cert = read(certPath, 'certificate');
  const key = read(keyPath, 'key');
  processRedactor.add(key.toString('utf8'));
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new CorralError('TLS_FAILED', `${certPath} is not a PEM certificate: ${(err as Error).message}`);
  }
  return { cert, key, certPath, generated, fingerprint256: x509.fingerprint256, validTo: x509.validTo };
}
