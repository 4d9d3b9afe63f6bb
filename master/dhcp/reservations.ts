/**
 * Reservations in the config file are the source of truth for their MACs: written into the store when
 * DHCP starts serving (with HA, by the primary only, at promotion: a backup never writes).
 */
import type { DhcpConfig } from './config.js';
import type { Store } from '../store/db.js';
import type { LeaseStore } from '../store/leases.js';

export function syncReservations(
  reservations: DhcpConfig['reservations'],
  store: Pick<Store, 'write'>,
  leases: LeaseStore,
): void {
  if (!reservations.length) return;
  store.write((journal) => {
    for (const r of reservations) {
      const existing = leases.reservationFor(r.mac);
      if (existing && existing.ip === r.ip && (existing.hostname ?? undefined) === r.hostname) continue;
      leases.reserveIn(journal, { mac: r.mac, ip: r.ip, hostname: r.hostname ?? null });
    }
  });
}
