/**
 * The boot-storm client (test/bench/boot-storm-bench.ts): N simulated PXE machines in ONE network
 * namespace, each with its own MAC (DHCP chaddr) and, once leased, its own IPv4 address, doing what a
 * BIOS PXE ROM, iPXE and Corral's node agent do, with their retry timing:
 *
 *   1. DHCP DORA as the PXE ROM (vendor class PXEClient:Arch:00000, arch 0): DHCPDISCOVER retransmitted
 *      after 4, 8, 16 and 32 s (the PXE 2.1 specification's schedule), broadcast flag set (RFC 2131
 *      section 4.1: a client that cannot receive unicast before it has an address sets it);
 *   2. TFTP of the loader the reply named (undionly.kpxe), RFC 2347/2348/2349 options blksize 1432 and tsize,
 *      with iPXE's retry timer (core/retry.c: 1/4 s minimum, doubled per expiry, given up once past 10 s);
 *   3. DHCP DORA again as iPXE (user class "iPXE", RFC 3004), retransmitting after 1, 2, 4 and 8 s;
 *   4. the iPXE script over HTTP (keep-alive, one connection per machine, as iPXE pools it), then the
 *      script's `kernel` and `initrd` URLs; on a failed fetch the script's own `:failed` path (sleep, chain
 *      the retry URL) is followed, at most RETRY_ROUNDS times;
 *   5. POST /api/v1/enlist with the agent's body, with the agent's backoff (node-images/agent/corral-agent:
 *      2 s doubling, capped at 30 s, 20 tries, 20 s per try) — skipped with --no-enlist (the reference).
 *
 * Why one namespace with many addresses rather than a namespace (or VM) per machine: 1000 namespaces and
 * veths cost the host more than the storm itself, and the servers cannot tell the difference — each
 * machine has its own chaddr, its own lease and its own source address (a /32 added to the namespace's
 * interface as soon as the DHCPACK arrives, batched through `ip -batch`). The DHCP messages leave from
 * the namespace's base address rather than 0.0.0.0 (a socket cannot send from an address it does not
 * have); servers decide where to answer from giaddr, ciaddr and the broadcast flag, not the IP source
 * (RFC 2131 section 4.1), so their replies are the same.
 *
 *   ip netns exec NS node dist/test/helpers/storm-client.js --n 250 --iface h1 --mac-base 52:54:01
 *       [--spread-ms 1000] [--deadline-s 900] [--no-enlist] [--first 0 --total 250]
 *
 * --first and --total split one storm over several client processes (the bench runs one per 250
 * machines: one Node process for 1000 machines would saturate its core and delay its own timers): this
 * process simulates machines first .. first+n-1 of total, with their MACs and power-on offsets. Every
 * process binds port 68 with SO_REUSEADDR; the servers' replies are broadcast (the flag is set), so each
 * process hears all of them and keeps those with its own xids.
 * Prints one JSON document (StormReport) on stdout.
 */
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  BOOTREQUEST,
  DHCPACK,
  DHCPDISCOVER,
  DHCPNAK,
  DHCPOFFER,
  DHCPREQUEST,
  FLAG_BROADCAST,
  decodePacket as decodeDhcp,
  emptyOptions,
  encodePacket as encodeDhcp,
  type DhcpPacket,
} from '../../master/dhcp/codec.js';
import { decodePacket as decodeTftp, encodePacket as encodeTftp } from '../../master/tftp/codec.js';

import { STORM_STAGES } from './storm-proc.js';

export type Stage = (typeof STORM_STAGES)[number];

export interface MachineResult {
  mac: string;
  ip: string | null;
  ok: boolean;
  /** The stage that failed, and why. */
  failed?: { stage: Stage | 'deadline'; error: string };
  /** Milliseconds each completed stage took (retries included). */
  stages: Partial<Record<Stage, number>>;
  /** Milliseconds from the storm's start until this machine had its kernel and initrd. */
  bootedAtMs?: number;
  /** Milliseconds from the storm's start until this machine finished (enlisted, or booted without). */
  doneAtMs?: number;
  /** Retransmissions and retries per stage. */
  retries: Partial<Record<Stage, number>>;
  /** Payload bytes received (loader, script, kernel, initrd). */
  bytes: number;
  /**
   * The first script request split: ms until the TCP connection was up (SYN → SYN-ACK), and from then until
   * the response's first byte (the server's handling plus the queue ahead of it).
   */
  script?: { connectMs: number; firstByteMs: number };
}

