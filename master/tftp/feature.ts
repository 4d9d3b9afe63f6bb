/**
 * TFTP as a feature: the boot loaders copied into DATA_DIR/tftp, and the TFTP server that hands them to
 * PXE ROMs. With HA only the VIP holder serves it (onRole).
 */
import type { FrozenConfig } from '../config.js';
import type { Started } from '../feature.js';
import type { BootConfig } from '../boot/config.js';
import type { TftpConfig } from './config.js';
import type { BootFilesConfig } from '../dhcp/boot-files.js';
import type { BootActivitySink } from '../boot/activity.js';
import { prepareTftpRoot } from '../boot/files.js';
import type { Faults } from '../util/faults.js';
import type { Logger } from '../util/logger.js';
import { startTftpServer, type GeneratedFile, type TftpServer } from './server.js';

export interface TftpFeatureDeps {
  config: {
    tftp: TftpConfig;
    boot: BootConfig;
    bootFiles: Readonly<BootFilesConfig>;
    dataDir: string;
    http: Pick<FrozenConfig['http'], 'bind'>;
  };
  logger: Logger;
  /** Fault counters; its `tftp` subsystem is registered when the server first starts (health shows it then). */
  faults: Pick<Faults, 'subsystem'>;
  activity: BootActivitySink;
  /** With HA: wait for onRole('primary') instead of serving at start. */
  primaryOnly: boolean;
  /** Files made per request: the Secure Boot chain's grub.cfg, kernel and initrd (boot/grub.ts). */
  generated?: (relative: string, peer: string) => GeneratedFile | undefined;
}

export async function startTftp(
  deps: TftpFeatureDeps,
): Promise<Started<{ port(): number | undefined; stats(): ReturnType<TftpServer['stats']> | undefined }>> {
  const { config } = deps;
  const root = prepareTftpRoot(config, deps.logger);
  // One server per http.bind address (dual-stack: 0.0.0.0 and ::); port() and health show the first.
  let servers: TftpServer[] = [];
  const serve = async (): Promise<void> => {
    if (!config.tftp.enabled || servers.length) return;
    const started: TftpServer[] = [];
    try {
      for (const address of config.http.bind) {
        started.push(
          await startTftpServer({
            root: root.root,
            address,
            port: config.tftp.port,
            logger: deps.logger,
            maxBlksize: config.tftp.maxBlksize,
            maxPerClient: config.tftp.maxPerClient,
            firstAckTimeoutMs: config.tftp.firstAckTimeoutMs,
            faults: deps.faults.subsystem('tftp'),
            activity: deps.activity,
            ...(deps.generated ? { generated: deps.generated } : {}),
          }),
        );
      }
    } catch (err) {
      await Promise.all(started.map((s) => s.close()));
      throw err;
    }
    servers = started;
  };
  const stop = async (): Promise<void> => {
    const s = servers;
    servers = [];
    await Promise.all(s.map((x) => x.close()));
  };
  /** Counters summed over the listeners (one per address family, usually). */
  const stats = (): ReturnType<TftpServer['stats']> | undefined => {
    if (!servers.length) return undefined;
    const sum = { active: 0, completed: 0, failed: 0, refused: 0, clientLimited: 0, deferred: 0 };
    for (const s of servers) {
      const one = s.stats();
      for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += one[k];
    }
    return sum;
  };
  if (!deps.primaryOnly) await serve();
  return {
    port: () => servers[0]?.port,
    stats,
    health: () => ({
      tftp: servers[0] ? { port: servers[0].port, ...stats() } : false,
      bootLoadersMissing: root.missing.length > 0,
    }),
    onRole: (role) => (role === 'primary' ? serve() : stop()),
    close: stop,
  };
}
