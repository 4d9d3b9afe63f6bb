import { sqliteOf, type Journal, type SqliteStore, type Store } from './db.js';

export interface PowerConfigRecord {
  nodeMac: string;
  /** `auto` until the first contact finds Redfish or IPMI at the address (master/remote/power.ts). */
  driver: 'ipmi' | 'redfish' | 'auto' | 'wol' | 'manual';
  /** BMC host (ipmi) or broadcast address (wol). */
  address: string | null;
  port: number | null;
  username: string | null;
  /** The sealed password (master/remote/secrets.ts); never leaves the master. */
  secret: string | null;
  /** WoL target MAC when it is not the node's boot MAC. */
  wolMac: string | null;
  powerState: 'on' | 'off' | 'unknown';
  stateChangedAt: string | null;
  stateError: string | null;
  updatedAt: string;
  /** SHA-256 fingerprint of the BMC's TLS certificate, pinned on first use (Redfish). */
  tlsPin: string | null;
}

interface Row {
  node_mac: string;
  driver: PowerConfigRecord['driver'];
  address: string | null;
  port: number | null;
  username: string | null;
  secret: string | null;
  wol_mac: string | null;
  power_state: PowerConfigRecord['powerState'];
  state_changed_at: string | null;
  state_error: string | null;
  updated_at: string;
  tls_pin: string | null;
}

function fromRow(r: Row): PowerConfigRecord {
  return {
    nodeMac: r.node_mac,
    driver: r.driver,
    address: r.address,
    port: r.port,
    username: r.username,
    secret: r.secret,
    wolMac: r.wol_mac,
    powerState: r.power_state,
    stateChangedAt: r.state_changed_at,
    stateError: r.state_error,
    updatedAt: r.updated_at,
    tlsPin: r.tls_pin ?? null,
  };
}

export type PowerConfigInput = Pick<
  PowerConfigRecord,
  'nodeMac' | 'driver' | 'address' | 'port' | 'username' | 'secret' | 'wolMac'
> & { tlsPin?: string | null };

/** Per-node power settings (journaled: a backup master can drive the same BMCs after a failover). */
export class PowerConfigStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  get(mac: string): PowerConfigRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM power_configs WHERE node_mac = ?').get(mac) as
      Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  list(): PowerConfigRecord[] {
    return (this.store.db.prepare('SELECT * FROM power_configs ORDER BY node_mac').all() as Row[]).map(
      fromRow,
    );
  }

  upsertIn(journal: Journal, c: PowerConfigInput): PowerConfigRecord {
    this.store.db
      .prepare(
        `INSERT INTO power_configs (node_mac, driver, address, port, username, secret, wol_mac, tls_pin, power_state, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'unknown', ?)
         ON CONFLICT(node_mac) DO UPDATE SET driver = excluded.driver, address = excluded.address,
           port = excluded.port, username = excluded.username, secret = excluded.secret,
           wol_mac = excluded.wol_mac, tls_pin = excluded.tls_pin, power_state = 'unknown', state_error = NULL,
           updated_at = excluded.updated_at`,
      )
      .run(
        c.nodeMac,
        c.driver,
        c.address,
        c.port,
        c.username,
        c.secret,
        c.wolMac,
        c.tlsPin ?? null,
        this.store.now().toISOString(),
      );
    return this.journalRow(journal, c.nodeMac);
  }

  setStateIn(
    journal: Journal,
    mac: string,
    state: PowerConfigRecord['powerState'],
    error: string | null,
  ): PowerConfigRecord {
    this.store.db
      .prepare(
        'UPDATE power_configs SET power_state = ?, state_error = ?, state_changed_at = ? WHERE node_mac = ?',
      )
      .run(state, error, this.store.now().toISOString(), mac);
    return this.journalRow(journal, mac);
  }

  /** What the first contact learned: the driver `auto` resolved to and the certificate it saw. */
  setResolvedIn(
    journal: Journal,
    mac: string,
    driver: PowerConfigRecord['driver'],
    tlsPin: string | null,
  ): PowerConfigRecord {
    this.store.db
      .prepare('UPDATE power_configs SET driver = ?, tls_pin = ? WHERE node_mac = ?')
      .run(driver, tlsPin, mac);
    return this.journalRow(journal, mac);
  }

  deleteIn(journal: Journal, mac: string): void {
    this.store.db.prepare('DELETE FROM power_configs WHERE node_mac = ?').run(mac);
    journal('power_configs', mac, 'delete');
  }

  private journalRow(journal: Journal, mac: string): PowerConfigRecord {
    const row = this.store.row('power_configs', mac) as Row | undefined;
    if (!row) throw new Error(`power config ${mac} vanished inside its own transaction`);
    journal('power_configs', mac, 'upsert', row as unknown as Record<string, unknown>);
    return fromRow(row);
  }
}
