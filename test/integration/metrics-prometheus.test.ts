/**
 * Metrics at fleet scale (issue 19) against real peers, in namespaces the test makes:
 * - a real `corral master` (DHCP server and TFTP on) in namespace M, with metrics.token set;
 * - a "node" host N on the same test bridge: busybox udhcpc takes a lease, tftp-hpa fetches the BIOS loader,
 *   curl enlists it, and Debian's prometheus-node-exporter listens there on the node's address;
 * - curl from N (off the master's loopback): /metrics without the token → 401 METRICS_AUTH_REQUIRED, with
 *   a wrong one → 401, with the token → the exposition; from the master's own loopback without a token → 200;
 * - the exposition, parsed: DHCP offers/acks and the TFTP transfer counted, the node in corral_nodes, HTTP
 *   requests by route class; the token appears in no response;
 * - a real Prometheus server (Debian's) in M, configured only from what the master generates
 *   (GET /api/v1/metrics/scrape-config as file_sd JSON and as scrape jobs): both targets up in
 *   /api/v1/targets, and corral_nodes and node_exporter's node_uname_info queried through /api/v1/query.
 */
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestNet, runIn, startNsMaster, stopNsLab, udhcpcLease, type Host } from '../helpers/netns.js';
import type { MasterProcess } from '../helpers/master-process.js';

const PASSWORD = 'metrics-admin-password';
const TOKEN = 'metrics-token-0123456789abcdef';
const MAC = '52:54:00:19:00:01';
const EXPORTER_PORT = 9100;
const PROM_PORT = 9090;

// A missing peer fails the run (test/helpers/peers.ts), it never skips.
const unmet = unmetNeeds({
  root: true,
  commands: ['udhcpc', 'tftp', 'curl', 'prometheus', 'prometheus-node-exporter'],
  files: ['/usr/lib/ipxe/undionly.kpxe'],
});

/** The exposition's samples: `name{labels} value` lines, comments skipped. */
function parseExposition(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(l);
      assert.ok(m, `not an exposition line: ${l}`);
      const labels = Object.fromEntries(
        [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
      ) as Record<string, string>;
      return { name: m[1]!, labels, value: Number(m[3]) };
    });
}

