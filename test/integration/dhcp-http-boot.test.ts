/**
 * UEFI HTTP boot over DHCPv4 against real peers in namespaces this test creates: ISC dhclient speaking
 * as an HTTPClient (option 60 "HTTPClient:Arch:00016…", option 93 = 16, as OVMF's HttpBootDxe sends)
 * in server mode; a scripted client in proxy mode (dhclient ignores an offer without an address); and
 * curl fetching the offered URL from the master's /boot/loader route. The Secure Boot chain's ISO
 * (boot/http-boot-iso.ts) built from Debian's shim and signed GRUB, fetched by curl and read back by
 * xorriso and mtools.
 */
import { requirePeers, requireRoot } from '../helpers/peers.js';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type Server } from 'node:http';
import express from 'express';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
import { TestNet, waitFor, type Host } from '../helpers/netns.js';
import { runIn, startServe, type ServeProcess } from '../helpers/dhcp-harness.js';
import {
  DHCPDISCOVER,
  DHCPOFFER,
  decodePacket,
  emptyOptions,
  encodePacket,
} from '../../master/dhcp/codec.js';
import { createLoaderRouter } from '../../master/dhcp/loader-route.js';
import { silentLogger } from '../../master/util/logger.js';
import { fillCfgSlot, HttpBootIsos, sendIso, HTTP_BOOT_ISO_TYPE } from '../../master/boot/http-boot-iso.js';
import { SECURE_BOOT_DEFAULTS } from '../../master/boot/config.js';

const PROBE = fileURLToPath(new URL('../helpers/dhcp-probe.js', import.meta.url));
const PREFIX = '10.86.0';
const SERVER = `${PREFIX}.1`;
const HTTP = `http://${SERVER}:8080`;

