/**
 * The NoCloud datasource over HTTP, node-facing (unauthenticated in the HTTP Basic sense; mounted under
 * /boot, so plain HTTP keeps it when the console moves to HTTPS):
 *   GET /boot/cloud-init/<mac>/meta-data | user-data | vendor-data | network-config
 * A deployed node's cloud-init reads it through `seedfrom` (cloud-init appends the file names to the URL).
 *
 * Each request must prove it is the node of the URL, because user-data may carry secrets meant for one
 * node: either the node's credential (`Authorization: Bearer`, nodes/credentials.ts; the installer and
 * agent send it) or a TCP source address equal to the node's address as Corral's own records give it
 * (its bound DHCP lease in server mode, else its recorded address; nodes/address.ts). cloud-init's
 * NoCloud fetcher sends no credential, so on a deployed node the address is what counts; over IPv6 that
 * is an address Corral's DHCPv6 server has bound to the node's MAC (issue 18). A request for
 * another node's MAC is refused (CLOUDINIT_REFUSED), logged and recorded as a `cloudinit.refused` event
 * on the node it named, at most once a minute per node with the count since the last.
 */
import type { Request, RequestHandler } from 'express';
import { clientIp } from '../util/client-ip.js';
import type { Logger } from '../util/logger.js';
import type { Repos } from '../store/repos.js';
import { CorralError } from '../util/errors.js';
import { normaliseMac } from '../nodes/inventory.js';
import { bearerCredential, credentialMatches } from '../nodes/credentials.js';
import type { CloudInit, NodeDatasource } from './service.js';
import type { Arrival } from '../http-bind.js';

const FILES: Record<string, keyof Omit<NodeDatasource, 'layers'>> = {
  'meta-data': 'metaData',
  'user-data': 'userData',
  'vendor-data': 'vendorData',
  'network-config': 'networkConfig',
};

const REFUSAL_REPORT_MS = 60_000;
const REFUSAL_TRACKED_MAX = 1024;

export interface CloudInitNodeRouteDeps {
  cloudInit: CloudInit;
  repos: Pick<Repos, 'nodes' | 'nodeCredentials' | 'events'>;
  logger: Logger;
  clock?: () => number;
  /** The family of a request and the master's URL in it (http-bind.ts arrivalOf); IPv4 when absent. */
  arrival?: (req: Request) => Arrival;
}

/** The handler of the node surface's `cloudInit` row (boot/surface.ts): GET /boot/cloud-init/:mac/:file. */
export function cloudInitHandler(deps: CloudInitNodeRouteDeps): RequestHandler {
  const log = deps.logger.child({ module: 'cloud-init' });
  const clock = deps.clock ?? Date.now;
  const refusals = new Map<string, { n: number; lastAt: number }>();

  const refused = (mac: string, ip: string | null, file: string, why: string): void => {
    let r = refusals.get(mac);
    if (!r) {
      if (refusals.size >= REFUSAL_TRACKED_MAX) refusals.delete(refusals.keys().next().value as string);
      r = { n: 0, lastAt: -Infinity };
      refusals.set(mac, r);
    }
    r.n++;
    const now = clock();
    if (now - r.lastAt < REFUSAL_REPORT_MS) return;
    const count = r.n;
    r.n = 0;
    r.lastAt = now;
    const message = `${count} cloud-init request${count === 1 ? '' : 's'} for ${mac} refused since the last report; latest ${file} from ${ip ?? 'an unknown address'}: ${why}`;
    log.warn({ mac, ip, file, count }, message);
    try {
      deps.repos.events.append({
        nodeMac: mac,
        kind: 'cloudinit.refused',
        severity: 'warning',
        message,
        actor: 'node',
        data: { ip, file, count },
      });
    } catch (err) {
      // A backup master refuses writes (NOT_PRIMARY): the log line still says it.
      log.debug({ err }, 'cloud-init refusal event not written');
    }
  };

  return (req, res) => {
    const file = String(req.params['file']);
    const key = FILES[file];
    if (!key)
      throw new CorralError(
        'NOT_FOUND',
        `no cloud-init file ${file} (meta-data, user-data, vendor-data, network-config)`,
      );
    const mac = normaliseMac(String(req.params['mac']));
    if (!mac) throw new CorralError('MAC_INVALID', `'${String(req.params['mac'])}' is not a MAC address`);
    const node = deps.repos.nodes.get(mac);
    if (!node) throw new CorralError('NODE_NOT_FOUND', `no node ${mac}`);
    const ip = clientIp(req);
    const secret = bearerCredential(req.headers);
    const byCredential = secret !== undefined && credentialMatches(deps.repos as Repos, mac, secret);
    const nodeIp = deps.cloudInit.nodeAddress(node);
    const byAddress = ip !== null && (ip === nodeIp || deps.cloudInit.holdsIpv6Lease(node, ip));
    if (!byCredential && !byAddress) {
      const why = secret
        ? 'that is not its credential'
        : `the request comes from ${ip ?? 'an unknown address'}, not the node's address ${nodeIp ?? '(none known)'}`;
      refused(mac, ip, file, why);
      throw new CorralError(
        'CLOUDINIT_REFUSED',
        `cloud-init data of ${node.name} is for ${node.name} only: ${why}`,
      );
    }
    const text = deps.cloudInit.render(node, deps.arrival?.(req))[key];
    log.info({ mac, file, ip, by: byCredential ? 'credential' : 'address' }, 'cloud-init data served');
    res.type('text/plain; charset=utf-8').setHeader('Cache-Control', 'no-store');
    res.send(text);
  };
}
