/**
 * A deployed node whose disk does not boot comes back to Corral (issue 18), on a real master in a network
 * namespace, with the boot loaders' requests made by real clients from the node's address: curl for
 * iPXE's (`/boot/ipxe`, then `/boot/local-failed` as local.hbs chains it when sanboot fails) and tftp-hpa
 * for network GRUB's (`grub/node/MAC/0.cfg`, then `grub/node/MAC/local-failed.cfg`). A report without a
 * local answer before it is refused (`exit 1`, the node stays deployed); after one, the node turns
 * `failed` with the reason, the timeline has the `disk-failed` step, and the answer is the node
 * environment's script (here its wait script: a fresh data directory has none built). The QEMU run of the
 * GRUB path is in test/e2e/lab-deploy.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { TestNet, runIn, startNsMaster, stopNsLab, type Host } from '../helpers/netns.js';
import type { MasterProcess } from '../helpers/master-process.js';
import type { BootActivityEntry } from '../../master/store/boot-activity.js';

const PASSWORD = 'disk-fallback-admin-pw';
const MAC = '52:54:00:d1:5c:01';

const unmet = unmetNeeds({ root: true, commands: ['tftp', 'curl'] });

describe(
  'never strand a node: a disk that does not boot, reported by iPXE and by network GRUB',
  { timeout: 90_000 },
  () => {
    before(() => failIfUnmet(unmet));
    let net: TestNet;
    let dir: string;
    let srv: Host;
    let client: Host;
    let master: MasterProcess | undefined;
    const prefix = `10.82.${1 + Math.floor(Math.random() * 250)}`;
    const SERVER = `${prefix}.1`;
    const base = `http://${SERVER}`;

    const inClient = async (argv: string[]) => runIn(net, client.ns, argv, 20_000);
    async function curl(path: string, method = 'GET', body?: unknown): Promise<string> {
      const argv = ['curl', '-sS', '-f', '-X', method, '-u', `admin:${PASSWORD}`];
      if (body !== undefined) argv.push('-H', 'content-type: application/json', '-d', JSON.stringify(body));
      const r = await inClient([...argv, `${base}${path}`]);
      assert.equal(r.code, 0, `${method} ${path}: ${r.stderr}`);
      return r.stdout;
    }
    const state = async (): Promise<{ state: string; stateReason: string | null }> =>
      (
        JSON.parse(await curl(`/api/v1/nodes/${MAC}`)) as {
          node: { state: string; stateReason: string | null };
        }
      ).node;
    const toDeployed = async (): Promise<void> => {
      for (const to of ['deploying', 'deployed'])
        await curl(`/api/v1/nodes/${MAC}/transition`, 'POST', { to, reason: 'test' });
      assert.equal((await state()).state, 'deployed');
    };
    async function tftpGet(name: string): Promise<string> {
      const out = join(dir, `got-${Math.random().toString(16).slice(2)}`);
      // tftp-hpa reads `get a:b` as host a, file b: the MAC's colons need the host named first.
      const r = await inClient(['tftp', '-m', 'binary', SERVER, '-c', 'get', `${SERVER}:${name}`, out]);
      assert.equal(r.code, 0, `tftp get ${name}: ${r.stdout}${r.stderr}`);
      return readFileSync(out, 'utf8');
    }
    const diskSteps = async (): Promise<BootActivityEntry[]> =>
      (
        JSON.parse(await curl(`/api/v1/boot-activity?mac=${MAC}`)) as { entries: BootActivityEntry[] }
      ).entries.filter((e) => e.kind === 'disk-failed');

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'corral-diskfb-'));
      net = new TestNet('df');
      srv = net.addHost('srv', `${SERVER}/24`);
      client = net.addHost('c1', `${prefix}.50/24`, MAC);
      master = await startNsMaster({
        net,
        srv,
        dir,
        address: SERVER,
        config: { nodeImage: { autoBuild: false }, console: { allowInsecureBasicAuth: true } },
        args: ['--dhcp-range', `${prefix}.100-${prefix}.150`, '--http-port', '80'],
        env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
      });
      // The node, as its agent enlists it, then deployed (the API's transitions stand in for a deploy).
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
      await toDeployed();
    });

    after(async () => {
      await stopNsLab({ master, net, dir });
    });

    it('iPXE (BIOS): refused without a local answer; after one, the node is failed and gets the node environment', async () => {
      // A report out of the blue (no local answer before it) changes nothing and leaves for the next device.
      const refused = await inClient(['curl', '-sS', '-f', `${base}/boot/local-failed?mac=${MAC}`]);
      assert.match(refused.stdout, /^#!ipxe\n[^]*not taken[^]*\nexit 1\n$/);
      assert.equal((await state()).state, 'deployed');

      const local = await inClient(['curl', '-sS', '-f', `${base}/boot/ipxe?mac=${MAC}&platform=pcbios`]);
      assert.match(
        local.stdout,
        new RegExp(
          `^sanboot --no-describe --drive 0x80 \\|\\| chain --autofree ${base}/boot/local-failed\\?mac=${MAC}&platform=\\$\\{platform\\} \\|\\| exit 1$`,
          'm',
        ),
      );
      const t0 = Date.now();
      const back = await inClient([
        'curl',
        '-sS',
        '-f',
        `${base}/boot/local-failed?mac=${MAC}&platform=pcbios`,
      ]);
      assert.match(back.stdout, /^#!ipxe\n/);
      assert.doesNotMatch(back.stdout, /not taken|sanboot/);
      // No node environment in a fresh data directory: the node waits for it (and asks again), not the disk.
      assert.match(back.stdout, /node environment/);
      const n = await state();
      assert.equal(n.state, 'failed');
      assert.equal(n.stateReason, 'disk boot failed: iPXE sanboot found no bootable disk (BIOS)');
      const steps = await diskSteps();
      assert.deepEqual(
        steps.map((s) => [s.detail['via'], s.detail['accepted'], s.failed]),
        [
          ['sanboot', false, true],
          ['sanboot', true, true],
        ],
      );
      assert.equal(steps[1]?.detail['ip'], `${prefix}.50`);
      console.log(`# disk boot failure (iPXE report → failed + node environment): ${Date.now() - t0} ms`);
    });

    it('network GRUB (UEFI, over TFTP): the local config reports; the report is believed once', async () => {
      await toDeployed();
      const local = await tftpGet(`grub/node/${MAC}/0.cfg`);
      assert.match(local, /chainloader \/EFI\/BOOT\/BOOTX64\.EFI/);
      assert.match(local, new RegExp(`^configfile /grub/node/${MAC}/local-failed\\.cfg$`, 'm'));
      const back = await tftpGet(`grub/node/${MAC}/local-failed.cfg`);
      assert.doesNotMatch(back, /not taken|local-failed/);
      assert.match(back, /^# Corral: the node environment is not ready/);
      const n = await state();
      assert.equal(n.state, 'failed');
      assert.match(n.stateReason ?? '', /^disk boot failed: network GRUB found no bootable/);
      // The same local answer cannot be reported twice (the node is failed now anyway).
      await toDeployed();
      const again = await tftpGet(`grub/node/${MAC}/local-failed.cfg`);
      assert.match(again, /not taken[^]*\nexit 1\n$/);
      assert.equal((await state()).state, 'deployed');
      assert.deepEqual(
        (await diskSteps()).slice(-2).map((s) => [s.detail['via'], s.detail['accepted']]),
        [
          ['grub', true],
          ['grub', false],
        ],
      );
    });

    it('iPXE (UEFI, exit 1): nothing can report; the node back on /boot/ipxe within the window is taken as failed', async () => {
      await toDeployed();
      // iPXE names its platform in the script URL (dhcp/pxe.ts bootScriptUrl): efi.
      const url = `${base}/boot/ipxe?mac=${MAC}&platform=efi`;
      const local = await inClient(['curl', '-sS', '-f', url]);
      assert.match(local.stdout, /^iseq \$\{platform\} efi && exit 1 \|\|$/m);
      // The firmware tried the disk, found nothing to boot and came back to the network: iPXE asks again.
      const t0 = Date.now();
      const back = await inClient(['curl', '-sS', '-f', url]);
      assert.doesNotMatch(back.stdout, /sanboot|booting from its local disk/);
      assert.match(back.stdout, /node environment/);
      const n = await state();
      assert.equal(n.state, 'failed');
      assert.match(
        n.stateReason ?? '',
        /^disk boot failed: network boot again within 90 s of a local-disk answer/,
      );
      assert.deepEqual(
        (await diskSteps()).slice(-1).map((s) => [s.detail['via'], s.detail['accepted'], s.detail['ip']]),
        [['returned', true, `${prefix}.50`]],
      );
      console.log(
        `# disk boot failure (iPXE UEFI: back within the window → failed + node environment): ${Date.now() - t0} ms`,
      );
    });

    it('iPXE (BIOS, platform=pcbios): sanboot reports a failure itself, so a node back within the window is left deployed', async () => {
      await toDeployed();
      const before = (await diskSteps()).length;
      const url = `${base}/boot/ipxe?mac=${MAC}&platform=pcbios`;
      const local = await inClient(['curl', '-sS', '-f', url]);
      assert.match(local.stdout, /^sanboot --no-describe --drive 0x80 \|\| chain/m);
      // Its OS rebooted it before any sign of the OS reached the master: a BIOS answer is no evidence.
      const back = await inClient(['curl', '-sS', '-f', url]);
      assert.match(back.stdout, /booting from its local disk/);
      assert.equal((await state()).state, 'deployed');
      assert.equal((await diskSteps()).length, before, 'no disk-failed step');
    });
  },
);
