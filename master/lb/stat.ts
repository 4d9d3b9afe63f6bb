/**
 * Pure parsers of HAProxy runtime API answers (2.6 formats): `show stat` (CSV, management guide §9.1)
 * and `show servers state` (version 1 format, the one the server-state-file holds).
 */

export type ServerHealth = 'up' | 'down' | 'drain' | 'maint' | 'unchecked';

export interface ServerStat {
  proxy: string;
  server: string;
  /** HAProxy's status text: "UP", "DOWN", "UP 1/3" (going down), "DOWN 1/2" (going up), "MAINT", "DRAIN", "no check". */
  status: string;
  health: ServerHealth;
  /** Last check: e.g. L7OK, L7STS, L4CON, L4TOUT (management guide, "check_status"). */
  checkStatus: string;
  checkCode: number | null;
  checkDesc: string;
  /** Seconds since the last UP/DOWN change. */
  lastChangeSeconds: number | null;
  currentSessions: number;
  totalSessions: number;
  weight: number;
}

/** Splits `show stat` CSV into records keyed by the header's field names. */
export function parseCsv(text: string): Record<string, string>[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines.shift();
  if (!header?.startsWith('# ')) return [];
  const fields = header.slice(2).split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    return Object.fromEntries(fields.map((f, i) => [f, cells[i] ?? '']));
  });
}

/** Up/down as a health summary: a transitional "UP 1/3" is still up, "DOWN 1/2" still down. */
export function healthOf(status: string): ServerHealth {
  const s = status.toUpperCase();
  if (s.startsWith('MAINT')) return 'maint';
  if (s.startsWith('DRAIN')) return 'drain';
  if (s.startsWith('UP') || s === 'NOLB') return 'up';
  if (s.startsWith('DOWN')) return 'down';
  return 'unchecked';
}

function num(s: string | undefined): number | null {
  return s === undefined || s === '' ? null : Number(s);
}

export function parseShowStat(text: string): ServerStat[] {
  return parseCsv(text)
    .filter((r) => r['svname'] !== 'FRONTEND' && r['svname'] !== 'BACKEND' && r['pxname'])
    .map((r) => ({
      proxy: r['pxname'] ?? '',
      server: r['svname'] ?? '',
      status: r['status'] ?? '',
      health: healthOf(r['status'] ?? ''),
      checkStatus: (r['check_status'] ?? '').replace(/^\* /, ''),
      checkCode: num(r['check_code']),
      checkDesc: r['check_desc'] ?? '',
      lastChangeSeconds: num(r['lastchg']),
      currentSessions: num(r['scur']) ?? 0,
      totalSessions: num(r['stot']) ?? 0,
      weight: num(r['weight']) ?? 0,
    }));
}

export interface ServerState {
  proxy: string;
  server: string;
  /** srv_op_state: 0 stopped (down), 1 starting, 2 running (up), 3 stopping. */
  opState: number;
  /** srv_admin_state bit field (server.h): 0x01 forced maint, 0x08 forced drain, others inherited/config. */
  adminState: number;
}

/** Operator-set admin state from the bit field: forced maintenance wins over forced drain. */
export function forcedAdmin(adminState: number): 'maint' | 'drain' | 'ready' {
  if (adminState & 0x01) return 'maint';
  if (adminState & 0x08) return 'drain';
  return 'ready';
}

/** `show servers state`: a version line "1", a "# be_id be_name ..." header, then space-separated rows. */
export function parseServersState(text: string): ServerState[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines.find((l) => l.startsWith('# '));
  if (!header) return [];
  const fields = header.slice(2).trim().split(/\s+/);
  const at = (name: string): number => fields.indexOf(name);
  const [be, srv, op, admin] = [at('be_name'), at('srv_name'), at('srv_op_state'), at('srv_admin_state')];
  return lines
    .filter((l) => !l.startsWith('#') && /\s/.test(l.trim()))
    .map((l) => l.trim().split(/\s+/))
    .map((c) => ({
      proxy: c[be] ?? '',
      server: c[srv] ?? '',
      opState: Number(c[op] ?? -1),
      adminState: Number(c[admin] ?? 0),
    }));
}
