/**
 * Runs Corral's DHCPv6 feature (server + radvd) alone over a real store, for the integration test and the
 * benchmark, inside a network namespace:
 *
 *   ip netns exec NS node dist/test/helpers/dhcp6-serve.js --data-dir DIR --iface IF --address A
 *     --prefix P --range A-B [--no-ra] [--no-rapid-commit]
 *
 * Prints `READY` once bound; on SIGTERM prints `STATS {json}` and exits 0. JSON logs go to stderr.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { openStore } from '../../master/store/db.js';
import { Lease6Store } from '../../master/store/dhcp6-leases.js';
import { Dhcp6ConfigSchema, startDhcp6 } from '../../master/dhcp6/index.js';
import { BootFilesSchema } from '../../master/dhcp/boot-files.js';
import { startTftpServer } from '../../master/tftp/server.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string' },
      iface: { type: 'string' },
      address: { type: 'string' },
      prefix: { type: 'string' },
      range: { type: 'string' },
      'no-ra': { type: 'boolean', default: false },
      'no-rapid-commit': { type: 'boolean', default: false },
      'log-level': { type: 'string', default: 'info' },
      /** Also serve this directory by TFTP on [::]:69 (PXE over IPv6 fetches its NBP so). */
      'tftp-root': { type: 'string' },
    },
  });
  const dataDir = values['data-dir'] ?? '';
  const logger = pino({ level: values['log-level'] ?? 'info' }, pino.destination(2));
  const store = openStore({ path: join(dataDir, 'corral.db'), logger });
  const config = Dhcp6ConfigSchema.parse({
    enabled: true,
    interface: values.iface,
    address: values.address,
    prefix: values.prefix,
    range: values.range,
    rapidCommit: !values['no-rapid-commit'],
    routerAdvertisements: { enabled: !values['no-ra'] },
  });
  const feature = await startDhcp6({
    config,
    dataDir,
    httpPort: 8080,
    bootFiles: BootFilesSchema.parse({}),
    legacyBootFiles: { biosFile: 'undionly.kpxe', uefiFile: 'ipxe.efi' },
    leases: new Lease6Store(store),
    logger,
  });
  const tftpRoot = values['tftp-root'];
  const tftp = tftpRoot
    ? await startTftpServer({ root: tftpRoot, address: '::', port: 69, logger })
    : undefined;
  process.stdout.write('READY\n');
  const stop = (): void => {
    void Promise.all([feature.close(), tftp?.close()]).then(() => {
      process.stdout.write(`STATS ${JSON.stringify(feature.stats())}\n`);
      store.close();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