describe(
  'Prometheus: /metrics, its authorisation, and a real Prometheus scraping the lab',
  { timeout: 180_000 },
  () => {
    before(() => failIfUnmet(unmet));
    let net: TestNet;
    let dir: string;
    let srv: Host;
    let node: Host;
    let master: MasterProcess | undefined;
    const octet = 1 + Math.floor(Math.random() * 250);
    const prefix = `10.82.${octet}`;
    const SERVER = `${prefix}.1`;
    const HTTP_PORT = 8090;
    const base = `http://${SERVER}:${HTTP_PORT}`;
    const local = `http://127.0.0.1:${HTTP_PORT}`;
    let nodeIp = '';

    const inNode = (argv: string[], timeoutMs = 20_000) => runIn(net, node.ns, argv, timeoutMs);
    const inMaster = (argv: string[], timeoutMs = 20_000) => runIn(net, srv.ns, argv, timeoutMs);

    /** curl in a namespace: status and body. */
    async function curl(where: 'node' | 'master', args: string[]): Promise<{ status: number; body: string }> {
      const r = await (where === 'node' ? inNode : inMaster)([
        'curl',
        '-sS',
        '-m',
        '10',
        '-w',
        '\n%{http_code}',
        ...args,
      ]);
      assert.equal(r.code, 0, `curl ${args.join(' ')}: ${r.stderr}`);
      const out = r.stdout.trimEnd();
      const i = out.lastIndexOf('\n');
      return { status: Number(out.slice(i + 1)), body: out.slice(0, i) };
    }

    /** The admin API over the master's own loopback (Basic is refused in clear from elsewhere). */
    async function api(method: string, path: string, body?: unknown): Promise<string> {
      const r = await curl('master', [
        '-X',
        method,
        '-u',
        `admin:${PASSWORD}`,
        ...(body !== undefined ? ['-H', 'content-type: application/json', '-d', JSON.stringify(body)] : []),
        `${local}/api/v1${path}`,
      ]);
      assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.body}`);
      return r.body;
    }

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'corral-metrics-'));
      net = new TestNet('mx');
      srv = net.addHost('srv', `${SERVER}/24`);
      node = net.addHost('n1', null, MAC);
      master = await startNsMaster({
        net,
        srv,
        dir,
        address: SERVER,
        config: {
          nodeImage: { autoBuild: false },
          lb: { enabled: false },
          console: { https: false },
          monitor: { enabled: false },
          metrics: { token: TOKEN, nodeExporterPort: EXPORTER_PORT },
        },
        args: ['--dhcp-range', `${prefix}.100-${prefix}.150`, '--http-port', String(HTTP_PORT)],
        env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
      });
    });

    after(async () => {
      await stopNsLab({ master, net, dir });
    });

    it('a node boots (DHCP, TFTP), enlists and is deployed; node-exporter runs on its address', async () => {
      nodeIp = (await udhcpcLease(net, node, dir, 'lease'))['ip'] ?? '';
      assert.match(nodeIp, /^10\.82\.\d+\.1[0-5]\d$/);
      net.nsExec(node.ns, ['ip', 'addr', 'add', `${nodeIp}/24`, 'dev', node.ifname]);
      const tftp = await inNode([
        'tftp',
        '-m',
        'binary',
        SERVER,
        '-c',
        'get',
        'undionly.kpxe',
        join(dir, 'loader'),
      ]);
      assert.equal(tftp.code, 0, `tftp: ${tftp.stderr}`);

      const enlist = await curl('node', [
        '-H',
        'content-type: application/json',
        '-d',
        JSON.stringify({
          mac: MAC,
          inventory: { cpu: { model: 'Test CPU', count: 2 }, memoryBytes: 2 ** 31 },
        }),
        `${base}/api/v1/enlist`,
      ]);
      assert.equal(enlist.status, 201, enlist.body);
      await api('POST', `/nodes/${MAC}/transition`, { to: 'deploying' });
      await api('POST', `/nodes/${MAC}/transition`, { to: 'deployed' });
      const shown = JSON.parse(await api('GET', `/nodes/${MAC}`)) as { node: { ip: string; state: string } };
      assert.equal(shown.node.ip, nodeIp);
      assert.equal(shown.node.state, 'deployed');

      // Debian's node exporter, as the OS image runs it (node-images/os-image.ts), on the node's address.
      net.spawnIn(node.ns, [
        'prometheus-node-exporter',
        `--web.listen-address=${nodeIp}:${EXPORTER_PORT}`,
        '--collector.disable-defaults',
        '--collector.uname',
        '--collector.loadavg',
      ]);
      const deadline = Date.now() + 20_000;
      let up = false;
      while (!up && Date.now() < deadline) {
        const r = await inNode([
          'curl',
          '-s',
          '-m',
          '2',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          `http://${nodeIp}:${EXPORTER_PORT}/metrics`,
        ]);
        up = r.stdout === '200';
        if (!up) await new Promise((r) => setTimeout(r, 250));
      }
      assert.ok(up, 'node exporter answers');
    });

    it('off loopback /metrics needs the token; loopback does not; the exposition carries DHCP, TFTP, nodes, HTTP', async () => {
      const none = await curl('node', [`${base}/metrics`]);
      assert.equal(none.status, 401, none.body);
      assert.equal(
        (JSON.parse(none.body) as { error: { code: string } }).error.code,
        'METRICS_AUTH_REQUIRED',
      );
      const wrong = await curl('node', [
        '-H',
        'authorization: Bearer not-the-token-at-all',
        `${base}/metrics`,
      ]);
      assert.equal(wrong.status, 401);
      const ok = await curl('node', ['-H', `authorization: Bearer ${TOKEN}`, `${base}/metrics`]);
      assert.equal(ok.status, 200, ok.body);
      const fromLoopback = await curl('master', [`${local}/metrics`]);
      assert.equal(fromLoopback.status, 200);
      assert.ok(!ok.body.includes(TOKEN) && !fromLoopback.body.includes(TOKEN), 'the token is not exposed');

      const samples = parseExposition(fromLoopback.body);
      const get = (name: string, labels: Record<string, string> = {}): number | undefined =>
        samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
          ?.value;
      assert.ok((get('corral_dhcp_sent_total', { type: 'offer' }) ?? 0) >= 1, 'a DHCPOFFER counted');
      assert.ok((get('corral_dhcp_sent_total', { type: 'ack' }) ?? 0) >= 1, 'a DHCPACK counted');
      assert.ok((get('corral_dhcp_received_total', { type: 'discover' }) ?? 0) >= 1);
      assert.equal(get('corral_dhcp_leases_bound'), 1);
      assert.equal(get('corral_tftp_transfers_total', { outcome: 'completed' }), 1);
      assert.equal(get('corral_nodes', { state: 'deployed' }), 1);
      assert.equal(get('corral_nodes', { state: 'discovered' }), 0);
      assert.equal(get('corral_subsystem_faults_total', { subsystem: 'dhcp' }), 0);
      assert.ok(
        (get('corral_http_request_duration_seconds_count', {
          route: 'enlist',
          method: 'POST',
          status: '201',
        }) ?? 0) >= 1,
        'the enlistment timed under route="enlist"',
      );
      assert.ok(
        (get('corral_http_request_duration_seconds_count', { route: 'metrics', status: '401' }) ?? 0) >= 2,
      );
      assert.equal(get('corral_deploy_duration_seconds_count', { outcome: 'booted' }), 0);
      assert.equal(get('corral_build_info'), 1);
    });

    it('a real Prometheus, configured from the generated scrape config, scrapes the master and the node', async () => {
      const targets = await api('GET', '/metrics/scrape-config');
      const groups = JSON.parse(targets) as { targets: string[]; labels: Record<string, string> }[];
      assert.deepEqual(
        groups.map((g) => g.targets[0]),
        [`${SERVER}:${HTTP_PORT}`, `${nodeIp}:${EXPORTER_PORT}`],
      );
      assert.equal(groups[1]?.labels['corral_node'], 'node-1');
      const sdFile = join(dir, 'corral-targets.json');
      const tokenFile = join(dir, 'metrics.token');
      writeFileSync(sdFile, targets);
      writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
      const jobs = await api(
        'GET',
        `/metrics/scrape-config?format=prometheus&fileSdPath=${encodeURIComponent(sdFile)}&tokenFile=${encodeURIComponent(tokenFile)}`,
      );
      const promYml = join(dir, 'prometheus.yml');
      writeFileSync(
        promYml,
        `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n${jobs.replace(/scrape_interval: 15s/g, 'scrape_interval: 1s')}`,
      );
      // Prometheus' own check of the generated configuration (promtool ships with Debian's prometheus).
      const check = await inMaster(['promtool', 'check', 'config', promYml]);
      assert.equal(check.code, 0, `promtool: ${check.stdout}${check.stderr}`);
      assert.equal(check.code, 0, `promtool: ${check.stdout}${check.stderr}`);
      // Prometheus in the master's namespace: its scrapes of SERVER come from SERVER, not loopback, so the
      // master's job must carry the token.
      net.spawnIn(srv.ns, [
        'prometheus',
        `--config.file=${promYml}`,
        `--storage.tsdb.path=${join(dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${PROM_PORT}`,
        '--log.level=warn',
      ]);
      const prom = `http://127.0.0.1:${PROM_PORT}`;
      type Target = { labels: Record<string, string>; health: string; lastError: string };
      let active: Target[] = [];
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline) {
        const r = await inMaster(['curl', '-s', '-m', '3', `${prom}/api/v1/targets`]);
        if (r.code === 0 && r.stdout.startsWith('{')) {
          active = (JSON.parse(r.stdout) as { data: { activeTargets: Target[] } }).data.activeTargets;
          if (active.length === 2 && active.every((t) => t.health === 'up')) break;
        }
        await new Promise((res) => setTimeout(res, 1000));
      }
      const summary = active.map((t) => `${t.labels['job']} ${t.health} ${t.lastError}`).join('; ');
      assert.equal(active.length, 2, summary);
      assert.ok(
        active.every((t) => t.health === 'up'),
        summary,
      );
      const nodeTarget = active.find((t) => t.labels['job'] === 'corral-nodes');
      assert.equal(nodeTarget?.labels['corral_node'], 'node-1');

      const query = async (
        q: string,
      ): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
        const r = await inMaster([
          'curl',
          '-s',
          '-m',
          '5',
          '--get',
          '--data-urlencode',
          `query=${q}`,
          `${prom}/api/v1/query`,
        ]);
        assert.equal(r.code, 0, r.stderr);
        return (
          JSON.parse(r.stdout) as {
            data: { result: { metric: Record<string, string>; value: [number, string] }[] };
          }
        ).data.result;
      };
      const deployed = await query('corral_nodes{state="deployed"}');
      assert.equal(deployed[0]?.value[1], '1', JSON.stringify(deployed));
      assert.equal(deployed[0]?.metric['job'], 'corral-master');
      const uname = await query('node_uname_info{job="corral-nodes"}');
      assert.equal(uname.length, 1, JSON.stringify(uname));
      assert.equal(uname[0]?.metric['corral_node'], 'node-1');
      assert.equal(uname[0]?.metric['instance'], `${nodeIp}:${EXPORTER_PORT}`);
    });
  },
);
