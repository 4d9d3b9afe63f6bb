/**
 * The TFTP starvation attack of issue 14 (finding 5), run inside the attacker's namespace: `--count`
 * read requests, each from its own socket (its own source port, so each is a new TID), each asking for
 * `timeout=255`, and never an ACK. Prints one JSON line with what came back per reply kind.
 *
 *   ip netns exec NS node dist/test/helpers/tftp-flood.js --to ADDR --file F --count 256 --wait-ms 1500
 */
import { createSocket, type Socket } from 'node:dgram';
import { parseArgs } from 'node:util';
import { decodePacket, encodePacket } from '../../master/tftp/codec.js';

const { values } = parseArgs({
  options: {
    to: { type: 'string' },
    port: { type: 'string', default: '69' },
    file: { type: 'string', default: 'undionly.kpxe' },
    count: { type: 'string', default: '256' },
    'wait-ms': { type: 'string', default: '1500' },
  },
  strict: true,
});
const count = Math.min(Number(values.count), 4096);
const rrq = encodePacket({
  op: 'RRQ',
  filename: values.file,
  mode: 'octet',
  options: new Map([
    ['timeout', '255'],
    ['tsize', '0'],
  ]),
});
const replies = { oack: 0, busy: 0, otherError: 0, data: 0, none: 0 };
const heard = new Set<number>();
const sockets: Socket[] = [];
let bound = 0;
for (let i = 0; i < count; i++) {
  const socket = createSocket('udp4');
  sockets.push(socket);
  socket.on('message', (msg) => {
    if (heard.has(i)) return; // retransmissions are not new answers
    heard.add(i);
    const d = decodePacket(msg);
    if (!d.ok) return;
    if (d.packet.op === 'OACK') replies.oack++;
    else if (d.packet.op === 'DATA') replies.data++;
    else if (d.packet.op === 'ERROR' && d.packet.message === 'Server busy') replies.busy++;
    else replies.otherError++;
  });
  socket.bind(0, () => {
    socket.send(rrq, Number(values.port), values.to);
    if (++bound === count) setTimeout(finish, Number(values['wait-ms']));
  });
}
function finish(): void {
  replies.none = count - heard.size;
  process.stdout.write(`${JSON.stringify({ sent: count, ...replies })}\n`);
  for (const s of sockets) s.close();
}
