/**
 * `corral witness`: the third vote of a two-master cluster. A tiny HTTP server (token auth) that grants
 * each promotion epoch to at most one master and leases to a primary writing without its backup. Its
 * state is persisted (temp file + rename) before it answers, so a restarted witness never re-grants.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../util/logger.js';
import { decideLease, decidePromote, decideRelease, type WitnessState } from './witness-state.js';

export interface WitnessOptions {
  host: string;
  port: number;
  token: string;
  stateFile: string;
  leaseMs: number;
  logger: Logger;
  now?: () => number;
}

export interface Witness {
  port: number;
  state(): WitnessState;
  close(): Promise<void>;
}

/**
 * What a master sends the witness instead of the HA token: a digest of it. The witness runs plain HTTP
 * (it holds no data, only votes), so the token itself, which opens the clone and replication routes,
 * must never travel to it; a captured credential only buys witness calls, which check epochs anyway.
 */
export function witnessCredential(token: string): string {
  return createHash('sha256').update(`corral-witness\0${token}`).digest('hex');
}

export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  if (!m?.[1]) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      data += c;
      if (data.length > 4096) req.destroy(new Error('body too large'));
    });
    req.on('end', () => {
      try {
        const v = JSON.parse(data || '{}') as unknown;
        resolve(typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});
      } catch (err) {
        reject(err as Error);
      }
    });
    req.on('error', reject);
  });
}

export async function startWitness(o: WitnessOptions): Promise<Witness> {
  const now = o.now ?? Date.now;
  const log = o.logger.child({ module: 'witness' });
  let state: WitnessState = existsSync(o.stateFile)
    ? (JSON.parse(readFileSync(o.stateFile, 'utf8')) as WitnessState)
    : { epoch: 0, holder: null, leaseUntil: 0 };
  const persist = (next: WitnessState): void => {
    const tmp = `${o.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(next), { mode: 0o600 });
    renameSync(tmp, o.stateFile);
    state = next;
  };
  const send = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const credential = witnessCredential(o.token);
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (!tokenMatches(req.headers.authorization, credential)) return send(res, 401, { error: 'token' });
      if (req.method === 'GET' && req.url === '/state') return send(res, 200, state);
      if (req.method !== 'POST') return send(res, 404, { error: 'not found' });
      const body = await readBody(req);
      const nodeId = typeof body['nodeId'] === 'string' ? body['nodeId'] : '';
      const epoch = typeof body['epoch'] === 'number' ? body['epoch'] : NaN;
      if (!nodeId || !Number.isInteger(epoch)) return send(res, 400, { error: 'nodeId and epoch required' });
      if (req.url === '/promote') {
        const a = decidePromote(state, nodeId, epoch, now());
        if (a.granted) persist(a.state);
        log.info(
          { nodeId, epoch, granted: a.granted, ...(a.granted ? {} : { reason: a.reason }) },
          'promotion asked',
        );
        return send(res, a.granted ? 200 : 409, a);
      }
      if (req.url === '/lease') {
        const a = decideLease(state, nodeId, epoch, now(), o.leaseMs);
        if (a.granted) persist(a.state);
        else log.info({ nodeId, epoch, reason: a.reason }, 'lease refused');
        return send(res, a.granted ? 200 : 409, a);
      }
      if (req.url === '/release') {
        persist(decideRelease(state, nodeId, epoch));
        return send(res, 200, { granted: true, state });
      }
      return send(res, 404, { error: 'not found' });
    })().catch((err: unknown) => {
      log.warn({ err }, 'witness request failed');
      if (!res.headersSent) send(res, 400, { error: 'bad request' });
    });
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve((server.address() as AddressInfo).port));
  });
  log.info({ host: o.host, port, epoch: state.epoch }, 'corral witness started');
  return {
    port,
    state: () => state,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
