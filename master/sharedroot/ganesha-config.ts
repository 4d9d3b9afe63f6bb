/**
 * The nfs-ganesha configuration for the shared roots: pure, exports in → config text out. Every retained
 * version of every root is its own read-only export (`/roots/NAME/VERSION`), so a node keeps the version
 * it booted until it reboots, while new boots get the current one; per-node persistent directories are
 * read-write exports (`/state/MAC`) that only that node's address may mount.
 */
import { renderTemplate } from '../util/templates.js';
import { CorralError } from '../util/errors.js';

export interface NfsExport {
  /** 1..65535, stable for a given pseudo path (clients' file handles carry it). */
  id: number;
  path: string;
  pseudo: string;
  access: 'RO' | 'RW';
  /** Addresses or CIDRs allowed; `*` for every client. */
  clients: string[];
  comment: string;
}

export interface GaneshaConfigInput {
  port: number;
  recoveryDir: string;
  exports: NfsExport[];
}

/** Characters ganesha's config parser accepts inside a quoted path without escapes. */
const SAFE_PATH = /^\/[A-Za-z0-9._@/+-]*$/;
const CLIENT = /^(\*|\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?)$/;

/**
 * Export ids must be stable: an NFS file handle carries the export id, so a renumbered export would
 * turn every open handle stale. Derived from the pseudo path (FNV-1a, folded into 2..65535; 1 and 0
 * are ganesha's root pseudo export).
 */
export function exportId(pseudo: string): number {
  let h = 0x811c9dc5;
  for (const c of Buffer.from(pseudo)) {
    h ^= c;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 2 + (h % 65534);
}

export function renderGaneshaConfig(input: GaneshaConfigInput): string {
  const seen = new Map<number, string>();
  for (const e of input.exports) {
    for (const p of [e.path, e.pseudo]) {
      if (!SAFE_PATH.test(p) || p.includes('/../') || p.endsWith('/..')) {
        throw new CorralError('NFS_CONFIG_INVALID', `export path '${p}' has characters ganesha cannot take`);
      }
    }
    if (e.clients.length === 0 || !e.clients.every((c) => CLIENT.test(c))) {
      throw new CorralError(
        'NFS_CONFIG_INVALID',
        `export ${e.pseudo}: clients must be addresses, CIDRs or *`,
      );
    }
    const clash = seen.get(e.id);
    if (clash !== undefined) {
      throw new CorralError('NFS_CONFIG_INVALID', `exports ${clash} and ${e.pseudo} share export id ${e.id}`);
    }
    seen.set(e.id, e.pseudo);
  }
  if (!SAFE_PATH.test(input.recoveryDir)) {
    throw new CorralError(
      'NFS_CONFIG_INVALID',
      `recovery directory '${input.recoveryDir}' is not a plain path`,
    );
  }
  return renderTemplate('nfs/ganesha.conf.hbs', {
    port: input.port,
    recoveryDir: input.recoveryDir,
    exports: input.exports.map((e) => ({ ...e, clients: e.clients.join(', ') })),
  });
}
