/**
 * Pushes an image to a registry over its HTTP API V2 (distribution docs/spec/api.md), from Node: no
 * container engine on the master. Per blob: `HEAD /v2/<name>/blobs/<digest>` (200: the registry has it,
 * skip); else `POST /v2/<name>/blobs/uploads/` (202 + Location) and one monolithic
 * `PUT <Location>?digest=<digest>` carrying the bytes (201; the registry checks the digest itself). Then
 * `PUT /v2/<name>/manifests/<tag>`, which the registry accepts only once every blob it names is there, so
 * a push cut anywhere leaves the tag as it was and the next push uploads only what is missing.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { createReadStream } from 'node:fs';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { Blob, BuiltImage } from './image.js';
import { MEDIA } from './image.js';
import { checkRepository, checkTag } from './reference.js';

/** Blobs above this size log their progress (pino, info) every PROGRESS_STEP of it. */
const PROGRESS_MIN_BYTES = 8 << 20;
const PROGRESS_STEP = 0.1;
const TIMEOUT_MS = 60_000;

export interface PushOptions {
  /** `http://HOST:PORT` of the registry. */
  registry: string;
  repository: string;
  tag: string;
  image: BuiltImage;
  logger: Logger;
  /** Called as a blob's bytes go out (bytes sent so far of that blob). */
  onProgress?: (digest: string, sent: number, size: number) => void;
}

export interface PushResult {
  repository: string;
  tag: string;
  manifestDigest: string;
  /** Per blob: uploaded now, or already in the registry (HEAD answered 200). */
  blobs: { digest: string; size: number; uploaded: boolean }[];
  ms: number;
}

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function failed(what: string, detail: string): CorralError {
  return new CorralError('REGISTRY_PUSH_FAILED', `${what}: ${detail}`);
}

function send(
  method: string,
  url: URL,
  headers: Record<string, string | number>,
  body?: Buffer | { path: string; size: number; onChunk: (sent: number) => void },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, timeout: TIMEOUT_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text = (text + d).slice(0, 4000)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    if (!body) return void req.end();
    if (Buffer.isBuffer(body)) return void req.end(body);
    let sent = 0;
    const file = createReadStream(body.path);
    file.on('data', (chunk) => {
      sent += chunk.length;
      body.onChunk(sent);
    });
    file.on('error', (err) => req.destroy(err));
    file.pipe(req);
  });
}

/** The registry's error list (`{"errors":[{"code","message"}]}`) in one line, or the raw text. */
function registryWords(r: Reply): string {
  try {
    const parsed = JSON.parse(r.body) as { errors?: { code?: string; message?: string }[] };
    const words = parsed.errors?.map((e) => `${e.code ?? '?'} ${e.message ?? ''}`.trim()).join('; ');
    if (words) return `HTTP ${r.status} ${words}`;
  } catch {
    /* not JSON */
  }
  return `HTTP ${r.status} ${r.body.trim().slice(0, 200)}`;
}

async function call(
  what: string,
  method: string,
  url: URL,
  headers: Record<string, string | number>,
  body?: Parameters<typeof send>[3],
): Promise<Reply> {
  try {
    return await send(method, url, headers, body);
  } catch (err) {
    throw failed(what, `${(err as Error).message} (${method} ${url.origin}${url.pathname})`);
  }
}

