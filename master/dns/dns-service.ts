/**
 * The cluster zone as a service: the inventory and the load balancer's view → records → zone file →
 * `knotc zone-check` → install → `knotc zone-reload`, and knot kept running.
 *
 * One loop, every `dns.pollMs`: compute the records (pure, records.ts); when they differ from those knot
 * serves, render with the next SOA serial and install through the shared config-install step, at most
 * once per `dns.minReloadMs` (a burst of health changes becomes one reload). A zone knot's check refuses
 * is not installed: knot keeps serving the previous one, and the same records are not tried again until
 * they change. All knot work is serialized, so a reload never races another.
 */
import { join } from 'node:path';
import { installConfig, readInstalled } from '../daemons/config-install.js';
import type { Lease6Record } from '../store/dhcp6-leases.js';
import type { NodeRecord } from '../store/nodes.js';
import type { Logger } from '../util/logger.js';
import type { ServiceView } from '../lb/load-balancer.js';
import { dnsServerAddress, type DnsConfig } from './config.js';
import { clusterDns6 } from './dhcp-options.js';
import { KnotProcess, renderKnotConfig } from './knot.js';
import { zoneRecords, type DnsRecord, type ZoneInput } from './records.js';
import { nextSerial, renderZoneFile, serialOf, soaRecord } from './zone-file.js';

export interface DnsServiceConfig {
  dns: DnsConfig;
  address: string;
  dataDir: string;
  ha: { enabled: boolean; vip?: string | undefined };
  dhcp6: { enabled: boolean; address?: string | undefined };
}

export interface DnsServiceDeps {
  config: DnsServiceConfig;
  nodes: { list(): NodeRecord[] };
  /** DHCPv6 bindings: a node's bound address becomes its AAAA record. */
  leases6?: { all(): Lease6Record[] };
  /** The load balancer's services with their servers' health (empty when load balancing is off). */
  services: () => ServiceView[];
  logger: Logger;
  now?: () => number;
}

export interface DnsStatus {
  zone: string;
  serial: number | null;
  listen: string[];
  port: number;
  running: boolean;
  knot: ReturnType<KnotProcess['status']>;
  /** Records knot serves now (SOA first). */
  records: DnsRecord[];
  skipped: string[];
  lastAppliedAt: string | null;
  lastError: string | null;
}

export class DnsService {
  readonly knot: KnotProcess;
  private readonly log: Logger;
  private readonly now: () => number;
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private served: { key: string; records: DnsRecord[]; serial: number; skipped: string[] } | undefined;
  private refusedKey: string | undefined;
  private lastApplyMs = 0;
  private lastAppliedAt: string | null = null;
  private lastError: string | null = null;
  private closed = false;
  private startFailures = 0;
  private nextStartMs = 0;

  constructor(private readonly deps: DnsServiceDeps) {
    this.log = deps.logger.child({ module: 'dns' });
    this.now = deps.now ?? Date.now;
    const { dns } = deps.config;
    this.knot = new KnotProcess({
      knotdBin: dns.knotdBin,
      knotcBin: dns.knotcBin,
      dir: join(deps.config.dataDir, 'knot'),
      zone: dns.zone,
      logger: this.log,
      onRestart: ({ restarts, exit }) =>
        this.log.warn({ restarts, exit }, 'knot died and was started again on the installed zone'),
    });
  }

  /** IPv4: dns.listen or the master's address; IPv6: dhcp6.address, which DHCPv6 names (option 23). */
  get listen(): string[] {
    const { dns, address } = this.deps.config;
    const v6 = clusterDns6(this.deps.config)?.server;
    return [...(dns.listen ? dns.listen : [dnsServerAddress(dns, address)]), ...(v6 ? [v6] : [])];
  }

