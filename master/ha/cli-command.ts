/**
 * `corral clone` and `corral witness`. They declare their flags; cli.ts parses them and hands in the
 * environment (CORRAL_HA_TOKEN) and a logger.
 */
import { join } from 'node:path';
import { defineCommand, usage, type CliContext } from '../cli/command.js';
import type { Logger } from '../util/logger.js';
import { clonePrimary } from './clone.js';
import { startWitness } from './witness.js';

const CLONE_HELP = `  corral clone --from https://PRIMARY --token T --data-dir DIR --address IP
               [--fingerprint SHA256] [--interface IFACE] [--priority N] [--http-port N]
      Build a backup master from a running primary (config, secrets, an online copy of the
      database, boot files and images, checked by sha256) over TLS, pinning the primary's
      certificate (--fingerprint: refuse any other); prints how to start it.
      The token may come from $CORRAL_HA_TOKEN instead of --token.
`;

const WITNESS_HELP = `  corral witness --listen ADDR:PORT --token T --state FILE [--lease-ms N]
      Run the witness that grants each promotion epoch to at most one master.
      The token may come from $CORRAL_HA_TOKEN instead of --token.
`;

interface HaCliEnv {
  token?: string;
  logger: Logger;
  out: (text: string) => void;
}

function haEnv(ctx: CliContext): HaCliEnv {
  return {
    ...(ctx.env['CORRAL_HA_TOKEN'] ? { token: ctx.env['CORRAL_HA_TOKEN'] } : {}),
    logger: ctx.logger('info', 'stdout'),
    out: ctx.out,
  };
}

function noPositionals(positionals: string[]): void {
  if (positionals.length) usage(`unexpected argument '${positionals[0]}'`);
}

export const cloneCommand = defineCommand({
  path: ['clone'],
  help: CLONE_HELP,
  options: {
    from: { type: 'string' },
    token: { type: 'string' },
    'data-dir': { type: 'string' },
    address: { type: 'string' },
    interface: { type: 'string' },
    priority: { type: 'string' },
    'http-port': { type: 'string' },
    fingerprint: { type: 'string' },
  },
  run: ({ values, positionals }, ctx) => {
    noPositionals(positionals);
    return runCloneCommand(values, haEnv(ctx));
  },
});

export const witnessCommand = defineCommand({
  path: ['witness'],
  help: WITNESS_HELP,
  options: {
    listen: { type: 'string' },
    token: { type: 'string' },
    state: { type: 'string' },
    'lease-ms': { type: 'string' },
  },
  run: ({ values, positionals }, ctx) => {
    noPositionals(positionals);
    return runWitnessCommand(values, haEnv(ctx));
  },
});

async function runCloneCommand(v: Record<string, string | undefined>, env: HaCliEnv): Promise<number> {
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

async function runWitnessCommand(v: Record<string, string | undefined>, env: HaCliEnv): Promise<number> {
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