async function uploadBlob(o: PushOptions, base: URL, blob: Blob): Promise<void> {
  const started = await call(
    'starting an upload',
    'POST',
    new URL(`v2/${o.repository}/blobs/uploads/`, base),
    {
      'Content-Length': 0,
    },
  );
  const location = started.headers.location;
  if (started.status !== 202 || !location) throw failed('starting an upload', registryWords(started));
  // Location may be relative (RFC 7231 section 7.1.2) and already carries a query (the upload state).
  const put = new URL(location, base);
  put.searchParams.set('digest', blob.digest);
  const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': blob.size };
  let body: Parameters<typeof send>[3];
  if (blob.path) {
    const log = o.logger.child({ digest: blob.digest, size: blob.size });
    let nextReport = PROGRESS_STEP;
    const t0 = Date.now();
    body = {
      path: blob.path,
      size: blob.size,
      onChunk: (sent) => {
        o.onProgress?.(blob.digest, sent, blob.size);
        if (blob.size < PROGRESS_MIN_BYTES || sent / blob.size < nextReport) return;
        nextReport = Math.floor(sent / blob.size / PROGRESS_STEP + 1) * PROGRESS_STEP;
        const seconds = (Date.now() - t0) / 1000;
        log.info(
          {
            percent: Math.round((sent / blob.size) * 100),
            mibPerS: +(sent / 2 ** 20 / Math.max(seconds, 0.001)).toFixed(1),
          },
          'registry: uploading layer',
        );
      },
    };
  } else {
    body = blob.bytes ?? Buffer.alloc(0);
  }
  const done = await call(`uploading ${blob.digest}`, 'PUT', put, headers, body);
  if (done.status !== 201) throw failed(`uploading ${blob.digest}`, registryWords(done));
}

export async function pushImage(o: PushOptions): Promise<PushResult> {
  checkRepository(o.repository);
  checkTag(o.tag);
  const t0 = Date.now();
  const base = new URL(o.registry.endsWith('/') ? o.registry : `${o.registry}/`);
  const blobs: PushResult['blobs'] = [];
  // Layers first, config last: the config is small, and a registry that holds it holds a finished push's
  // layers too in the common case, but every blob is checked on its own anyway.
  for (const blob of [...o.image.layers, o.image.config]) {
    const head = await call(
      'checking a blob',
      'HEAD',
      new URL(`v2/${o.repository}/blobs/${blob.digest}`, base),
      {},
    );
    const present = head.status === 200;
    if (!present && head.status !== 404) throw failed(`checking ${blob.digest}`, registryWords(head));
    if (!present) await uploadBlob(o, base, blob);
    blobs.push({ digest: blob.digest, size: blob.size, uploaded: !present });
  }
  const put = await call(
    'putting the manifest',
    'PUT',
    new URL(`v2/${o.repository}/manifests/${o.tag}`, base),
    { 'Content-Type': MEDIA.manifest, 'Content-Length': o.image.manifest.length },
    o.image.manifest,
  );
  if (put.status !== 201) throw failed('putting the manifest', registryWords(put));
  const echoed = put.headers['docker-content-digest'];
  if (echoed && echoed !== o.image.manifestDigest) {
    throw failed(
      'putting the manifest',
      `the registry stored ${String(echoed)}, not ${o.image.manifestDigest}`,
    );
  }
  const result = {
    repository: o.repository,
    tag: o.tag,
    manifestDigest: o.image.manifestDigest,
    blobs,
    ms: Date.now() - t0,
  };
  o.logger.info(
    {
      image: `${o.repository}:${o.tag}`,
      digest: result.manifestDigest,
      uploaded: blobs.filter((b) => b.uploaded).length,
      present: blobs.filter((b) => !b.uploaded).length,
      ms: result.ms,
    },
    'registry: image pushed',
  );
  return result;
}

/** The manifest digest the registry holds for `repository:tag`, or undefined (404). */
export async function manifestDigest(
  registry: string,
  repository: string,
  tag: string,
): Promise<string | undefined> {
  const base = new URL(registry.endsWith('/') ? registry : `${registry}/`);
  const r = await call(
    'checking the manifest',
    'HEAD',
    new URL(`v2/${checkRepository(repository)}/manifests/${checkTag(tag)}`, base),
    { Accept: MEDIA.manifest },
  );
  if (r.status === 404) return undefined;
  const digest = r.headers['docker-content-digest'];
  if (r.status !== 200 || typeof digest !== 'string') throw failed('checking the manifest', registryWords(r));
  return digest;
}
