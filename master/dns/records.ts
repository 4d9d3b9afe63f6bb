/**
 * The zone's records from the inventory and the load balancer's view: pure, data in, records out.
 *
 * - SOA and NS at the apex, `ns.<zone>` A for each address knot listens on (RFC 1035 §3.3.11, §3.3.13);
 * - `<node>.<zone>` A (and AAAA from a bound DHCPv6 lease) for every node with an address;
 * - per load-balanced service `<svc>`, DNS-SD (RFC 6763):
 *     `_services._dns-sd._udp.<zone>` PTR `_<svc>._tcp.<zone>`          (§9, service type enumeration)
 *     `_<svc>._tcp.<zone>` PTR `<inst>._<svc>._tcp.<zone>`              (§4.1, one per UP instance)
 *     `<inst>._<svc>._tcp.<zone>` SRV 0 1 <backend port> `<node>.<zone>` (§5, RFC 2782)
 *     `<inst>._<svc>._tcp.<zone>` TXT "txtvers=1" "corral-service=<svc>" ...  (§6)
 *   where the instance label `<inst>` is the node's name, or `<node>-p<port>` when several instances of
 *   an app share a node (an app on the bridge network: its HAProxy server names), each with its own port.
 *   and, for clients that ask RFC 2782's question directly (`dig SRV _web._tcp.cluster`), the same SRV
 *   set at `_<svc>._tcp.<zone>` itself. With an HA VIP, a `vip` instance whose SRV names `vip.<zone>` and
 *   the front end's port (the VIP is up whenever a master is; it is not an instance in the SRV set).
 *
 * Only UP instances appear: HAProxy's health check is the one judge of "healthy" (a drained or
 * maintained server is left out too: it takes no new clients). Names that are not DNS labels are skipped
 * with a reason instead of being escaped, so a hostile name never reaches the zone file; the limits on a
 * whole name (255 octets, RFC 1035 §2.3.4) are left to knot's own check of the rendered zone.
 */

export type RecordType = 'SOA' | 'NS' | 'A' | 'AAAA' | 'PTR' | 'SRV' | 'TXT';

export interface DnsRecord {
  /** Absolute owner name, lower case, with the trailing dot. */
  name: string;
  type: RecordType;
  /** RDATA in zone-file presentation form (absolute names). */
  data: string;
}

export interface ZoneNode {
  name: string;
  ip: string | null;
  ipv6: string | null;
}

export interface ZoneInstance {
  /** The instance's label (§4.1 Instance): the node's name, or `<node>-p<port>` for one of several there. */
  instance: string;
  /** The node serving it (its name, the SRV target's label). */
  node: string;
  port: number;
  up: boolean;
}

export interface ZoneService {
  name: string;
  /** The front end's port (the `vip` instance's SRV). */
  port: number;
  protocol: 'http' | 'tcp';
  instances: ZoneInstance[];
}

export interface ZoneInput {
  zone: string;
  /** Addresses knot answers on: `ns.<zone>` A (AAAA for an IPv6 one). */
  nameServers: readonly string[];
  nodes: readonly ZoneNode[];
  services: readonly ZoneService[];
  /** The HA VIP (address only) when HA is on: `vip.<zone>` and a `vip` instance per service. */
  vip?: string | undefined;
}

export interface ZoneContent {
  /** Every record but the SOA, sorted: what changes when the cluster does. */
  records: DnsRecord[];
  /** What was left out, and why (shown in the API and logged). */
  skipped: string[];
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Service names as the load balancer allows them (lb/service-spec.ts SERVICE_NAME). */
const SERVICE_LABEL = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/** Owner names Corral uses itself: a node by that name would add its address to them. */
export const RESERVED_NAMES: readonly string[] = ['ns', 'vip'];

/** RFC 1035 §5.1 character-string: quoted, with `"` and `\` escaped. Our values are printable ASCII. */
function txt(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

const order = (a: DnsRecord, b: DnsRecord): number =>
  a.name.localeCompare(b.name, 'en') ||
  a.type.localeCompare(b.type, 'en') ||
  a.data.localeCompare(b.data, 'en');

export function zoneRecords(input: ZoneInput): ZoneContent {
  const { zone } = input;
  const records: DnsRecord[] = [];
  const skipped: string[] = [];
  const add = (name: string, type: RecordType, data: string): void => {
    records.push({ name, type, data });
  };
  const ns = `ns.${zone}`;
  add(zone, 'NS', ns);
  for (const address of input.nameServers) add(ns, address.includes(':') ? 'AAAA' : 'A', address);
  if (input.vip) add(`vip.${zone}`, 'A', input.vip);

  const hosts = new Set<string>();
  for (const node of input.nodes) {
    if (!node.ip && !node.ipv6) continue;
    if (!LABEL.test(node.name)) {
      skipped.push(`node '${node.name}': not a DNS label`);
      continue;
    }
    if (RESERVED_NAMES.includes(node.name)) {
      skipped.push(`node '${node.name}': the name is used by Corral itself (${node.name}.${zone})`);
      continue;
    }
    hosts.add(node.name);
    if (node.ip) add(`${node.name}.${zone}`, 'A', node.ip);
    if (node.ipv6) add(`${node.name}.${zone}`, 'AAAA', node.ipv6);
  }

  for (const svc of input.services) {
    if (!SERVICE_LABEL.test(svc.name)) {
      skipped.push(`service '${svc.name}': not a DNS label`);
      continue;
    }
    const type = `_${svc.name}._tcp.${zone}`;
    const up = svc.instances.filter((i) => {
      if (!i.up) return false;
      if (!hosts.has(i.node)) {
        skipped.push(`service '${svc.name}': instance on '${i.node}' has no address record`);
        return false;
      }
      if (LABEL.test(i.instance) && i.instance !== 'vip') return true;
      skipped.push(`service '${svc.name}': instance '${i.instance}' is not a DNS label (or is vip)`);
      return false;
    });
    if (!up.length && !input.vip) continue;
    add(`_services._dns-sd._udp.${zone}`, 'PTR', type);
    const txtData = (instance: string): string =>
      [
        'txtvers=1',
        `corral-service=${svc.name}`,
        `corral-instance=${instance}`,
        ...(svc.protocol === 'http' ? ['path=/'] : []),
      ]
        .map(txt)
        .join(' ');
    for (const i of up) {
      const instance = `${i.instance}.${type}`;
      const srv = `0 1 ${i.port} ${i.node}.${zone}`;
      add(type, 'PTR', instance);
      add(type, 'SRV', srv);
      add(instance, 'SRV', srv);
      add(instance, 'TXT', txtData(i.instance));
    }
    if (input.vip) {
      const instance = `vip.${type}`;
      add(type, 'PTR', instance);
      add(instance, 'SRV', `0 1 ${svc.port} vip.${zone}`);
      add(instance, 'TXT', txtData('vip'));
    }
  }
  return { records: records.sort(order), skipped };
}
