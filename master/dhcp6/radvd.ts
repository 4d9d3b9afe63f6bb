/**
 * Router advertisements for the provisioning prefix, sent by Debian's radvd (a proven daemon) rather than
 * by Corral: rendered here, checked with `radvd --configtest`, installed with the shared config-install
 * step, and run by the shared daemon supervisor. The Managed flag (RFC 4861 §4.2 "M") tells clients to
 * take addresses from DHCPv6; firmware such as OVMF waits for an RA before it starts DHCPv6.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { installConfig, runCheck } from '../daemons/config-install.js';
import { Supervisor } from '../daemons/supervisor.js';
import type { Logger } from '../util/logger.js';

export interface RadvdSettings {
  interfaceName: string;
  /** e.g. fd00:55::/64 */
  prefix: string;
  routerLifetimeSeconds: number;
}

/** The radvd.conf text (radvd.conf(5)). */
export function renderRadvdConf(s: RadvdSettings): string {
  return [
    '# Written by Corral (master/dhcp6/radvd.ts); changes here are overwritten.',
    `interface ${s.interfaceName} {`,
    '  AdvSendAdvert on;',
    '  MinRtrAdvInterval 3;',
    '  MaxRtrAdvInterval 10;',
    '  # Addresses and other configuration come from DHCPv6 (RFC 4861 section 4.2, M and O flags).',
    '  AdvManagedFlag on;',
    '  AdvOtherConfigFlag on;',
    `  AdvDefaultLifetime ${s.routerLifetimeSeconds};`,
    `  prefix ${s.prefix} {`,
    '    AdvOnLink on;',
    '    # No SLAAC: a node has the one address Corral leased it.',
    '    AdvAutonomous off;',
    '  };',
    '};',
    '',
  ].join('\n');
}

export class Radvd {
  readonly configPath: string;
  private readonly daemon: Supervisor;

  constructor(private readonly opts: { dir: string; bin: string; logger: Logger; settings: RadvdSettings }) {
    this.configPath = join(opts.dir, 'radvd.conf');
    const pid = join(opts.dir, 'radvd.pid');
    this.daemon = new Supervisor({
      name: 'radvd',
      bin: opts.bin,
      args: () => [
        '--nodaemon',
        '--config',
        this.configPath,
        '--pidfile',
        pid,
        '--logmethod',
        'stderr_clean',
      ],
      logger: opts.logger,
      backoff: { initialMs: 1000, maxMs: 30_000 },
      codes: { missing: 'RADVD_CONFIG_INVALID', failed: 'RADVD_CONFIG_INVALID' },
    });
  }

  async start(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true });
    await installConfig(
      { path: this.configPath, text: renderRadvdConf(this.opts.settings), mode: 0o644, force: true },
      (staged) =>
        runCheck({
          bin: this.opts.bin,
          args: ['--configtest', '--config', staged],
          invalid: 'RADVD_CONFIG_INVALID',
          what: 'radvd --configtest',
        }),
    );
    await this.daemon.start();
  }

  status(): ReturnType<Supervisor['status']> {
    return this.daemon.status();
  }

  stop(): Promise<void> {
    return this.daemon.stop();
  }
}
