/**
 * The `ha` section of the config (high availability: replication, floating VIP, witness). Kept beside the
 * HA code and plugged into config.ts as one key; validated and frozen with the rest of the config.
 */
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { isLoopbackUrl } from './peer-http.js';

const ipv4 = z.string().refine((s) => isIPv4(s), { message: 'expected an IPv4 address like 10.0.0.1' });
const vip = z.string().refine(
  (s) => {
    const [ip, bits, ...rest] = s.split('/');
    return rest.length === 0 && !!ip && isIPv4(ip) && /^\d+$/.test(bits ?? '') && Number(bits) <= 32;
  },
  { message: 'expected the floating address with its prefix, like 10.0.0.50/24' },
);

export const HA_DEFAULTS = {
  enabled: false,
  virtualRouterId: 51,
  priority: 100,
  advertInt: 1,
  keepalived: true,
  keepalivedBin: 'keepalived',
  mode: 'sync' as const,
  syncTimeoutMs: 2000,
  leaseMs: 3000,
  followerTimeoutMs: 2000,
  fileSyncSeconds: 30,
  denyHoldSeconds: 10,
};

export const HaSchema = z
  .object({
    enabled: z.boolean().default(HA_DEFAULTS.enabled),
    /** This master's name in the witness and the event log; defaults to `address`. */
    nodeId: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, . _ - (1-63)')
      .optional(),
    /** Shared secret of both masters and the witness (Bearer token of the replication API). */
    token: z.string().min(16, 'must be at least 16 characters').max(256).optional(),
    /**
     * The other master's base URL over HTTPS, e.g. https://10.0.0.2 (its own address, not the VIP); plain
     * http:// only on loopback. Replication sends it the token and receives the database and keys.
     */
    peerUrl: z.string().url().optional(),
    /**
     * SHA-256 fingerprint of the peer's TLS certificate, recorded by `corral clone`. Unset: the peer must
     * present this master's own certificate (clone copies the primary's to the backup, so both share it).
     */
    peerCertSha256: z
      .string()
      .regex(/^(sha256\/+)?[0-9A-Fa-f]{2}(:?[0-9A-Fa-f]{2}){31}$/, 'expected a SHA-256 fingerprint (AB:CD:…)')
      .optional(),
    /** Floating address with prefix; empty = no keepalived (roles only via POST /api/v1/ha/promote). */
    vip: vip.optional(),
    /** Interface for VRRP and the VIP; defaults to `interface`. */
    interface: z.string().min(1).max(15).optional(),
    /** The peer's address for unicast VRRP; defaults to the host of peerUrl. */
    unicastPeer: ipv4.optional(),
    virtualRouterId: z.number().int().min(1).max(255).default(HA_DEFAULTS.virtualRouterId),
    priority: z.number().int().min(1).max(254).default(HA_DEFAULTS.priority),
    advertInt: z.number().int().min(1).max(255).default(HA_DEFAULTS.advertInt),
    /** Supervise keepalived (render, check, run, restart); false when the operator runs it. */
    keepalived: z.boolean().default(HA_DEFAULTS.keepalived),
    keepalivedBin: z.string().min(1).default(HA_DEFAULTS.keepalivedBin),
    /** The witness that grants promotions, e.g. http://10.0.0.3:7070; none = operator confirmation. */
    witnessUrl: z.string().url().optional(),
    /** sync: API writes are answered after the backup has them; async: at once (may lose the tail). */
    mode: z.enum(['sync', 'async']).default(HA_DEFAULTS.mode),
    syncTimeoutMs: z.number().int().min(100).max(60_000).default(HA_DEFAULTS.syncTimeoutMs),
    /** Witness lease of a primary that writes without a backup (async). */
    leaseMs: z.number().int().min(500).max(60_000).default(HA_DEFAULTS.leaseMs),
    /** A backup silent this long counts as gone (the primary then needs a witness lease to go on). */
    followerTimeoutMs: z.number().int().min(500).max(60_000).default(HA_DEFAULTS.followerTimeoutMs),
    /** How often a backup compares boot files and images with the primary (by sha256). */
    fileSyncSeconds: z.number().int().min(1).max(86_400).default(HA_DEFAULTS.fileSyncSeconds),
    /** After a refused promotion the track script fails this long, so keepalived gives the VIP back. */
    denyHoldSeconds: z.number().int().min(1).max(3600).default(HA_DEFAULTS.denyHoldSeconds),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.enabled) return;
    if (!c.token) ctx.addIssue({ code: 'custom', path: ['token'], message: 'is required when ha.enabled' });
    if (!c.peerUrl)
      ctx.addIssue({ code: 'custom', path: ['peerUrl'], message: 'is required when ha.enabled' });
    else if (!/^https:/i.test(c.peerUrl) && !isLoopbackUrl(c.peerUrl))
      ctx.addIssue({
        code: 'custom',
        path: ['peerUrl'],
        message:
          'must be https:// (replication carries the HA token, the database and keys), e.g. https://10.0.0.2',
      });
    // A cut link: the backup's keepalived takes the VIP after 3 × advertInt (VRRP master-down interval)
    // and asks the witness to promote it. The primary must have asked for its lease first, or it loses
    // that race and fences itself although it was healthy. It notices a silent backup after
    // followerTimeoutMs counted from the backup's last request, which may be a long-poll of up to half of
    // it (ha-failover test: with 3000 ms and advertInt 1 the backup won under load).
    if (c.followerTimeoutMs >= 3 * c.advertInt * 1000) {
      ctx.addIssue({
        code: 'custom',
        path: ['followerTimeoutMs'],
        message: `must be below 3 × advertInt (${3 * c.advertInt * 1000} ms), so a primary cut off from its backup asks the witness before the backup can`,
      });
    }
  })
  .default({ ...HA_DEFAULTS });

export type HaConfig = z.infer<typeof HaSchema>;