/**
 * The storm client's own load: whether it, rather than the server, is the bottleneck. One process
 * simulates every machine, so a saturated client delays its own timers and reads, which would look like
 * a slow server.
 */
export interface ClientLoad {
  /** CPU (user + system) this process used over the storm, ms. */
  cpuMs: number;
  /** The largest share of one core used in any one-second window. */
  peakCoreShare: number;
  /** Seconds (windows of one second) in which it used more than 90 % of a core. */
  saturatedSeconds: number;
  /** Event-loop delay (perf_hooks.monitorEventLoopDelay, 20 ms timer, beyond it): p50, p99, max in ms. */
  loopDelayMs: { p50: number; p99: number; max: number };
}

export interface StormReport {
  n: number;
  enlist: boolean;
  wallMs: number;
  machines: MachineResult[];
  client: ClientLoad;
}

/** PXE 2.1: DHCPDISCOVER timeouts of 4, 8, 16 and 32 s. */
const PXE_DHCP_TIMEOUTS_MS = [4000, 8000, 16000, 32000];
/** iPXE's DHCP retry timer: 1 s, doubling, failed once past its 10 s maximum. */
const IPXE_DHCP_TIMEOUTS_MS = [1000, 2000, 4000, 8000];
/** iPXE core/retry.c: DEFAULT_MIN_TIMEOUT (1/4 s), doubled per expiry; fails once above 10 s. */
const TFTP_MIN_TIMEOUT_MS = 250;
const TFTP_MAX_TIMEOUT_MS = 10_000;
/** iPXE's TFTP blksize (TFTP_MAX_BLKSIZE = 1432 in net/udp/tftp.c). */
const TFTP_BLKSIZE = 1432;
/** A stalled HTTP transfer (no byte for this long) fails, as iPXE's TCP gives up on a silent peer. */
const HTTP_IDLE_MS = 30_000;
/** How often the script's `:failed` path (sleep, chain the retry URL) is followed before giving up. */
const RETRY_ROUNDS = 5;
/** The agent's enlist loop (node-images/agent/corral-agent: POST_TRIES, MAX_BACKOFF, HTTP_TIMEOUT). */
const AGENT_POST_TRIES = 20;
const AGENT_MAX_BACKOFF_S = 30;
const AGENT_HTTP_TIMEOUT_MS = 20_000;

class StageError extends Error {
  constructor(
    readonly stage: Stage,
    message: string,
  ) {
    super(message);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Adds leased addresses to the interface, many per `ip -batch` run (one `ip` per lease would cost more). */
class AddressBatcher {
  private queue: { ip: string; done: () => void; fail: (e: Error) => void }[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly iface: string) {}

  add(ip: string): Promise<void> {
    return new Promise((done, fail) => {
      this.queue.push({ ip, done, fail });
      this.timer ??= setTimeout(() => this.flush(), 20);
    });
  }

  private flush(): void {
    this.timer = null;
    const batch = this.queue;
    this.queue = [];
    // noprefixroute: the /16 route of the base address already covers the master.
    const input = batch.map((b) => `addr replace ${b.ip}/32 dev ${this.iface} noprefixroute\n`).join('');
    const child = spawn('ip', ['-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      for (const b of batch) {
        if (code === 0) b.done();
        else b.fail(new Error(`ip -batch exited ${code}: ${err.trim()}`));
      }
    });
    child.stdin.end(input);
  }
}

/** One UDP socket on port 68 for every machine's DHCP; replies are matched by xid and chaddr. */
class DhcpPort {
  private readonly waiters = new Map<number, (p: DhcpPacket) => void>();

  private constructor(private readonly socket: Socket) {
    socket.on('message', (msg) => {
      const r = decodeDhcp(msg);
      if (!r.ok) return;
      this.waiters.get(r.packet.xid)?.(r.packet);
    });
  }