  /** Installs knot.conf and the first zone, starts knot, then follows the cluster. */
  async start(): Promise<void> {
    const { dns } = this.deps.config;
    const knotConf = renderKnotConfig({
      paths: this.knot.paths,
      zone: dns.zone,
      listen: this.listen.map((a) => `${a}@${dns.port}`),
    });
    const confChanged = await installConfig(
      { path: this.knot.paths.config, text: knotConf, mode: 0o640 },
      (f) => this.knot.checkConfig(f),
    );
    if (confChanged) this.log.info({ config: this.knot.paths.config }, 'knot.conf installed');
    await this.sync().catch((err: unknown) => {
      // knot missing or port 53 taken must not stop the master: the error shows in the API and logs.
      this.log.error({ err: (err as Error).message }, 'DNS zone not served at start; trying again');
    });
    this.timer = setInterval(() => {
      void this.sync().catch(() => undefined);
    }, dns.pollMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.chain.catch(() => undefined);
    await this.knot.stop();
  }

  /** One comparison of the wanted records with the served ones; applies when they differ. */
  sync(): Promise<void> {
    const next = this.chain.then(() => this.tick());
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** What the zone would hold now (the records' input from the inventory and the load balancer). */
  input(): ZoneInput {
    const { dns, ha } = this.deps.config;
    const now = this.now();
    const v6 = new Map<string, string>();
    for (const l of this.deps.leases6?.all() ?? []) {
      if (l.mac && l.state === 'bound' && l.expiresAt > now) v6.set(l.mac, l.address);
    }
    return {
      zone: dns.zone,
      nameServers: this.listen,
      nodes: this.deps.nodes.list().map((n) => ({ name: n.name, ip: n.ip, ipv6: v6.get(n.mac) ?? null })),
      services: this.deps.services().map((v) => ({
        name: v.spec.name,
        port: v.spec.port,
        protocol: v.spec.protocol,
        instances: v.servers.map((s) => ({
          instance: s.name,
          node: s.node,
          port: s.port,
          up: s.health === 'up' && s.admin === 'ready',
        })),
      })),
      vip: ha.enabled && ha.vip ? ha.vip.split('/')[0] : undefined,
    };
  }

  status(): DnsStatus {
    const { dns } = this.deps.config;
    const served = this.served;
    return {
      zone: dns.zone,
      serial: served?.serial ?? null,
      listen: this.listen,
      port: dns.port,
      running: this.knot.running,
      knot: this.knot.status(),
      records: served ? [soaRecord(dns.zone, served.serial, dns.ttl), ...served.records] : [],
      skipped: served?.skipped ?? [],
      lastAppliedAt: this.lastAppliedAt,
      lastError: this.lastError,
    };
  }

  private async tick(): Promise<void> {
    if (this.closed) return;
    const { dns } = this.deps.config;
    const content = zoneRecords(this.input());
    const key = JSON.stringify(content.records);
    const fresh = this.served?.key !== key;
    if (!fresh && this.knot.running) {
      // What knot serves is what is wanted (also after a refused change was undone): nothing failing.
      this.lastError = null;
      return;
    }
    if (fresh && key === this.refusedKey) return;
    if (fresh && this.served && this.now() - this.lastApplyMs < dns.minReloadMs) return;
    try {
      await this.apply(key, content.records, content.skipped);
      this.lastError = null;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.log.warn({ err: this.lastError }, 'DNS zone not updated; knot keeps serving the previous zone');
      throw err;
    }
  }

  private async apply(key: string, records: DnsRecord[], skipped: string[]): Promise<void> {
    const { dns } = this.deps.config;
    const path = this.knot.paths.zoneFile;
    const installed = readInstalled(path);
    const fresh = this.served?.key !== key;
    if (fresh) {
      const serial = nextSerial(serialOf(installed), this.now());
      const text = renderZoneFile({ zone: dns.zone, serial, ttl: dns.ttl, records });
      try {
        await installConfig({ path, text, mode: 0o644 }, (staged) =>
          this.knot.checkZone(
            staged,
            this.listen.map((a) => `${a}@${dns.port}`),
          ),
        );
      } catch (err) {
        this.refusedKey = key;
        throw err;
      }
      this.lastApplyMs = this.now();
      if (this.knot.running) await this.knot.reloadZone();
      this.served = { key, records, serial, skipped };
      this.lastAppliedAt = new Date(this.lastApplyMs).toISOString();
      for (const why of skipped) this.log.warn({ why }, 'left out of the DNS zone');
      this.log.info({ serial, records: records.length + 1 }, 'DNS zone installed');
    }
    if (!this.knot.running) await this.startKnot();
  }

  /** Starts knot, backing off (1 s doubling to 30 s) while it cannot (port taken, binary missing). */
  private async startKnot(): Promise<void> {
    if (this.now() < this.nextStartMs) return;
    try {
      await this.knot.start();
      this.startFailures = 0;
    } catch (err) {
      this.startFailures++;
      this.nextStartMs = this.now() + Math.min(1000 * 2 ** this.startFailures, 30_000);
      throw err;
    }
  }
}
