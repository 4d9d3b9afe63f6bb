/**
 * A scriptable UDP peer for the DHCP integration tests, run inside a network namespace: sends the given
 * datagrams (hex) and prints every datagram it receives until the wait ends.
 *
 *   ip netns exec NS node dist/test/helpers/dhcp-probe.js --bind 0.0.0.0:68 --to 255.255.255.255:67 \
 *     --send HEX [--send HEX]... [--wait-ms 1500] [--count N]
 *
 * Prints `REPLY {"from":"A","port":P,"hex":"..."}` per datagram received, then `DONE`. Exits 0, or 2 on
 * bad arguments. It stands in for a relay agent (binding port 67) or a PXE client (68/4011) where no real
 * client can send the packet a test needs (a chosen giaddr, a malformed packet).
 */
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';

function hostPort(text: string | undefined, flag: string): { host: string; port: number } {
  const m = /^([\d.]+):(\d+)$/.exec(text ?? '');
  if (!m?.[1] || !m[2]) {
    console.error(`--${flag} wants ADDRESS:PORT`);
    process.exit(2);
  }
  return { host: m[1], port: Number(m[2]) };
}

const { values } = parseArgs({
  options: {
    bind: { type: 'string', default: '0.0.0.0:68' },
    to: { type: 'string' },
    send: { type: 'string', multiple: true, default: [] },
    'wait-ms': { type: 'string', default: '1500' },
    count: { type: 'string' },
  },
  strict: true,
});

const bind = hostPort(values.bind, 'bind');
const to = values.send.length > 0 ? hostPort(values.to, 'to') : null;
const waitMs = Number(values['wait-ms']);
const count = values.count === undefined ? Infinity : Number(values.count);
const socket = createSocket({ type: 'udp4', reuseAddr: true });
let received = 0;

const finish = (): void => {
  process.stdout.write('DONE\n');
  socket.close();
  process.exit(0);
};

socket.on('message', (buf, rinfo) => {
  process.stdout.write(
    `REPLY ${JSON.stringify({ from: rinfo.address, port: rinfo.port, hex: buf.toString('hex') })}\n`,
  );
  if (++received >= count) finish();
});
socket.on('error', (err) => {
  console.error(err.message);
  process.exit(1);
});
socket.bind(bind.port, bind.host, () => {
  socket.setBroadcast(true);
  const packets = values.send.map((hex) => Buffer.from(hex, 'hex'));
  const sendNext = (i: number): void => {
    const packet = packets[i];
    if (!to || !packet) return;
    socket.send(packet, to.port, to.host, (err) => {
      if (err) console.error(`send ${i}: ${err.message}`);
      sendNext(i + 1);
    });
  };
  sendNext(0);
  setTimeout(finish, waitMs);
});