  static async open(): Promise<DhcpPort> {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(68, '0.0.0.0', () => resolve());
    });
    socket.setBroadcast(true);
    socket.setRecvBufferSize(8 << 20);
    return new DhcpPort(socket);
  }

  /**
   * Sends `packet` to 255.255.255.255:67 and waits for a reply of one of `types` with its xid and chaddr,
   * retransmitting per `timeoutsMs`; resolves null when every timeout passed unanswered.
   */
  async exchange(
    packet: DhcpPacket,
    types: readonly number[],
    timeoutsMs: readonly number[],
    onRetransmit: () => void,
  ): Promise<DhcpPacket | null> {
    const bytes = encodeDhcp(packet);
    try {
      for (const [i, timeout] of timeoutsMs.entries()) {
        if (i > 0) onRetransmit();
        const reply = await new Promise<DhcpPacket | null>((resolve) => {
          const t = setTimeout(() => resolve(null), timeout);
          this.waiters.set(packet.xid, (p) => {
            if (p.chaddr !== packet.chaddr || !types.includes(p.options.messageType ?? 0)) return;
            clearTimeout(t);
            resolve(p);
          });
          this.socket.send(bytes, 67, '255.255.255.255');
        });
        if (reply) return reply;
      }
      return null;
    } finally {
      this.waiters.delete(packet.xid);
    }
  }

  close(): void {
    this.socket.close();
  }
}

function dhcpPacket(mac: string, xid: number, type: number, ipxe: boolean): DhcpPacket {
  const options = emptyOptions();
  options.messageType = type;
  options.maxMessageSize = 1472;
  options.vendorClassId = 'PXEClient:Arch:00000:UNDI:002001';
  options.clientArch = [0];
  options.clientNdi = { type: 1, major: 2, minor: 1 };
  options.paramRequestList = [1, 3, 6, 12, 15, 17, 43, 54, 60, 66, 67, 128, 129, 130, 131, 175, 203];
  if (ipxe) options.userClass = ['iPXE'];
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid,
    secs: 0,
    flags: FLAG_BROADCAST,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: mac,
    sname: '',
    file: '',
    options,
  };
}

/** DHCPDISCOVER → DHCPOFFER → DHCPREQUEST → DHCPACK (RFC 2131 section 3.1); a DHCPNAK starts over. */
async function dora(
  port: DhcpPort,
  mac: string,
  ipxe: boolean,
  stage: Stage,
  retry: () => void,
): Promise<DhcpPacket> {
  const timeouts = ipxe ? IPXE_DHCP_TIMEOUTS_MS : PXE_DHCP_TIMEOUTS_MS;
  for (let attempt = 0; attempt < 3; attempt++) {
    const xid = (Math.random() * 2 ** 32) >>> 0;
    const offer = await port.exchange(dhcpPacket(mac, xid, DHCPDISCOVER, ipxe), [DHCPOFFER], timeouts, retry);
    if (!offer) throw new StageError(stage, 'no DHCPOFFER');
    const req = dhcpPacket(mac, xid, DHCPREQUEST, ipxe);
    req.options.requestedIp = offer.yiaddr;
    if (offer.options.serverId) req.options.serverId = offer.options.serverId;
    const ack = await port.exchange(req, [DHCPACK, DHCPNAK], timeouts, retry);
    if (!ack) throw new StageError(stage, 'no DHCPACK');
    if (ack.options.messageType === DHCPACK) return ack;
    retry();
  }
  throw new StageError(stage, 'DHCPNAK three times');
}

