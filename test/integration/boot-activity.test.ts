/**
 * The boot timeline (issue 22) on a real master in a network namespace, against real peers: a PXE-like
 * udhcpc (BIOS vendor class), tftp-hpa fetching the iPXE loader, curl asking for the boot script and the
 * kernel (404: the node environment is not built in a fresh data directory), then curl posting the agent's
 * enlistment. The API timeline must show DHCP → TFTP → script → kernel (failing, with its hint) → enlist
 * in that order, and the console (signed in with curl's cookie jar) must show it on the Boot activity
 * page and on the node's page.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { TestNet, runIn, startNsMaster, stopNsLab, udhcpcLease, type Host } from '../helpers/netns.js';
import type { MasterProcess } from '../helpers/master-process.js';
import type { BootActivityEntry, BootActivityMachine } from '../../master/store/boot-activity.js';

const PASSWORD = 'boot-activity-admin-pw';
const MAC = '52:54:00:b0:07:01';

const unmet = unmetNeeds({
  root: true,
  commands: ['udhcpc', 'tftp', 'curl'],
  files: ['/usr/lib/ipxe/undionly.kpxe'],
});

describe('boot activity: a PXE-like client seen end to end', { timeout: 120_000 }, () => {
  before(() => failIfUnmet(unmet));
  let net: TestNet;
  let dir: string;
  let srv: Host;
  let client: Host;
  let master: MasterProcess | undefined;
  const octet = 1 + Math.floor(Math.random() * 250);
  const prefix = `10.81.${octet}`;
  const SERVER = `${prefix}.1`;
  let base: string;
  let clientIp = '';

  /** Runs in the client's namespace; the master attributes its traffic by its leased address. */
  const inClient = async (argv: string[], timeoutMs = 20_000) => runIn(net, client.ns, argv, timeoutMs);

  async function api<T>(path: string): Promise<T> {
    const r = await inClient(['curl', '-sS', '-f', '-u', `admin:${PASSWORD}`, `${base}${path}`]);
    assert.equal(r.code, 0, `GET ${path}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-bootact-'));
    net = new TestNet('ba');
    srv = net.addHost('srv', `${SERVER}/24`);
    client = net.addHost('c1', null, MAC);
    master = await startNsMaster({
      net,
      srv,
      dir,
      address: SERVER,
      config: {
        // The master would build the node environment itself (nodeImage.autoBuild): this test needs it missing.
        nodeImage: { autoBuild: false },
        // curl -u from the client's namespace over plain HTTP (not loopback): opted in.
        console: { allowInsecureBasicAuth: true },
      },
      args: ['--dhcp-range', `${prefix}.100-${prefix}.150`, '--http-port', '80'],
      env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
    });
    base = `http://${SERVER}`;
  });

  after(async () => {
    await stopNsLab({ master, net, dir });
  });

  it('DHCP (BIOS PXE vendor class) → TFTP → boot script → kernel 404 → enlist, in order, the kernel marked failing', async () => {
    // 1. DHCP: busybox udhcpc presenting a BIOS PXE ROM's vendor class; its script records the lease.
    const lease = await udhcpcLease(net, client, dir, 'lease', ['-V', 'PXEClient:Arch:00000:UNDI:002001']);
    clientIp = lease['ip'] ?? '';
    assert.match(clientIp, new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.1[0-5]\\d$`));
    assert.equal(lease['boot_file'], 'undionly.kpxe');
    net.nsExec(client.ns, ['ip', 'addr', 'add', `${clientIp}/24`, 'dev', client.ifname]);

    // 2. TFTP: tftp-hpa fetches the loader the DHCP reply named, from the leased address.
    const got = join(dir, 'undionly.kpxe');
    const tftp = await inClient(['tftp', '-m', 'binary', SERVER, '-c', 'get', 'undionly.kpxe', got]);
    assert.equal(tftp.code, 0, `tftp: ${tftp.stdout}${tftp.stderr}`);
    const loaderBytes = statSync(got).size;
    assert.equal(loaderBytes, statSync('/usr/lib/ipxe/undionly.kpxe').size);

    // 3. The boot script, as iPXE asks for it; 4. the kernel, which a fresh data directory does not have.
    const ipxe = await inClient(['curl', '-sS', '-f', `${base}/boot/ipxe?mac=${MAC}`]);
    assert.equal(ipxe.code, 0, ipxe.stderr);
    assert.match(ipxe.stdout, /^#!ipxe/);
    const kernel = await inClient([
      'curl',
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${base}/boot/node/vmlinuz`,
    ]);
    assert.equal(kernel.stdout, '404');

    const { entries } = await api<{ entries: BootActivityEntry[] }>(`/api/v1/boot-activity?mac=${MAC}`);
    const kinds = entries.map((e) => e.kind);
    const at = (kind: string): number => kinds.indexOf(kind);
    assert.ok(at('dhcp') >= 0 && at('dhcp') < at('tftp'), `order: ${kinds.join(' ')}`);
    assert.ok(at('tftp') < at('script') && at('script') < at('http'), `order: ${kinds.join(' ')}`);
    const dhcpSteps = entries.filter((e) => e.kind === 'dhcp');
    assert.deepEqual(
      dhcpSteps.map((e) => [e.detail['message'], e.detail['reply']]),
      [
        ['DHCPDISCOVER', 'DHCPOFFER'],
        ['DHCPREQUEST', 'DHCPACK'],
      ],
    );
    assert.equal(dhcpSteps[1]?.detail['arch'], 0);
    assert.equal(dhcpSteps[1]?.detail['bootFile'], 'undionly.kpxe');
    assert.equal(dhcpSteps[1]?.detail['ip'], clientIp);
    const tftpStep = entries[at('tftp')];
    assert.equal(tftpStep?.failed, false);
    assert.equal(tftpStep?.detail['bytes'], loaderBytes);
    assert.match(String(entries[at('script')]?.detail['template']), /^ipxe\//);
    const kernelStep = entries[at('http')];
    assert.equal(kernelStep?.detail['path'], '/boot/node/vmlinuz');
    assert.equal(kernelStep?.detail['status'], 404);
    assert.equal(kernelStep?.failed, true);
    assert.match(
      kernelStep?.hint ?? '',
      /^kernel missing: the node environment is not built — see the dashboard/,
    );

    // The list: this MAC is a machine not yet enlisted, its failing step the kernel.
    const list = await api<{ bounds: { perMac: number; maxMacs: number }; machines: BootActivityMachine[] }>(
      '/api/v1/boot-activity?unenlisted=1',
    );
    assert.deepEqual(list.bounds, { perMac: 100, maxMacs: 1000 });
    const me = list.machines.find((m) => m.mac === MAC);
    assert.equal(me?.node, null);
    assert.equal(me?.failure?.summary, kernelStep?.summary);

    // Bad input gets the catalogue's error.
    const bad = await inClient([
      'curl',
      '-sS',
      '-u',
      `admin:${PASSWORD}`,
      `${base}/api/v1/boot-activity?mac=nope`,
    ]);
    assert.equal((JSON.parse(bad.stdout) as { error: { code: string } }).error.code, 'MAC_INVALID');
    const anon = await inClient([
      'curl',
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${base}/api/v1/boot-activity`,
    ]);
    assert.equal(anon.stdout, '401');
  });

  it('the console shows it: Boot activity page (signed in), then the node page after enlistment', async () => {
    const jar = join(dir, 'cookies.txt');
    const web = `https://${SERVER}`;
    const curl = async (...args: string[]): Promise<string> => {
      // The console is on HTTPS (console.https, self-signed certificate); plain HTTP redirects there.
      const r = await inClient(['curl', '-sS', '-k', '-b', jar, '-c', jar, ...args]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    const form = await curl(`${web}/login`);
    const token = /name="_csrf" value="([^"]+)"/.exec(form)?.[1];
    assert.ok(token, 'login form token');
    await curl(
      '-o',
      '/dev/null',
      '--data-urlencode',
      `_csrf=${token}`,
      '--data-urlencode',
      'user=admin',
      '--data-urlencode',
      `password=${PASSWORD}`,
      '--data-urlencode',
      'next=/',
      `${web}/login`,
    );

    const page = await curl(`${web}/boot-activity`);
    assert.match(page, /<h1>Boot activity<\/h1>/);
    assert.match(page, /href="\/boot-activity" aria-current="page"/, 'in the navigation, current');
    const unenlisted = /<h2 id="h-unenlisted">[\s\S]*?<\/section>/.exec(page)?.[0] ?? '';
    assert.match(unenlisted, new RegExp(`data-mac="${MAC}"`));
    assert.match(unenlisted, /kernel missing: the node environment is not built/);

    const one = await curl(`${web}/boot-activity?mac=${MAC}`);
    assert.match(one, /data-boot-failure><strong>Failing step:<\/strong> kernel: HTTP 404/);
    assert.match(one, /<tr class="ev-error" data-failed>[\s\S]*?kernel: HTTP 404/);
    assert.match(one, /TFTP undionly\.kpxe: /);

    // The agent's enlistment (as corral-agent posts it), from the leased address: the last step.
    const enlist = await inClient([
      'curl',
      '-sS',
      '-f',
      '-H',
      'content-type: application/json',
      '-d',
      JSON.stringify({ mac: MAC, inventory: { memoryBytes: 536870912, cpu: { count: 1 } } }),
      `${base}/api/v1/enlist`,
    ]);
    assert.equal(enlist.code, 0, enlist.stderr);
    const detail = await api<{ node: { name: string }; bootActivity: BootActivityEntry[] }>(
      `/api/v1/nodes/${MAC}`,
    );
    assert.equal(detail.bootActivity.at(-1)?.kind, 'enlist');
    assert.match(
      detail.bootActivity.at(-1)?.summary ?? '',
      new RegExp(
        `^agent enlisted as ${detail.node.name} \\(new node\\) from ${clientIp.replace(/\./g, '\\.')}$`,
      ),
    );

    const nodePage = await curl(`${web}/nodes/${MAC}`);
    const section = /<h2 id="h-boot">Boot activity<\/h2>[\s\S]*?<\/section>/.exec(nodePage)?.[0] ?? '';
    assert.match(section, /agent enlisted as/);
    assert.match(section, /kernel missing: the node environment is not built/);
    const after = await curl(`${web}/boot-activity`);
    const stillUnenlisted = /<h2 id="h-unenlisted">[\s\S]*?<\/section>/.exec(after)?.[0] ?? '';
    assert.doesNotMatch(stillUnenlisted, new RegExp(MAC), 'enlisted: no longer listed as unenlisted');
  });

  it('a node out of boot attempts gets the fallback (exit 1), and its timeline and node page show it', async () => {
    // What iPXE asks after its last retry failed (boot.retries 5 by default: attempts 0-5).
    const script = await inClient(['curl', '-sS', '-f', `${base}/boot/ipxe?mac=${MAC}&attempt=6`]);
    assert.equal(script.code, 0, script.stderr);
    assert.match(script.stdout, /^#!ipxe\n/);
    assert.match(script.stdout, /^exit 1$/m);
    const { entries } = await api<{ entries: BootActivityEntry[] }>(`/api/v1/boot-activity?mac=${MAC}`);
    const last = entries.at(-1);
    assert.equal(last?.kind, 'fallback');
    assert.equal(last?.failed, true);
    assert.equal(last?.detail['action'], 'local-disk');
    assert.equal(last?.detail['attempts'], 6);
    assert.equal(last?.summary, 'boot failed 6 times: left for the local disk (exit 1)');
    const page = await inClient([
      'curl',
      '-sS',
      '-k',
      '-b',
      join(dir, 'cookies.txt'),
      `https://${SERVER}/nodes/${MAC}`,
    ]);
    const section = /<h2 id="h-boot">Boot activity<\/h2>[\s\S]*?<\/section>/.exec(page.stdout)?.[0] ?? '';
    assert.match(section, /boot failed 6 times: left for the local disk/);
  });
});
