/** The `sharedRoot` section of the master config (issue 6); config.ts embeds it. */
import { z } from 'zod';

export const SharedRootConfigSchema = z
  .object({
    /** Serve shared roots over NFS. The server starts only once a shared root exists. */
    enabled: z.boolean().default(true),
    /**
     * The NFS server: `ganesha` (nfs-ganesha, user space, works without kernel nfsd). The kernel server is
     * not implemented yet (docs/shared-root.md).
     */
    server: z.enum(['ganesha']).default('ganesha'),
    ganeshaBin: z.string().min(1).default('ganesha.nfsd'),
    /** Where roots, per-node state and the server's files live; default DATA_DIR/sharedroot. */
    dir: z.string().min(1).optional(),
    /** NFSv4 minor version the nodes mount with (the export speaks NFSv4 only: no rpcbind, no NLM). */
    nfsVersion: z.enum(['4.0', '4.1', '4.2']).default('4.1'),
    /** Size of each node's tmpfs upper layer (tmpfs `size=`: bytes with k/m/g, or a % of RAM). */
    overlaySize: z
      .string()
      .regex(/^\d+[kmg%]?$/, 'must be a tmpfs size like 512m or 50%')
      .default('50%'),
    /**
     * Who may mount the read-only roots: addresses, CIDRs or `*`. Default: the provisioning subnets (the
     * local segment's and each relay pool's), so a host elsewhere cannot read the shared OS tree.
     */
    clients: z
      .array(z.string().regex(/^(\*|\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?)$/, 'must be an address, a CIDR or *'))
      .min(1)
      .optional(),
    /** How often the master compares the wanted exports with the running server's. */
    reconcileSeconds: z.number().int().min(1).max(3600).default(5),
    /** How long a (re)started server may take to report "NFS SERVER INITIALIZED". */
    startTimeoutSeconds: z.number().int().min(1).max(300).default(20),
  })
  .strict();

export type SharedRootConfig = z.infer<typeof SharedRootConfigSchema>;

export const SHAREDROOT_CONFIG_DEFAULTS: SharedRootConfig = {
  enabled: true,
  server: 'ganesha',
  ganeshaBin: 'ganesha.nfsd',
  nfsVersion: '4.1',
  overlaySize: '50%',
  reconcileSeconds: 5,
  startTimeoutSeconds: 20,
};