/** Reads `file` by TFTP from `server` into nothing but a byte count; iPXE's timer and options. */
function tftpGet(localIp: string, server: string, file: string, retry: () => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    let blksize = 512;
    let expected = 1;
    let bytes = 0;
    let peerPort = 69;
    let last: Buffer = encodeTftp({
      op: 'RRQ',
      filename: file,
      mode: 'octet',
      options: new Map([
        ['tsize', '0'],
        ['blksize', String(TFTP_BLKSIZE)],
      ]),
    });
    let timeout = TFTP_MIN_TIMEOUT_MS;
    let timer: NodeJS.Timeout | null = null;
    const finish = (err: Error | null): void => {
      if (timer) clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(bytes);
    };
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timeout *= 2;
        if (timeout > TFTP_MAX_TIMEOUT_MS)
          return finish(new StageError('tftp', `timed out at block ${expected}`));
        retry();
        socket.send(last, peerPort, server);
        arm();
      }, timeout);
    };
    const sendAck = (block: number): void => {
      last = encodeTftp({ op: 'ACK', block: block & 0xffff });
      socket.send(last, peerPort, server);
    };
    socket.on('message', (msg, rinfo) => {
      if (rinfo.address !== server) return;
      const r = decodeTftp(msg);
      if (!r.ok) return;
      const p = r.packet;
      if (p.op === 'ERROR') return finish(new StageError('tftp', `ERROR ${p.code} ${p.message}`));
      if (p.op === 'OACK' && expected === 1 && bytes === 0) {
        peerPort = rinfo.port;
        blksize = Number(p.options.get('blksize') ?? '512');
        timeout = TFTP_MIN_TIMEOUT_MS;
        sendAck(0);
        arm();
        return;
      }
      if (p.op !== 'DATA') return;
      if (expected === 1) peerPort = rinfo.port;
      if (p.block === (expected & 0xffff)) {
        bytes += p.data.length;
        if (p.data.length < blksize) {
          // The last block: close only once its ACK has left, or the server never hears it and
          // retransmits the block until its own timeout.
          if (timer) clearTimeout(timer);
          last = encodeTftp({ op: 'ACK', block: p.block });
          socket.send(last, peerPort, server, () => finish(null));
          return;
        }
        sendAck(p.block);
        timeout = TFTP_MIN_TIMEOUT_MS;
        expected++;
        arm();
      } else if (p.block === ((expected - 1) & 0xffff)) {
        // Our ACK was lost: the server retransmitted the block we have; acknowledge it again.
        sendAck(p.block);
      }
    });
    socket.once('error', (e) => finish(new StageError('tftp', e.message)));
    socket.bind(0, localIp, () => {
      socket.setRecvBufferSize(1 << 20);
      socket.send(last, 69, server);
      arm();
    });
  });
}

interface HttpResult {
  status: number;
  body: Buffer | null;
  bytes: number;
  /** ms from the request's start until its socket was connected (0 on a reused keep-alive socket). */
  connectMs: number;
  /** ms from the request's start until the response's headers arrived. */
  headersMs: number;
}

/** One GET or POST; the body is kept only when `keep`; fails on a silent peer after HTTP_IDLE_MS. */
function request(
  url: string,
  opts: { agent: http.Agent | false; localAddress: string; keep: boolean; post?: Buffer; timeoutMs?: number },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let connectMs = 0;
    const req = http.request(
      url,
      {
        method: opts.post ? 'POST' : 'GET',
        agent: opts.agent,
        localAddress: opts.localAddress,
        headers: opts.post
          ? { 'content-type': 'application/json', 'content-length': opts.post.length }
          : { 'user-agent': 'iPXE/1.21.1' },
      },
      (res) => {
        const headersMs = performance.now() - start;
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (opts.keep) chunks.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: opts.keep ? Buffer.concat(chunks) : null,
            bytes,
            connectMs,
            headersMs,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('socket', (socket) => {
      if (socket.connecting) socket.once('connect', () => (connectMs = performance.now() - start));
    });
    req.setTimeout(opts.timeoutMs ?? HTTP_IDLE_MS, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(opts.post);
  });
}

/** The parts of an iPXE script this client acts on (templates/ipxe/discover.hbs has them all). */
function parseScript(text: string): {
  kernel?: string;
  initrd?: string;
  sleepS?: number;
  chain?: string;
} {
  const out: { kernel?: string; initrd?: string; sleepS?: number; chain?: string } = {};
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    const url = words.find((w) => /^https?:\/\//.test(w));
    if (words[0] === 'kernel' && url) out.kernel = url;
    else if (words[0] === 'initrd' && url) out.initrd = url;
    else if (words[0] === 'sleep' && words[1]) out.sleepS = Number(words[1]);
    else if (words[0] === 'chain' && url) out.chain = url;
  }
  return out;
}

/** What the agent sends (node-images/agent/corral-agent body_json): about 1 KiB, like a real node's. */
function agentBody(mac: string, i: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      mac,
      mode: 'discover',
      inventory: {
        cpu: { model: 'Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz', count: 32 },
        memoryBytes: 137_438_953_472,
        firmware: 'bios',
        disks: [
          {
            name: 'sda',
            sizeBytes: 960_197_124_096,
            serial: `S4EN${i}A0`,
            model: 'SAMSUNG MZ7LH960',
            rotational: false,
          },
          {
            name: 'sdb',
            sizeBytes: 960_197_124_096,
            serial: `S4EN${i}B0`,
            model: 'SAMSUNG MZ7LH960',
            rotational: false,
          },
        ],
        nics: [
          { name: 'eno1', mac, link: 'up', speedMbps: 1000 },
          { name: 'eno2', mac: null, link: 'down', speedMbps: null },
        ],
        dmi: { vendor: 'Supermicro', product: 'SYS-1029P-WTR', serial: `S${String(i).padStart(9, '0')}` },
      },
    }),
  );
}

