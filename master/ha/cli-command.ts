/**
 * `corral clone` and `corral witness`. cli.ts hands in the environment (CORRAL_HA_TOKEN) and a logger;
 * flags are parsed here, next to the commands they belong to.
 */
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { clonePrimary } from './clone.js';
import { startWitness } from './witness.js';

export const HA_HELP = `  corral clone --from https://PRIMARY --token T --data-dir DIR --address IP
               [--fingerprint SHA256] [--interface IFACE] [--priority N] [--http-port N]
      Build a backup master from a running primary (config, secrets, an online copy of the
      database, boot files and images, checked by sha256) over TLS, pinning the primary's
      certificate (--fingerprint: refuse any other); prints how to start it.
  corral witness --listen ADDR:PORT --token T --state FILE [--lease-ms N]
      Run the witness that grants each promotion epoch to at most one master.
`;

export interface HaCliEnv {
  token?: string;
  logger: Logger;
  out: (text: string) => void;
}

function usage(message: string): never {
  throw new CorralError('USAGE', message);
}

function args(argv: string[], options: NonNullable<ParseArgsConfig['options']>): Record<string, unknown> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true }).values;
  } catch (err) {
    return usage((err as Error).message.split('\n')[0] ?? 'bad arguments');
  }
}

export async function runCloneCommand(argv: string[], env: HaCliEnv): Promise<number> {
  const v = args(argv, {
    from: { type: 'string' },
    token: { type: 'string' },
    'data-dir': { type: 'string' },
    address: { type: 'string' },
    interface: { type: 'string' },
    priority: { type: 'string' },
    'http-port': { type: 'string' },
    fingerprint: { type: 'string' },
  }) as Record<string, string | undefined>;
  const token = v['token'] ?? env.token;
  if (!v['from'] || !token || !v['data-dir'] || !v['address']) {
    usage('usage: corral clone --from PRIMARY_URL --token T --data-dir DIR --address IP');
  }
  const r = await clonePrimary({
    from: v['from'],
    token,
    dataDir: v['data-dir'],
    address: v['address'],
    ...(v['interface'] ? { interface: v['interface'] } : {}),
    ...(v['priority'] ? { priority: Number(v['priority']) } : {}),
    ...(v['http-port'] ? { httpPort: Number(v['http-port']) } : {}),
    ...(v['fingerprint'] ? { fingerprint: v['fingerprint'] } : {}),
    logger: env.logger,
  });
  env.out(
    `clone complete in ${r.seconds.toFixed(1)} s: database ${r.dbBytes} bytes at seq ${r.lastSeq} (epoch ${r.epoch}), ` +
      `${r.files} file(s), ${r.fileBytes} bytes fetched\n` +
      (r.peerCertSha256 ? `pinned the primary's certificate ${r.peerCertSha256}\n` : '') +
      `start the backup with: corral master --config ${r.configPath}\n`,
  );
  return 0;
}

export async function runWitnessCommand(argv: string[], env: HaCliEnv): Promise<number> {
  const v = args(argv, {
    listen: { type: 'string' },
    token: { type: 'string' },
    state: { type: 'string' },
    'lease-ms': { type: 'string' },
  }) as Record<string, string | undefined>;
  const token = v['token'] ?? env.token;
  const m = /^([\d.]+):(\d+)$/.exec(v['listen'] ?? '');
  if (!m || !token) usage('usage: corral witness --listen ADDR:PORT --token T --state FILE');
  const witness = await startWitness({
    host: m[1]!,
    port: Number(m[2]),
    token,
    stateFile: v['state'] ?? join(process.cwd(), 'corral-witness.json'),
    leaseMs: v['lease-ms'] ? Number(v['lease-ms']) : 3000,
    logger: env.logger,
  });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await witness.close();
  return 0;
}
