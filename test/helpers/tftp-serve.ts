/**
 * Runs Corral's TFTP server alone, for tests and the benchmark that need it inside a network namespace:
 *
 *   ip netns exec NS node dist/test/helpers/tftp-serve.js --root DIR --address A --port P
 *     [--max-blksize N] [--max-windowsize N] [--retries N] [--timeout-ms N] [--max-per-client N]
 *     [--log-level L]
 *
 * Prints `READY <port>` on stdout once listening; JSON logs go to stderr. Exits 0 on SIGTERM/SIGINT after
 * closing the server, 2 on bad arguments, 1 if the server cannot start.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { startTftpServer } from '../../master/tftp/index.js';

function numberFlag(values: Record<string, string | boolean | undefined>, name: string): number | undefined {
  const v = values[name];
  if (typeof v !== 'string') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) {
    console.error(`--${name} must be an integer`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      root: { type: 'string' },
      address: { type: 'string', default: '0.0.0.0' },
      port: { type: 'string', default: '69' },
      'max-blksize': { type: 'string' },
      'max-windowsize': { type: 'string' },
      retries: { type: 'string' },
      'timeout-ms': { type: 'string' },
      'max-per-client': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
    },
    strict: true,
  });
  if (!values.root) {
    console.error('usage: tftp-serve --root DIR [--address A] [--port P]');
    process.exit(2);
  }
  const logger = pino({ level: values['log-level'], base: { app: 'corral' } }, pino.destination(2));
  const server = await startTftpServer({
    root: values.root,
    address: values.address,
    port: numberFlag(values, 'port') ?? 69,
    logger,
    maxBlksize: numberFlag(values, 'max-blksize'),
    maxWindowsize: numberFlag(values, 'max-windowsize'),
    retries: numberFlag(values, 'retries'),
    timeoutMs: numberFlag(values, 'timeout-ms'),
    maxPerClient: numberFlag(values, 'max-per-client'),
  });
  process.stdout.write(`READY ${server.port}\n`);
  const stop = (): void => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