async function machine(
  i: number,
  mac: string,
  t0: number,
  deps: { port: DhcpPort; addresses: AddressBatcher; enlist: boolean },
): Promise<MachineResult> {
  const result: MachineResult = { mac, ip: null, ok: false, stages: {}, retries: {}, bytes: 0 };
  const retry = (stage: Stage) => (): void => {
    result.retries[stage] = (result.retries[stage] ?? 0) + 1;
  };
  const timed = async <T>(stage: Stage, f: () => Promise<T>): Promise<T> => {
    const s = performance.now();
    try {
      return await f();
    } catch (e) {
      throw e instanceof StageError ? e : new StageError(stage, e instanceof Error ? e.message : String(e));
    } finally {
      result.stages[stage] = performance.now() - s;
    }
  };
  let agent: http.Agent | null = null;
  try {
    const ack = await timed('dhcp', () => dora(deps.port, mac, false, 'dhcp', retry('dhcp')));
    const ip = ack.yiaddr;
    result.ip = ip;
    await deps.addresses.add(ip);
    const tftpServer =
      ack.options.tftpServerName ?? (ack.siaddr !== '0.0.0.0' ? ack.siaddr : ack.options.serverId);
    const loader = ack.options.bootfileName ?? ack.file;
    if (!tftpServer || !loader) throw new StageError('dhcp', 'the DHCPACK named no boot file or server');
    result.bytes += await timed('tftp', () => tftpGet(ip, tftpServer, loader, retry('tftp')));
    const ipxeAck = await timed('ipxeDhcp', () => dora(deps.port, mac, true, 'ipxeDhcp', retry('ipxeDhcp')));
    let scriptUrl = ipxeAck.options.bootfileName ?? ipxeAck.file;
    if (!/^https?:\/\//.test(scriptUrl))
      throw new StageError('ipxeDhcp', `boot file ${scriptUrl} is not a URL`);
    // iPXE pools one keep-alive connection per server (net/tcp/httpconn.c).
    agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const a = agent;
    for (let round = 0; ; round++) {
      const script = await timed('script', async () => {
        const r = await request(scriptUrl, { agent: a, localAddress: ip, keep: true });
        result.script ??= { connectMs: r.connectMs, firstByteMs: r.headersMs - r.connectMs };
        if (r.status !== 200) throw new StageError('script', `HTTP ${r.status}`);
        result.bytes += r.bytes;
        return parseScript(r.body?.toString() ?? '');
      });
      const fetch = (stage: Stage, url: string | undefined): Promise<void> =>
        timed(stage, async () => {
          if (!url) throw new StageError(stage, 'the script has no URL for it');
          const r = await request(url, { agent: a, localAddress: ip, keep: false });
          if (r.status !== 200) throw new StageError(stage, `HTTP ${r.status}`);
          result.bytes += r.bytes;
        });
      try {
        await fetch('kernel', script.kernel);
        await fetch('initrd', script.initrd);
        break;
      } catch (e) {
        // The script's :failed path: sleep, then chain its retry URL (templates/ipxe/discover.hbs).
        if (round >= RETRY_ROUNDS || !script.chain) throw e;
        retry(e instanceof StageError ? e.stage : 'kernel')();
        await sleep((script.sleepS ?? 5) * 1000);
        scriptUrl = script.chain;
      }
    }
    result.bootedAtMs = performance.now() - t0;
    agent.destroy();
    agent = null;
    if (deps.enlist) {
      const origin = new URL(scriptUrl).origin;
      const body = agentBody(mac, i);
      await timed('enlist', async () => {
        let delay = 2;
        for (let attempt = 1; ; attempt++) {
          try {
            // busybox wget: a new connection per try, no keep-alive.
            const r = await request(`${origin}/api/v1/enlist`, {
              agent: false,
              localAddress: ip,
              keep: false,
              post: body,
              timeoutMs: AGENT_HTTP_TIMEOUT_MS,
            });
            if (r.status >= 200 && r.status < 300) return;
            if (attempt >= AGENT_POST_TRIES) throw new StageError('enlist', `HTTP ${r.status}`);
          } catch (e) {
            if (attempt >= AGENT_POST_TRIES) throw e;
          }
          retry('enlist')();
          await sleep(Math.min(delay, AGENT_MAX_BACKOFF_S) * 1000);
          delay *= 2;
        }
      });
    }
    result.ok = true;
    result.doneAtMs = performance.now() - t0;
  } catch (e) {
    const stage = e instanceof StageError ? e.stage : 'dhcp';
    result.failed = { stage, error: e instanceof Error ? e.message : String(e) };
  } finally {
    agent?.destroy();
  }
  return result;
}

/** `base` is the first three octets (an OUI); `i` fills the other three. */
function macOf(base: string, i: number): string {
  const hex = i.toString(16).padStart(6, '0');
  return `${base}:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
}

/** Samples this process's CPU every second and its event-loop delay until stop(). */
function watchLoad(): { stop(): ClientLoad } {
  const delay = monitorEventLoopDelay({ resolution: 20 });
  delay.enable();
  const first = process.cpuUsage();
  let prev = first;
  let prevAt = performance.now();
  let peak = 0;
  let saturated = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const u = process.cpuUsage(prev);
    const share = (u.user + u.system) / 1000 / (now - prevAt);
    peak = Math.max(peak, share);
    if (share > 0.9) saturated++;
    prev = process.cpuUsage();
    prevAt = now;
  }, 1000);
  return {
    stop() {
      clearInterval(timer);
      delay.disable();
      const u = process.cpuUsage(first);
      // The histogram counts the timer's own 20 ms: what is above it is the delay.
      const ms = (ns: number): number => Math.max(0, Math.round(ns / 1e5) / 10 - 20);
      return {
        cpuMs: Math.round((u.user + u.system) / 1000),
        peakCoreShare: Math.round(peak * 100) / 100,
        saturatedSeconds: saturated,
        loopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) },
      };
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      n: { type: 'string' },
      iface: { type: 'string' },
      'mac-base': { type: 'string', default: '52:54:01' },
      'spread-ms': { type: 'string', default: '1000' },
      'deadline-s': { type: 'string', default: '900' },
      'no-enlist': { type: 'boolean', default: false },
      first: { type: 'string', default: '0' },
      total: { type: 'string' },
    },
    strict: true,
  });
  const n = Number(values.n);
  const first = Number(values.first);
  const total = Number(values.total ?? n);
  if (!Number.isInteger(n) || n < 1 || !values.iface) throw new Error('usage: storm-client --n N --iface IF');
  const spread = Number(values['spread-ms']);
  const deadlineMs = Number(values['deadline-s']) * 1000;
  const port = await DhcpPort.open();
  const addresses = new AddressBatcher(values.iface);
  const load = watchLoad();
  const t0 = performance.now();
  const machines: MachineResult[] = [];
  const running = Array.from({ length: n }, async (_, i) => {
    // Machines power on over `spread` ms (a PDU or BMC powering a rack), uniformly.
    await sleep((spread * (first + i)) / total);
    machines[i] = await machine(first + i, macOf(values['mac-base'], first + i), t0, {
      port,
      addresses,
      enlist: !values['no-enlist'],
    });
  });
  let deadline: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(running),
    new Promise((r) => {
      deadline = setTimeout(r, deadlineMs);
    }),
  ]);
  clearTimeout(deadline);
  for (let i = 0; i < n; i++) {
    machines[i] ??= {
      mac: macOf(values['mac-base'], first + i),
      ip: null,
      ok: false,
      failed: { stage: 'deadline', error: `not done after ${deadlineMs / 1000} s` },
      stages: {},
      retries: {},
      bytes: 0,
    };
  }
  port.close();
  const report: StormReport = {
    n,
    enlist: !values['no-enlist'],
    wallMs: performance.now() - t0,
    machines,
    client: load.stop(),
  };
  process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(0));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
