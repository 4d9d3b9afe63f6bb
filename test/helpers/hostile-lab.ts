/**
 * A real `corral master` on a namespace segment, with the peers issue 14's tests need: an attacker host
 * (static address), a peer host (static address: HTTP and TFTP checks, proxyDHCP probes) and a DHCP
 * client host (no address: udhcpc). `serving()` asks the master over each protocol, with real clients,
 * whether it still answers; the tests call it before, between and after the hostile traffic.
 *
 * Needs root, iproute2, udhcpc, tftp (tftp-hpa), curl and python3; it fails, never skips, when they are missing.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasCommand, TestNet, type Host } from './netns.js';
import { startMasterProcess, type MasterProcess } from './master-process.js';
import { runIn } from './dhcp-harness.js';
import {
  DHCPACK,
  DHCPDISCOVER,
  DHCPOFFER,
  DHCPREQUEST,
  FLAG_BROADCAST,
  decodePacket,
  emptyOptions,
  encodePacket,
  type DhcpOptions,
  type DhcpPacket,
} from '../../master/dhcp/codec.js';

const PROBE = fileURLToPath(new URL('./dhcp-probe.js', import.meta.url));

export function requireHostileLabTools(): void {
  const missing = ['ip', 'udhcpc', 'tftp', 'curl', 'python3'].filter((c) => !hasCommand(c));
  if (missing.length > 0) {
    throw new Error(
      `missing ${missing.join(', ')}: apt-get install -y iproute2 udhcpc tftp-hpa curl python3`,
    );
  }
  if (process.getuid?.() !== 0) throw new Error('this test creates network namespaces and must run as root');
}

export interface Health {
  status: string;
  subsystems?: Record<string, { faults: number; lastFault: unknown; dropped?: number }>;
  tftp?: { active: number; refused: number; failed: number; completed: number } | false;
  dhcpStats?: Record<string, number>;
  [key: string]: unknown;
}

export interface Serving {
  dhcp: string;
  tftpMs: number;
  http: Health;
}

export interface HostileLab {
  net: TestNet;
  dir: string;
  prefix: string;
  master: Host;
  attacker: Host;
  peer: Host;
  proc: MasterProcess;
  mode: 'server' | 'proxy';
  alive(): boolean;
  health(): Promise<Health>;
  /** DHCP (udhcpc, or proxyDHCP probes on 67 and 4011), TFTP (tftp-hpa) and HTTP all answer; throws if not. */
  serving(): Promise<Serving>;
  /** A TFTP read by tftp-hpa from `host`; resolves with the time it took and the exit code. */
  tftpGet(
    host: Host,
    file: string,
    timeoutMs?: number,
  ): Promise<{ code: number | null; ms: number; out: string }>;
  close(): Promise<void>;
}

let labCount = 0;

function request(
  type: number,
  mac: string,
  options: Partial<DhcpOptions>,
  fields: Partial<DhcpPacket> = {},
): Buffer {
  return encodePacket({
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: Math.floor(Math.random() * 0xffffffff),
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: mac,
    sname: '',
    file: '',
    ...fields,
    options: { ...emptyOptions(), messageType: type, ...options },
  });
}

/** Real PXE requests (as a PXE ROM sends them), for the proxyDHCP checks and the fuzz test's seeds. */
export function pxeDiscover(mac: string): Buffer {
  return request(
    DHCPDISCOVER,
    mac,
    {
      vendorClassId: 'PXEClient:Arch:00000:UNDI:002001',
      clientArch: [0],
      clientUuid: Buffer.from('00' + 'ab'.repeat(16), 'hex'),
      paramRequestList: [1, 3, 43, 60, 66, 67],
    },
    { flags: FLAG_BROADCAST },
  );
}

export function pxeBootRequest(mac: string, ciaddr: string): Buffer {
  return request(
    DHCPREQUEST,
    mac,
    { vendorClassId: 'PXEClient:Arch:00007:UNDI:003016', clientArch: [7] },
    { ciaddr },
  );
}

