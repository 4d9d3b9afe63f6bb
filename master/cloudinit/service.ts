/**
 * The cloud-init service: the layers (validated before they are stored) and each node's datasource files.
 * The API, the console, the CLI (through the API) and the node-facing routes all call it.
 */
import { isIPv6 } from 'node:net';
import type { FrozenConfig } from '../config.js';
import { defaultSubnet, publicUrl } from '../config.js';
import type { Arrival } from '../http-bind.js';
import type { Repos } from '../store/repos.js';
import type { NodeRecord } from '../store/nodes.js';
import { LeaseStore } from '../store/leases.js';
import { Lease6Store } from '../store/dhcp6-leases.js';
import { LAYER_SCOPES, type CloudInitLayerRecord, type LayerScope } from '../store/cloud-init-layers.js';
import { CorralError } from '../util/errors.js';
import { NODE_ROLE, findNode } from '../nodes/service.js';
import { leasedAddress } from '../nodes/address.js';
import { instanceId, renderMetaData, renderNetworkConfig, type PoolFacts } from './datasource.js';
import {
  describeLayer,
  layerProblem,
  nodeTags,
  renderUserData,
  selectLayers,
  type TemplateVars,
} from './user-data.js';

/** A layer's text is a config fragment, not a payload: 64 KiB is far more than any cloud-config needs. */
export const MAX_LAYER_BYTES = 64 * 1024;
/** Tags: a label, as roles are, with the separators tag schemes use (`rack:a1`, `gpu.a100`). */
export const TAG_NAME = /^[a-z0-9][a-z0-9_.:=-]{0,62}$/i;

export type CloudInitRepos = Pick<Repos, 'store' | 'nodes' | 'deployments' | 'cloudInitLayers'>;
export type CloudInitConfig = Pick<FrozenConfig, 'address' | 'http' | 'dhcp'>;

export interface NodeDatasource {
  metaData: string;
  userData: string;
  networkConfig: string;
  vendorData: string;
  /** The layers merged, in order (for the console's preview). */
  layers: string[];
}

export class CloudInit {
  private readonly leases: LeaseStore;
  private readonly leases6: Lease6Store;

  constructor(
    private readonly repos: CloudInitRepos,
    private readonly config: CloudInitConfig,
  ) {
    this.leases = new LeaseStore(repos.store);
    this.leases6 = new Lease6Store(repos.store);
  }

  list(): CloudInitLayerRecord[] {
    return this.repos.cloudInitLayers.list();
  }

  get(scope: string, target: string): CloudInitLayerRecord {
    const s = parseScope(scope);
    const t = this.target(s, target);
    const layer = this.repos.cloudInitLayers.get(s, t);
    if (!layer) {
      throw new CorralError(
        'CLOUDINIT_LAYER_NOT_FOUND',
        `no cloud-init layer ${describeLayer({ scope: s, target: t })}`,
      );
    }
    return layer;
  }

  /** Stores a layer after checking it renders (for a sample node, or the node itself) and parses. */
  set(scope: string, target: string, content: string, actor: string | null): CloudInitLayerRecord {
    const s = parseScope(scope);
    const t = this.target(s, target);
    if (Buffer.byteLength(content, 'utf8') > MAX_LAYER_BYTES) {
      throw new CorralError(
        'CLOUDINIT_LAYER_INVALID',
        `a cloud-init layer holds at most ${MAX_LAYER_BYTES} bytes`,
      );
    }
    const node = s === 'node' ? this.repos.nodes.get(t) : undefined;
    const problem = layerProblem(content, node ? this.varsFor(node) : this.sampleVars(s, t));
    if (problem) {
      throw new CorralError(
        'CLOUDINIT_LAYER_INVALID',
        `cloud-init layer ${describeLayer({ scope: s, target: t })}: ${problem}`,
      );
    }
    return this.repos.store.write((journal) =>
      this.repos.cloudInitLayers.putIn(journal, { scope: s, target: t, content, updatedBy: actor }),
    );
  }

  delete(scope: string, target: string): void {
    const s = parseScope(scope);
    const t = this.target(s, target);
    const gone = this.repos.store.write((journal) => this.repos.cloudInitLayers.deleteIn(journal, s, t));
    if (!gone) {
      throw new CorralError(
        'CLOUDINIT_LAYER_NOT_FOUND',
        `no cloud-init layer ${describeLayer({ scope: s, target: t })}`,
      );
    }
  }

