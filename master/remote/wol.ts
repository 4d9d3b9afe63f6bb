/**
 * Wake-on-LAN: the AMD "Magic Packet" (white paper 20213): six 0xFF bytes, then the target MAC sixteen
 * times, sent as a UDP broadcast (port 9, "discard") on the node's segment. Power on only: a sleeping NIC
 * cannot be asked anything, so the state is unknown.
 */
import { createSocket } from 'node:dgram';
import { CorralError } from '../util/errors.js';
import type { PowerDriver } from './power-driver.js';

/** 6 + 16 × 6 = 102 bytes. */
export function magicPacket(mac: string): Buffer {
  const hex = mac.replace(/[:-]/g, '');
  if (!/^[0-9a-fA-F]{12}$/.test(hex)) throw new CorralError('MAC_INVALID', `not a MAC address: '${mac}'`);
  const macBytes = Buffer.from(hex, 'hex');
  const packet = Buffer.alloc(6 + 16 * 6, 0xff);
  for (let i = 0; i < 16; i++) macBytes.copy(packet, 6 + i * 6);
  return packet;
}

/** The directed broadcast address of an IPv4 CIDR, e.g. 10.0.0.1/24 → 10.0.0.255. */
export function broadcastOf(cidr: string): string {
  const [ip, bitsText] = cidr.split('/');
  const bits = Number(bitsText ?? 24);
  const n = (ip ?? '').split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const host = bits >= 32 ? 0 : 2 ** (32 - bits) - 1;
  const b = (Math.floor(n / (host + 1)) * (host + 1) + host) >>> 0;
  return [24, 16, 8, 0].map((s) => Math.floor(b / 2 ** s) % 256).join('.');
}

export async function sendMagicPacket(mac: string, broadcast: string, port: number): Promise<void> {
  const packet = magicPacket(mac);
  const socket = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, () => {
        socket.setBroadcast(true);
        socket.send(packet, port, broadcast, (err) => (err ? reject(err) : resolve()));
      });
    });
  } catch (err) {
    throw new CorralError(
      'POWER_FAILED',
      `Wake-on-LAN to ${broadcast}:${port} failed: ${(err as Error).message}`,
    );
  } finally {
    socket.close();
  }
}

export function wolDriver(target: { mac: string; broadcast: string; port: number }): PowerDriver {
  return {
    kind: 'wol',
    actions: ['on'],
    status: () => Promise.resolve('unknown'),
    async act(action) {
      if (action !== 'on') {
        throw new CorralError('POWER_UNSUPPORTED', `Wake-on-LAN can only power a node on, not '${action}'`);
      }
      await sendMagicPacket(target.mac, target.broadcast, target.port);
      return {
        message: `Wake-on-LAN magic packet for ${target.mac} sent to ${target.broadcast}:${target.port}`,
        manual: false,
      };
    },
  };
}