export async function startHostileLab(opts: {
  mode: 'server' | 'proxy';
  tftp?: Record<string, unknown>;
}): Promise<HostileLab> {
  requireHostileLabTools();
  const n = ++labCount;
  const net = new TestNet('uh');
  const dir = mkdtempSync(join(tmpdir(), 'corral-hostile-'));
  // A per-run /24 so parallel runs on one host cannot meet.
  const prefix = `10.${90 + n}.${1 + (parseInt(net.id, 16) % 250)}`;
  let proc: MasterProcess | undefined;
  try {
    const master = net.addHost('m', `${prefix}.1/24`);
    const attacker = net.addHost('a', `${prefix}.66/24`);
    const peer = net.addHost('p', `${prefix}.20/24`);
    const client = opts.mode === 'server' ? net.addHost('c', null, '52:54:00:14:00:01') : null;
    const configFile = join(dir, 'corral.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        dataDir: join(dir, 'data'),
        address: master.address,
        http: { port: 80 },
        dhcp:
          opts.mode === 'server'
            ? { mode: 'server', range: `${prefix}.100-${prefix}.150`, leaseSeconds: 600 }
            : { mode: 'proxy' },
        tftp: { port: 69, ...opts.tftp },
        console: { https: false },
        monitor: { enabled: false },
        lb: { enabled: false },
      }),
    );
    proc = await startMasterProcess({
      args: ['--config', configFile],
      netns: master.ns,
      host: master.address,
      env: { CORRAL_ADMIN_PASSWORD: 'hostile-lab-pw', CORRAL_LOG_LEVEL: 'info' },
      timeoutMs: 45_000,
      logFile: join(dir, 'master.log'),
    });
    const p = proc;
    const script = join(dir, 'udhcpc.sh');
    writeFileSync(
      script,
      '#!/bin/sh\n[ "$1" = bound ] && echo "BOUND ip=$ip boot_file=$boot_file"\nexit 0\n',
    );
    chmodSync(script, 0o755);

    const probe = async (bind: string, to: string, packet: Buffer): Promise<DhcpPacket[]> => {
      const argv = [process.execPath, PROBE, '--bind', bind, '--to', to, '--send', packet.toString('hex')];
      const r = await runIn(net, peer.ns, [...argv, '--wait-ms', '3000', '--count', '1'], 15_000);
      assert.equal(r.code, 0, `dhcp-probe: ${r.stderr}`);
      return r.stdout
        .split('\n')
        .filter((l) => l.startsWith('REPLY '))
        .map((l) => decodePacket(Buffer.from((JSON.parse(l.slice(6)) as { hex: string }).hex, 'hex')))
        .flatMap((d) => (d.ok ? [d.packet] : []));
    };

    const lab: HostileLab = {
      net,
      dir,
      prefix,
      master,
      attacker,
      peer,
      proc: p,
      mode: opts.mode,
      alive: () => p.child.exitCode === null && p.child.signalCode === null,
      async health() {
        const r = await runIn(
          net,
          peer.ns,
          ['curl', '-sS', '-m', '5', `http://${master.address}/api/v1/health`],
          10_000,
        );
        assert.equal(r.code, 0, `GET /api/v1/health failed: ${r.stderr}`);
        return JSON.parse(r.stdout) as Health;
      },
      async tftpGet(host, file, timeoutMs = 20_000) {
        const local = join(dir, `get-${host.ns}-${Date.now()}`);
        const t = Date.now();
        const r = await runIn(
          net,
          host.ns,
          ['tftp', '-m', 'binary', master.address, '-c', 'get', file, local],
          timeoutMs,
        );
        rmSync(local, { force: true });
        return { code: r.code, ms: Date.now() - t, out: r.stdout + r.stderr };
      },
      async serving() {
        assert.ok(lab.alive(), `the master process exited:\n${p.logs().slice(-4000)}`);
        let dhcp: string;
        if (client) {
          const r = await runIn(
            net,
            client.ns,
            ['udhcpc', '-f', '-q', '-n', '-t', '4', '-T', '1', '-i', client.ifname, '-s', script],
            20_000,
          );
          const bound = /BOUND ip=(\S+) boot_file=(\S*)/.exec(r.stdout);
          assert.ok(bound, `udhcpc got no lease: ${r.stdout}${r.stderr}`);
          dhcp = `udhcpc lease ${bound[1]} boot file ${bound[2]}`;
        } else {
          const offers = await probe('0.0.0.0:68', `${prefix}.255:67`, pxeDiscover('52:54:00:14:00:02'));
          const offer = offers.find((o) => o.options.messageType === DHCPOFFER);
          assert.ok(offer, 'no proxyDHCP offer on port 67');
          const acks = await probe(
            `${peer.address}:4011`,
            `${master.address}:4011`,
            pxeBootRequest('52:54:00:14:00:02', peer.address),
          );
          const ack = acks.find((a) => a.options.messageType === DHCPACK);
          assert.ok(ack, 'no proxyDHCP ACK on port 4011');
          dhcp = `proxyDHCP offer ${offer.file} on 67, ACK ${ack.file} on 4011`;
        }
        const tftp = await lab.tftpGet(peer, 'undionly.kpxe');
        assert.equal(tftp.code, 0, `tftp-hpa could not fetch undionly.kpxe: ${tftp.out}`);
        const http = await lab.health();
        assert.equal(http.status, 'ok');
        return { dhcp, tftpMs: tftp.ms, http };
      },
      async close() {
        await p.stop('SIGTERM', 10_000).catch(() => p.child.kill('SIGKILL'));
        await net.destroy();
        if (!process.env['KEEP_LAB']) rmSync(dir, { recursive: true, force: true });
      },
    };
    return lab;
  } catch (err) {
    if (proc) proc.child.kill('SIGKILL');
    await net.destroy();
    const log = (() => {
      try {
        return readFileSync(join(dir, 'master.log'), 'utf8').slice(-3000);
      } catch {
        return '';
      }
    })();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`hostile lab did not start: ${(err as Error).message}\n${log}`);
  }
}