describe('UEFI HTTP boot (DHCPv4): real clients in network namespaces', { timeout: 120_000 }, () => {
  if (process.getuid?.() !== 0) {
    it('needs root for network namespaces', () => requireRoot());
    return;
  }
  let net: TestNet;
  let srv: Host;
  let dir: string;
  let serve: ServeProcess | undefined;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-httpboot-'));
    net = new TestNet('hb');
    srv = net.addHost('srv', `${SERVER}/24`);
  });
  after(async () => {
    await serve?.stop().catch(() => undefined);
    await net?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('server mode: dhclient as HTTPClient arch 16 gets an address, the loader URL and "HTTPClient" echoed', async () => {
    serve = await startServe(net, srv.ns, dir, [
      '--db',
      join(dir, 'server.db'),
      '--address',
      SERVER,
      '--range',
      `${PREFIX}.100-${PREFIX}.120`,
      '--subnet',
      `${PREFIX}.0/24`,
      '--http',
      HTTP,
    ]);
    const c = net.addHost('c1', null, '52:54:00:86:00:01');
    const conf = join(dir, 'dhclient.conf');
    const leaseFile = join(dir, 'dhclient.leases');
    writeFileSync(
      conf,
      [
        'option client-arch code 93 = unsigned integer 16;',
        'send vendor-class-identifier "HTTPClient:Arch:00016:UNDI:003001";',
        'send client-arch 16;',
        'also request vendor-class-identifier;',
        '',
      ].join('\n'),
    );
    const client = net.spawnIn(c.ns, [
      'dhclient',
      '-4',
      '-d',
      '-1',
      '-v',
      '-cf',
      conf,
      '-lf',
      leaseFile,
      '-pf',
      join(dir, 'dhclient.pid'),
      // No script: dhclient-script would write the host's /etc/resolv.conf.
      '-sf',
      '/bin/true',
      c.ifname,
    ]);
    let log = '';
    client.stderr?.on('data', (b: Buffer) => (log += b.toString()));
    const lease = await waitFor(
      'dhclient lease',
      () => {
        const text = existsSync(leaseFile) ? readFileSync(leaseFile, 'utf8') : '';
        return text.includes('fixed-address') ? text : undefined;
      },
      30_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${log.slice(-1500)}`);
    });
    client.kill('SIGTERM');
    assert.match(lease, /fixed-address 10\.86\.0\.1\d\d;/);
    assert.match(lease, new RegExp(`filename "${HTTP}/boot/loader/ipxe.efi";`));
    assert.match(lease, /option vendor-class-identifier "HTTPClient";/);
    await serve.stop();
    serve = undefined;
  });

  it('proxy mode: an HTTPClient DISCOVER gets a no-address offer with the URL and "HTTPClient"', async () => {
    serve = await startServe(net, srv.ns, dir, [
      '--db',
      join(dir, 'proxy.db'),
      '--address',
      SERVER,
      '--proxy',
      '--http',
      HTTP,
    ]);
    const p = net.addHost('px', `${PREFIX}.4/24`, '52:54:00:86:00:02');
    const discover = encodePacket({
      op: 1,
      htype: 1,
      hlen: 6,
      hops: 0,
      xid: 0x86000002,
      secs: 0,
      flags: 0x8000,
      ciaddr: '0.0.0.0',
      yiaddr: '0.0.0.0',
      siaddr: '0.0.0.0',
      giaddr: '0.0.0.0',
      chaddr: '52:54:00:86:00:02',
      sname: '',
      file: '',
      options: {
        ...emptyOptions(),
        messageType: DHCPDISCOVER,
        vendorClassId: 'HTTPClient:Arch:00016:UNDI:003001',
        clientArch: [16],
      },
    });
    const r = await runIn(
      net,
      p.ns,
      [
        process.execPath,
        PROBE,
        '--bind',
        '0.0.0.0:68',
        '--to',
        `${PREFIX}.255:67`,
        '--send',
        discover.toString('hex'),
        '--count',
        '1',
        '--wait-ms',
        '3000',
      ],
      15_000,
    );
    const line = r.stdout.split('\n').find((l) => l.startsWith('REPLY '));
    assert.ok(line, `no proxy offer: ${r.stdout}${r.stderr}`);
    const d = decodePacket(Buffer.from((JSON.parse(line.slice(6)) as { hex: string }).hex, 'hex'));
    assert.ok(d.ok);
    assert.equal(d.packet.options.messageType, DHCPOFFER);
    assert.equal(d.packet.yiaddr, '0.0.0.0');
    assert.equal(d.packet.options.vendorClassId, 'HTTPClient');
    assert.equal(d.packet.options.bootfileName, `${HTTP}/boot/loader/ipxe.efi`);
    await serve.stop();
    serve = undefined;
  });

  it('the loader route serves the configured file (curl), and nothing else', async () => {
    const files = mkdtempSync(join(tmpdir(), 'corral-loader-'));
    writeFileSync(join(files, 'ipxe.efi'), Buffer.from('MZ-not-really-efi'));
    writeFileSync(join(files, 'secret'), 'no');
    const app = express().use(
      '/boot/loader',
      createLoaderRouter({ dir: files, names: ['ipxe.efi'], logger: silentLogger() }),
    );
    const server: Server = createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      // curl runs asynchronously: the server answering it lives in this process's event loop.
      const curl = async (args: string[]): Promise<string> =>
        (await execFileAsync('curl', ['-s', ...args], { encoding: 'utf8', timeout: 10_000 })).stdout;
      const get = async (path: string): Promise<{ code: string; body: string }> => {
        const lines = (
          await curl(['-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:${port}${path}`])
        ).split('\n');
        return { code: lines.pop() ?? '', body: lines.join('\n') };
      };
      assert.deepEqual(await get('/boot/loader/ipxe.efi'), { code: '200', body: 'MZ-not-really-efi' });
      assert.equal((await get('/boot/loader/secret')).code, '404');
      assert.equal((await get('/boot/loader/..%2Fsecret')).code, '404');
      assert.equal(await curl(['-r', '0-1', `http://127.0.0.1:${port}/boot/loader/ipxe.efi`]), 'MZ');
    } finally {
      await new Promise((r) => server.close(r));
      rmSync(files, { recursive: true, force: true });
    }
  });

  it('the Secure Boot ISO: built once, streamed with the node grub.cfg; curl fetches it, xorriso and mtools read it back', async () => {
    requirePeers('curl', 'xorriso', 'mcopy', 'mdir', 'mkfs.vfat');
    const files = mkdtempSync(join(tmpdir(), 'corral-iso-'));
    const inputs = {
      shim: SECURE_BOOT_DEFAULTS.shimFile,
      grub: SECURE_BOOT_DEFAULTS.grubFile,
      kernel: join(files, 'vmlinuz'),
      initrd: join(files, 'initrd.img'),
    };
    writeFileSync(inputs.kernel, Buffer.alloc(300_000, 'k'));
    writeFileSync(inputs.initrd, Buffer.alloc(700_000, 'i'));
    const isos = new HttpBootIsos(join(files, 'http-boot'), silentLogger());
    const cfgFor = (mac: string): string => `set timeout=0\necho "Corral: ${mac}"\nlinux /node/vmlinuz\n`;
    const app = express().get('/boot/http/:mac/corral.iso', (req, res, next) => {
      isos
        .base(inputs)
        .then((iso) => sendIso(req, res, iso, fillCfgSlot(cfgFor(String(req.params['mac'])))))
        .catch(next);
    });
    const server: Server = createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = (mac: string): string =>
      `http://127.0.0.1:${(server.address() as { port: number }).port}/boot/http/${mac}/corral.iso`;
    const run = async (cmd: string, args: string[]): Promise<string> =>
      (await execFileAsync(cmd, args, { encoding: 'utf8', timeout: 30_000 })).stdout;
    try {
      // HEAD first, as EDK2's HttpBootDxe asks: the type that makes it a RAM-disk CD, and the length.
      const head = await run('curl', ['-sfI', url('52:54:00:86:0a:01')]);
      assert.match(head, new RegExp(`content-type: ${HTTP_BOOT_ISO_TYPE.replace('.', '\\.')}`, 'i'));
      const built = readdirSync(join(files, 'http-boot')).filter((f) => f.endsWith('.iso'));
      assert.equal(built.length, 1, 'one base ISO');
      const size = statSync(join(files, 'http-boot', built[0]!)).size;
      assert.match(head, new RegExp(`content-length: ${size}\\r`, 'i'));
      for (const mac of ['52:54:00:86:0a:01', '52:54:00:86:0a:02']) {
        const got = join(files, `${mac.replaceAll(':', '')}.iso`);
        await run('curl', ['-sf', '-o', got, url(mac)]);
        assert.equal(statSync(got).size, size);
        const out = join(files, `x-${mac.replaceAll(':', '')}`);
        await run('xorriso', [
          ...['-osirrox', 'on', '-indev', got],
          ...['-extract', '/grub/grub.cfg', `${out}.cfg`],
          ...['-extract', '/node/vmlinuz', `${out}.vmlinuz`],
          ...['-extract', '/efiboot.img', `${out}.efi.img`],
        ]);
        // The node's own config in the slot (padded with blank lines), the files beside it unchanged.
        assert.equal(readFileSync(`${out}.cfg`, 'utf8').trimEnd(), cfgFor(mac).trimEnd());
        assert.deepEqual(readFileSync(`${out}.vmlinuz`), readFileSync(inputs.kernel));
        // El Torito names the FAT image as the UEFI boot entry; in it, shim as BOOTX64.EFI, GRUB beside it.
        const torito = await run('xorriso', ['-indev', got, '-report_el_torito', 'plain']);
        assert.match(torito, /El Torito boot img :\s+1\s+UEFI/);
        const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
        const dir = (
          await execFileAsync('mdir', ['-b', '-i', `${out}.efi.img`, '::/EFI/BOOT'], {
            encoding: 'utf8',
            env,
          })
        ).stdout;
        assert.match(dir, /BOOTX64\.EFI/);
        assert.match(dir, /grubx64\.efi/i);
        await execFileAsync('mcopy', ['-i', `${out}.efi.img`, '::/EFI/BOOT/BOOTX64.EFI', `${out}.shim`], {
          env,
        });
        assert.deepEqual(readFileSync(`${out}.shim`), readFileSync(inputs.shim));
      }
      // Both nodes were served from the one ISO built for the first request.
      assert.deepEqual(
        readdirSync(join(files, 'http-boot')).filter((f) => f.endsWith('.iso')),
        built,
      );
    } finally {
      await new Promise((r) => server.close(r));
      rmSync(files, { recursive: true, force: true });
    }
  });
});
