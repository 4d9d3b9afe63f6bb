/**
 * Issue 14, finding 7: replication over TLS with the peer's certificate pinned at clone time.
 * A real primary (in-process, HA on, HTTPS with its generated certificate) on loopback:
 * - `corral clone` (clonePrimary) with the wrong --fingerprint is refused before the token is sent (the
 *   primary's clone route is never reached), with an error naming both fingerprints;
 * - with the right one (or none: first sight) the clone completes over HTTPS and the backup's config pins
 *   the primary's certificate (ha.peerCertSha256), and the backup got the same certificate (tls/);
 * - the follower's client refuses a peer that presents another certificate, before any request is sent;
 * - plain http:// to a peer off loopback is refused by the config check.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildConfig } from '../../master/config.js';
import { clonePrimary } from '../../master/ha/clone.js';
import { certFingerprint, PeerHttp } from '../../master/ha/peer-http.js';
import { startMaster, type Master } from '../../master/master.js';
import { createLogger, silentLogger } from '../../master/util/logger.js';
import { pino } from 'pino';

const TOKEN = 'tls-pin-test-token-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'corral-hapin-'));
let primary: Master | undefined;
after(async () => {
  await primary?.close();
  rmSync(dir, { recursive: true, force: true });
});

function selfSigned(name: string): { cert: Buffer; key: Buffer; certPath: string } {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.pem`);
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', `/CN=${name}`],
    ],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(certPath), key: readFileSync(keyPath), certPath };
}

describe('HA over TLS, the peer certificate pinned', () => {
  let httpsBase = '';
  let fingerprint = '';
  const logFile = join(dir, 'primary.log');

  it('starts a primary with HTTPS', async () => {
    const config = buildConfig(
      {
        dataDir: join(dir, 'm1'),
        http: { port: 0, bind: '127.0.0.1' },
        tftp: { enabled: false },
        lb: { enabled: false },
        monitor: { enabled: false },
        ha: {
          enabled: true,
          nodeId: 'm1',
          token: TOKEN,
          peerUrl: 'https://127.0.0.1:1',
          keepalived: false,
          mode: 'async',
        },
      },
      { address: '127.0.0.1' },
    );
    const logger = createLogger({
      level: 'debug',
      destination: pino.destination({ dest: logFile, sync: true }),
    });
    primary = await startMaster(config, { logger, initialAdminPassword: 'tls-pin-admin-pw' });
    httpsBase = `https://127.0.0.1:${primary.httpsPort}`;
    fingerprint = certFingerprint(join(dir, 'm1', 'tls', 'cert.pem'));
  });

  it('clone with a wrong --fingerprint is refused before the token is sent', async () => {
    const wrong = fingerprint.replace(/^../, fingerprint.startsWith('00') ? '11' : '00');
    await assert.rejects(
      clonePrimary({
        from: httpsBase,
        token: TOKEN,
        dataDir: join(dir, 'm2-refused'),
        address: '127.0.0.1',
        fingerprint: wrong,
        logger: silentLogger(),
      }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'CLONE_FAILED');
        assert.match(err.message, new RegExp(`presented certificate ${fingerprint}, not ${wrong}`));
        return true;
      },
    );
    assert.doesNotMatch(readFileSync(logFile, 'utf8'), /clone\/info/, 'the clone route was never asked');
  });

  it('clone with the right fingerprint completes over HTTPS and pins the certificate in the backup config', async () => {
    const r = await clonePrimary({
      from: httpsBase,
      token: TOKEN,
      dataDir: join(dir, 'm2'),
      address: '127.0.0.2',
      fingerprint: fingerprint.toLowerCase(),
      logger: silentLogger(),
    });
    assert.equal(r.peerCertSha256, fingerprint);
    const cfg = JSON.parse(readFileSync(r.configPath, 'utf8')) as { ha: Record<string, unknown> };
    assert.equal(cfg.ha['peerUrl'], httpsBase);
    assert.equal(cfg.ha['peerCertSha256'], fingerprint);
    // Both masters present the same certificate, so the primary (no pin in its config) pins its own.
    assert.equal(certFingerprint(join(dir, 'm2', 'tls', 'cert.pem')), fingerprint);
  });

  it('the replication client refuses a peer with another certificate, and sends it nothing', async () => {
    const other = selfSigned('impostor');
    let requests = 0;
    const server = createServer({ cert: other.cert, key: other.key }, (_req, res) => {
      requests++;
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const pinnedToPrimary = new PeerHttp(base, fingerprint);
      await assert.rejects(
        pinnedToPrimary.fetch('/api/v1/ha/feed', { headers: { authorization: `Bearer ${TOKEN}` } }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'HA_PEER_CERT_MISMATCH');
          assert.match(err.message, /refusing to send it the HA token/);
          return true;
        },
      );
      pinnedToPrimary.close();
      assert.equal(requests, 0, 'no request reached the impostor');
      // The same client pinned to the right certificate gets through (the check is the pin, not the CA).
      const right = new PeerHttp(base, certFingerprint(other.certPath));
      const res = await right.fetch('/x');
      assert.equal(res.status, 200);
      assert.equal(await res.text(), '{}');
      right.close();
      assert.equal(requests, 1);
    } finally {
      server.close();
    }
  });

  it('plain http:// to a peer off loopback is refused at start', () => {
    assert.throws(
      () =>
        buildConfig(
          { dataDir: join(dir, 'x'), ha: { enabled: true, token: TOKEN, peerUrl: 'http://10.0.0.2:8080' } },
          { address: '10.0.0.1' },
        ),
      /ha\.peerUrl: must be https:\/\//,
    );
  });
});
