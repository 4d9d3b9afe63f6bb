/**
 * `corral clone --from PRIMARY_URL --token T --data-dir DIR --address IP`: builds a backup master from a
 * running primary: its config (with this machine's address and the primary as peer), secrets, a
 * consistent online copy of the SQLite store (backup API, checked by sha256, integrity and last
 * sequence), the boot files and images (by sha256), and a check that both run the same templates.
 */
import { createHash } from 'node:crypto';
import {
  createWriteStream,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { openStore } from '../store/db.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { VERSION } from '../util/version.js';
import { syncFiles, type FileEntry } from './files.js';
import { isLoopbackUrl, normaliseFingerprint, PeerHttp, presentedFingerprint } from './peer-http.js';
import { templateManifest } from './router.js';

export interface CloneOptions {
  from: string;
  token: string;
  dataDir: string;
  address: string;
  interface?: string;
  priority?: number;
  /** Base URL of this (new) master, which the primary follows when roles swap; default http://ADDRESS:PORT. */
  httpPort?: number;
  /**
   * The primary's certificate fingerprint as the operator read it on the primary (Settings, or the
   * master's start log); when given, a primary presenting another certificate is refused before the token
   * is sent. Without it the certificate seen now is trusted, and printed for the operator to compare.
   */
  fingerprint?: string;
  logger: Logger;
}

export interface CloneResult {
  configPath: string;
  /** The primary's certificate fingerprint, now pinned in the backup's config (ha.peerCertSha256). */
  peerCertSha256: string;
  lastSeq: number;
  epoch: number;
  dbBytes: number;
  files: number;
  fileBytes: number;
  seconds: number;
}

interface CloneInfo {
  version: string;
  schemaVersion: number;
  epoch: number;
  lastSeq: number;
  config: Record<string, unknown> & { ha: Record<string, unknown>; http: Record<string, unknown> };
  secrets: { name: string; mode: number; base64: string }[];
  templates: FileEntry[];
}

export async function clonePrimary(o: CloneOptions): Promise<CloneResult> {
  const started = Date.now();
  const base = o.from.replace(/\/$/, '');
  const headers = { authorization: `Bearer ${o.token}` };
  // TLS first, nothing sent: the certificate the primary presents is pinned for everything after,
  // here and in the backup's replication (ha.peerCertSha256).
  let pinned = '';
  if (!isLoopbackUrl(base) || base.startsWith('https:')) {
    if (!base.startsWith('https:'))
      throw new CorralError(
        'CLONE_FAILED',
        `--from ${base}: use the primary's https:// address (the clone receives its database and keys)`,
      );
    try {
      pinned = await presentedFingerprint(base);
    } catch (err) {
      throw new CorralError('CLONE_FAILED', `cannot reach ${base} over TLS: ${(err as Error).message}`);
    }
    if (o.fingerprint && normaliseFingerprint(o.fingerprint) !== pinned) {
      throw new CorralError(
        'CLONE_FAILED',
        `${base} presented certificate ${pinned}, not ${normaliseFingerprint(o.fingerprint)} (--fingerprint): refusing to send it the token`,
      );
    }
  }
  const peer = new PeerHttp(base, pinned || undefined);
  const get = async (path: string, timeoutMs = 120_000): Promise<Response> => {
    let res: Response;
    try {
      res = await peer.fetch(`/api/v1/ha${path}`, { headers, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new CorralError('CLONE_FAILED', `cannot reach ${base}: ${(err as Error).message}`);
    }
    if (!res.ok) {
      throw new CorralError(
        'CLONE_FAILED',
        `${base}/api/v1/ha${path} answered HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`,
      );
    }
    return res;
  };
  const info = (await (await get('/clone/info')).json()) as CloneInfo;
  if (info.version !== VERSION) {
    throw new CorralError(
      'CLONE_FAILED',
      `the primary runs Corral ${info.version}, this machine ${VERSION}: install the same version`,
    );
  }
  const local = new Map((await templateManifest()).map((t) => [t.path, t.sha256]));
  const differing = info.templates.filter((t) => local.get(t.path) !== t.sha256).map((t) => t.path);
  if (differing.length) {
    throw new CorralError('CLONE_FAILED', `templates differ from the primary's: ${differing.join(', ')}`);
  }
  mkdirSync(o.dataDir, { recursive: true, mode: 0o750 });

  // Secrets first (mode kept), then the database, then files.
  for (const s of info.secrets) {
    if (s.name.includes('..') || s.name.startsWith('/'))
      throw new CorralError('CLONE_FAILED', `refusing secret ${s.name}`);
    const p = join(o.dataDir, s.name);
    mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
    writeFileSync(p, Buffer.from(s.base64, 'base64'), { mode: s.mode });
    chmodSync(p, s.mode);
  }

  const dbPath = join(o.dataDir, 'corral.db');
  const part = `${dbPath}.part`;
  const res = await get('/clone/db', 600_000);
  const expectSha = res.headers.get('x-corral-sha256') ?? '';
  const expectSeq = Number(res.headers.get('x-corral-last-seq') ?? NaN);
  const h = createHash('sha256');
  const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  body.on('data', (c: Buffer) => h.update(c));
  await pipeline(body, createWriteStream(part, { mode: 0o600 }));
  const gotSha = h.digest('hex');
  if (gotSha !== expectSha) {
    rmSync(part, { force: true });
    throw new CorralError(
      'CLONE_FAILED',
      `database copy checksum mismatch (expected ${expectSha}, got ${gotSha})`,
    );
  }
  const dbBytes = statSync(part).size;
  const copy = openStore({ path: part, logger: o.logger });
  const lastSeq = copy.lastChangeSeq();
  const epoch = copy.epoch();
  const integrity = copy.integrityCheck();
  copy.close();
  for (const suffix of ['-wal', '-shm']) rmSync(`${part}${suffix}`, { force: true });
  if (integrity !== 'ok' || lastSeq !== expectSeq) {
    rmSync(part, { force: true });
    throw new CorralError(
      'CLONE_FAILED',
      `database copy is not consistent (integrity ${integrity}, seq ${lastSeq} vs ${expectSeq})`,
    );
  }
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbPath}${suffix}`, { force: true });
  renameSync(part, dbPath);

  const manifest = ((await (await get('/files')).json()) as { files: FileEntry[] }).files;
  // The shared root's folder as this machine will have it: the primary's setting, or under this data dir.
  const sharedRoot = (info.config['sharedRoot'] ?? {}) as { dir?: string };
  const layout = { dataDir: o.dataDir, sharedRootDir: sharedRoot.dir ?? join(o.dataDir, 'sharedroot') };
  const sync = await syncFiles(layout, manifest, async (p) => {
    const r = await get(`/file?path=${encodeURIComponent(p)}`, 600_000);
    return r.body as WebReadableStream<Uint8Array>;
  });

  // The backup's config: the primary's, with this machine's identity, and the primary as its peer.
  const primaryHost = new URL(base).hostname;
  const cfg = structuredClone(info.config);
  cfg['dataDir'] = o.dataDir;
  cfg['address'] = o.address;
  if (o.interface) cfg['interface'] = o.interface;
  if (o.httpPort !== undefined) cfg.http['port'] = o.httpPort;
  const ha = { ...info.config.ha };
  delete ha['nodeId'];
  ha['peerUrl'] = base;
  if (pinned) ha['peerCertSha256'] = pinned;
  else delete ha['peerCertSha256'];
  ha['unicastPeer'] = primaryHost;
  ha['priority'] = o.priority ?? Math.max(1, Number(info.config.ha['priority'] ?? 100) - 10);
  ha['enabled'] = true;
  cfg.ha = ha;
  const configPath = join(o.dataDir, 'corral.json');
  writeFileSync(`${configPath}.tmp`, `${JSON.stringify(cfg, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${configPath}.tmp`, configPath);
  peer.close();
  return {
    configPath,
    peerCertSha256: pinned,
    lastSeq,
    epoch,
    dbBytes,
    files: manifest.length,
    fileBytes: sync.bytes,
    seconds: (Date.now() - started) / 1000,
  };
}
