/**
 * Sends UDP datagrams with a hand-built IPv4 + UDP header from inside a namespace, so a test can use
 * sources no socket API will bind: source port 0 (legal on the wire, RFC 768 says only that the field is
 * optional and 0 when unused), or a broadcast/multicast source address. Node has no raw sockets, so this
 * runs python3's `socket.SOCK_RAW` with IPPROTO_RAW (which implies IP_HDRINCL, raw(7)); it needs root,
 * which the namespace tests have anyway.
 *
 * The UDP checksum is left 0 ("no checksum", RFC 768), which IPv4 receivers accept.
 */
import type { TestNet } from './netns.js';

const SCRIPT = String.raw`
import socket, struct, sys
src, dst, sport, dport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
def csum(b):
    if len(b) % 2: b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
sent = 0
for line in sys.stdin:
    line = line.strip()
    if not line: continue
    payload = bytes.fromhex(line)
    udp = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), sent & 0xffff, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    s.sendto(ip + udp, (dst, 0))
    sent += 1
print('SENT %d' % sent)
`;

export interface RawUdp {
  /** Source address written in the IP header (any, even one the host does not hold). */
  src: string;
  dst: string;
  sport: number;
  dport: number;
  payloads: Buffer[];
}

/** Sends every payload as its own datagram; resolves with the number sent (20 s bound). */
export function sendRawUdp(net: TestNet, ns: string, d: RawUdp): Promise<number> {
  const argv = ['python3', '-c', SCRIPT, d.src, d.dst, String(d.sport), String(d.dport)];
  const child = net.spawnIn(ns, argv);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdin?.end(d.payloads.map((p) => p.toString('hex')).join('\n') + '\n');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const m = /SENT (\d+)/.exec(stdout);
      if (code !== 0 || !m) reject(new Error(`raw UDP sender failed (${code}): ${stderr}`));
      else resolve(Number(m[1]));
    });
  });
}