  /**
   * The node's own datasource files, as cloud-init on it reads them. `arrival`: the request's family and
   * the master's base URL in it (http-bind.ts arrivalOf), so `{{master}}` and the network name the master
   * as the node reaches it (issue 18); without it (API preview), IPv4 and http.publicUrl.
   */
  render(node: NodeRecord, arrival?: Arrival): NodeDatasource {
    const layers = selectLayers(this.list(), { mac: node.mac, role: node.role, tags: nodeTags(node) });
    const vars = this.varsFor(node, arrival?.baseUrl);
    return {
      metaData: renderMetaData({ instanceId: vars.instanceId, hostname: node.name }),
      userData: renderUserData(layers, vars),
      networkConfig: renderNetworkConfig({
        mac: node.mac,
        reservedIp: this.leases.reservationFor(node.mac)?.ip,
        pools: this.pools(),
        ipv6: arrival?.ipv6,
      }),
      vendorData: '',
      layers: layers.map(describeLayer),
    };
  }

  /** The address the node's requests come from when they are its own (nodes/address.ts). */
  nodeAddress(node: NodeRecord): string | null {
    const lease =
      this.config.dhcp.mode === 'server'
        ? leasedAddress(this.leases, node.mac, this.repos.store.now().getTime())
        : undefined;
    return lease ?? node.ip;
  }

  /**
   * Whether `ip`, an IPv6 request's source, is an address Corral's DHCPv6 server has bound to this node
   * (by the MAC of its DUID-LL or relay option 79): a node deployed over IPv6 asks from that lease.
   */
  holdsIpv6Lease(node: NodeRecord, ip: string): boolean {
    if (!isIPv6(ip)) return false;
    const now = this.repos.store.now().getTime();
    // One lookup by the lease table's primary key: a cloud-init fetch must not scan every binding.
    const l = this.leases6.get(ip);
    return l !== undefined && l.mac === node.mac && l.state === 'bound' && l.expiresAt > now;
  }

  varsFor(node: NodeRecord, master?: string): TemplateVars {
    return {
      hostname: node.name,
      name: node.name,
      mac: node.mac,
      ip: this.nodeAddress(node) ?? '',
      role: node.role ?? '',
      master: master ?? publicUrl(this.config as FrozenConfig),
      tags: nodeTags(node),
      instanceId: instanceId(node.mac, this.repos.deployments.latestFor(node.mac)?.id),
    };
  }

  /** A stand-in node for checking a global, role or tag layer before any node uses it. */
  private sampleVars(scope: LayerScope, target: string): TemplateVars {
    return {
      hostname: 'node-1',
      name: 'node-1',
      mac: '52:54:00:00:00:01',
      ip: '192.0.2.10', // RFC 5737 documentation address
      role: scope === 'role' ? target : 'app',
      master: publicUrl(this.config as FrozenConfig),
      tags: scope === 'tag' ? [target] : [],
      instanceId: instanceId('52:54:00:00:00:01', 1),
    };
  }

  /** A layer's target in stored form: '' (global), a checked role or tag, a node's MAC. */
  private target(scope: LayerScope, target: string): string {
    switch (scope) {
      case 'global':
        if (target !== '') throw new CorralError('CLOUDINIT_LAYER_INVALID', 'the global layer has no target');
        return '';
      case 'role':
        if (!NODE_ROLE.test(target)) {
          throw new CorralError(
            'CLOUDINIT_LAYER_INVALID',
            `'${target}' is not a role name (${NODE_ROLE.source})`,
          );
        }
        return target;
      case 'tag':
        if (!TAG_NAME.test(target)) {
          throw new CorralError('CLOUDINIT_LAYER_INVALID', `'${target}' is not a tag (${TAG_NAME.source})`);
        }
        return target;
      case 'node':
        return findNode(this.repos.nodes, target).mac;
    }
  }

  private pools(): PoolFacts[] {
    const d = this.config.dhcp;
    return [
      {
        subnet: d.subnet ?? defaultSubnet(this.config.address),
        router: d.router,
        dns: d.dns,
        domain: d.domain,
      },
      ...d.relayPools.map((p) => ({ subnet: p.subnet, router: p.router, dns: p.dns, domain: p.domain })),
    ];
  }
}

export function parseScope(scope: string): LayerScope {
  if ((LAYER_SCOPES as readonly string[]).includes(scope)) return scope as LayerScope;
  throw new CorralError(
    'CLOUDINIT_LAYER_INVALID',
    `'${scope}' is not a layer scope: one of ${LAYER_SCOPES.join(', ')}`,
  );
}
