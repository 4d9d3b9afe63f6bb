/**
 * One catalogue of stable error codes (Fastify habit): every error the operator or an API client can see
 * has a code here, an HTTP status for the API, and a sentence that says what to do. docs/errors.md lists
 * them all and test/unit/errors.test.ts checks that every code is documented.
 */
export const ERROR_CATALOGUE = {
  CONFIG_INVALID: { status: 500, hint: 'Fix the named configuration key and start again.' },
  CONFIG_FILE_UNREADABLE: { status: 500, hint: 'Check the path given to --config and its permissions.' },
  USAGE: { status: 400, hint: 'Run `corral --help` for the accepted commands and flags.' },
  AUTH_REQUIRED: { status: 401, hint: 'Send HTTP Basic credentials of a Corral user.' },
  AUTH_FAILED: { status: 401, hint: 'Check the user name and password.' },
  AUTH_RATE_LIMITED: {
    status: 429,
    hint: 'Too many failed sign-ins from this address or for this user: wait the seconds in Retry-After, then check the credentials.',
  },
  AUTH_BUSY: {
    status: 503,
    hint: 'The master is checking too many sign-ins at once: retry after the second in Retry-After.',
  },
  AUTH_INSECURE_TRANSPORT: {
    status: 403,
    hint: 'Send credentials over HTTPS (the URL in the message); plain HTTP would show the password to the network. Change the password if it was sent in clear.',
  },
  FORBIDDEN: { status: 403, hint: 'Your role does not allow this action.' },
  CSRF_INVALID: { status: 403, hint: 'Reload the page and submit the form again.' },
  NOT_FOUND: { status: 404, hint: 'Check the identifier in the URL.' },
  NODE_NOT_FOUND: { status: 404, hint: 'List nodes with GET /api/v1/nodes to find the right MAC or name.' },
  BODY_INVALID: { status: 400, hint: 'Fix the named field in the request body.' },
  MAC_INVALID: { status: 400, hint: 'Give a MAC address as six hex pairs, e.g. 52:54:00:12:34:56.' },
  STATE_TRANSITION_INVALID: { status: 409, hint: 'The node is not in a state that allows this action.' },
  CONFLICT: { status: 409, hint: 'The resource changed or is in use; reload and try again.' },
  RATE_LIMITED: { status: 429, hint: 'Wait a minute before trying again.' },
  FILE_NOT_FOUND: { status: 404, hint: 'Check that the boot file exists under the boot root.' },
  PATH_REFUSED: { status: 403, hint: 'Only files inside the boot root are served.' },
  RANGE_NOT_SATISFIABLE: { status: 416, hint: 'Ask for a byte range inside the file.' },
  NODE_IMAGE_MISSING: { status: 503, hint: 'Build the node environment with `corral node-image build`.' },
  DHCP_POOL_EXHAUSTED: { status: 503, hint: 'Widen --dhcp-range or release unused leases.' },
  STORE_FAILED: { status: 500, hint: 'Check the data directory is writable and not full.' },
  INTERNAL: { status: 500, hint: 'See the master log for details.' },
  NODE_IMAGE_BUILD_FAILED: {
    status: 500,
    hint: 'Check that apt can reach the Debian mirror (apt-get update) and that busybox-static and kmod are installed.',
  },
  NODE_IMAGE_TOO_LARGE: {
    status: 500,
    hint: 'Drop modules from node-images/modules.ts, or raise INITRD_BUDGET_BYTES in node-images/initramfs.ts and say why in docs/node-images.md.',
  },
  APP_INVALID: { status: 400, hint: 'Fix the named field of the app declaration (docs/apps.md).' },
  APP_NOT_FOUND: { status: 404, hint: 'List apps with GET /api/v1/apps (or `corral app list`).' },
  APP_ENGINE_FAILED: {
    status: 502,
    hint: 'The engine (docker on an engine node, over SSH) refused or did not answer; the message has its words. Check GET /api/v1/apps/engine.',
  },
  SERVICE_NOT_FOUND: {
    status: 404,
    hint: 'List services with GET /api/v1/services (or `corral service list`).',
  },
  LB_CONFIG_INVALID: {
    status: 400,
    hint: 'HAProxy rejected the config rendered from this service; fix the named setting and try again.',
  },
  LB_NOT_MEMBER: {
    status: 409,
    hint: 'Only a deployed node with an address and the service role (or in its node list) serves it.',
  },
  LB_DISABLED: { status: 503, hint: 'Set lb.enabled to true in the config file and restart the master.' },
  LB_HAPROXY_MISSING: {
    status: 503,
    hint: 'Install HAProxy (apt-get install haproxy) or set lb.haproxyBin.',
  },
  LB_HAPROXY_FAILED: { status: 503, hint: 'HAProxy did not start; see the master log for its alert lines.' },
  LB_RELOAD_FAILED: {
    status: 503,
    hint: 'HAProxy kept its previous config; see the master log (a front-end port may be taken).',
  },
  LB_RUNTIME_FAILED: {
    status: 502,
    hint: 'HAProxy refused a runtime command; see the message for its answer.',
  },
  NOT_PRIMARY: {
    status: 503,
    hint: 'This master is a read-only backup: send writes to the floating address (VIP) or the primary named in details.',
  },
  HA_PEER_CERT_MISMATCH: {
    status: 502,
    hint: 'The other master presented another TLS certificate than the one pinned at clone time: check that ha.peerUrl reaches the real peer, or clone the backup again to pin its new certificate.',
  },
  HA_TOKEN_INVALID: {
    status: 401,
    hint: 'Use the replication token of the primary (ha.token in its config).',
  },
  HA_NOT_CONFIGURED: { status: 404, hint: 'Set ha.enabled, ha.token and ha.peerUrl in the config file.' },
  CLONE_FAILED: {
    status: 500,
    hint: 'Check the primary URL, the token and the free space, then run corral clone again.',
  },
  KEEPALIVED_CONFIG_INVALID: {
    status: 500,
    hint: 'Fix the ha keys named in the message; keepalived -t rejected the rendered config.',
  },
  WITNESS_REFUSED: {
    status: 409,
    hint: 'Another master holds this epoch or a valid lease; check GET /api/v1/ha/status on both masters.',
  },
  IMAGE_NOT_FOUND: { status: 404, hint: 'List images with `corral image list` or GET /api/v1/images.' },
  IMAGE_INVALID: {
    status: 400,
    hint: 'Give a complete root filesystem tarball (tar, tar.gz, tar.zst) or disk image (raw, raw.gz, qcow2); re-copy it if it was truncated.',
  },
  IMAGE_IN_USE: { status: 409, hint: 'Deploy another image to the nodes named, or delete them, first.' },
  LAYOUT_UNKNOWN: {
    status: 400,
    hint: 'Use a layout named under deploy.layouts in the config, or omit --layout.',
  },
  DISK_TOO_SMALL: { status: 409, hint: 'Deploy a smaller image or give the node a larger disk.' },
  DEPLOY_TOKEN_INVALID: {
    status: 403,
    hint: 'Only the installer of the current deployment may report; redeploy the node.',
  },
  ENLIST_TOO_LARGE: {
    status: 413,
    hint: 'An enlist body is at most 64 KiB: send only the inventory fields the Corral agent sends.',
  },
  ENLIST_RATE_LIMITED: {
    status: 429,
    hint: 'Too many new nodes enlisted from this address or in all: wait the seconds in Retry-After, or raise nodes.enlistRate.',
  },
  NODE_CREDENTIAL_REQUIRED: {
    status: 401,
    hint: 'This node is known: send its credential (Authorization: Bearer) from its enlistment; a rebooted node gets a new one only from its own DHCP-leased or recorded address (docs/security.md).',
  },
  NODE_CREDENTIAL_INVALID: {
    status: 403,
    hint: "That is not this node's current credential. A rebooted node gets a new one only from its own address in a state that boots the node environment; otherwise an operator fixes its address (PATCH /api/v1/nodes/:id {ip}).",
  },
  DEPLOY_NOT_ACTIVE: {
    status: 409,
    hint: 'This deployment already ended (failed, for instance by the stall watchdog, or booted); deploy the node again.',
  },
  TLS_FAILED: {
    status: 500,
    hint: 'Check console.certFile/keyFile (PEM, readable) or that openssl is installed; or set console.https to false.',
  },
  USER_NOT_FOUND: { status: 404, hint: 'List users with GET /api/v1/users (admin) or on the Users page.' },
  LAST_ADMIN: { status: 409, hint: 'Create or promote another admin first; Corral always keeps one.' },
  METRICS_REFUSED: {
    status: 403,
    hint: 'Only a known node may report its metrics, from its own recorded IP address.',
  },
  TOTP_INVALID: { status: 401, hint: 'Enter the current 6-digit code from your authenticator app.' },
  SNAPSHOT_NOT_FOUND: {
    status: 404,
    hint: 'List restore points with `corral snapshot list` or GET /api/v1/snapshots.',
  },
  SNAPSHOT_INCOMPATIBLE: {
    status: 409,
    hint: 'The restore point comes from a newer Corral schema: upgrade Corral to the version named, then restore.',
  },
  SNAPSHOT_FAILED: {
    status: 500,
    hint: 'Check free space and permissions of the snapshot folder; see the master log.',
  },
  SNAPSHOT_CONFIRMATION_REQUIRED: {
    status: 400,
    hint: 'Type the restore point\'s name exactly (field "confirm") to confirm the restore.',
  },
  SNAPSHOT_MASTER_RUNNING: {
    status: 409,
    hint: 'Restore through the running master (--url), or stop it before restoring with --data-dir.',
  },
  SNAPSHOT_CORRUPT: {
    status: 409,
    hint: "A file of the restore point no longer matches its checksum or fails SQLite's integrity check (disk damage or an edit); nothing was restored. Restore another restore point.",
  },
  DATA_SNAPSHOT_FAILED: {
    status: 500,
    hint: 'The data snapshot was abandoned and the database left running; see the message for the failing step.',
  },
  DATA_SET_NOT_FOUND: {
    status: 404,
    hint: 'List data sets with `corral data-set list` or GET /api/v1/data-sets.',
  },
  DATA_SET_INVALID: {
    status: 400,
    hint: 'Declare the data set on exactly one of a node, a role or a tag, with an absolute path; fix the named field.',
  },
  DATA_SNAPSHOT_NOT_FOUND: {
    status: 404,
    hint: 'List data snapshots with `corral data-snapshot list` or GET /api/v1/data-snapshots.',
  },
  DATA_SNAPSHOT_CORRUPT: {
    status: 409,
    hint: 'The archive no longer matches the checksum taken when it was made (disk damage or an edit); nothing on the node was touched. Restore another snapshot.',
  },
  DATA_SNAPSHOT_BUSY: {
    status: 409,
    hint: 'A snapshot or restore of this data set on this node is running; wait for it to finish.',
  },
  DATA_RESTORE_FAILED: {
    status: 500,
    hint: 'The restore failed on the node and its previous data was put back (the message says if that failed too); see the failing step.',
  },
  SHAREDROOT_NOT_FOUND: {
    status: 404,
    hint: 'List shared roots with `corral sharedroot list` or GET /api/v1/sharedroots.',
  },
  SHAREDROOT_INVALID: {
    status: 400,
    hint: 'Give a root filesystem: a directory or a tarball image with /sbin/init, and a name of lower-case letters, digits and -.',
  },
  SHAREDROOT_IN_USE: {
    status: 409,
    hint: 'Move the nodes named to another root (or reboot them onto the current version) first.',
  },
  SHAREDROOT_IDENTITY_REFUSED: {
    status: 403,
    hint: 'A diskless node gets its identity (host keys) only from its own recorded address: let it enlist or take its DHCP lease first.',
  },
  SHAREDROOT_FAILED: {
    status: 500,
    hint: 'Check free space and permissions of the shared-root directory; see the message for the failing step.',
  },
  RADVD_CONFIG_INVALID: {
    status: 500,
    hint: 'radvd rejected the router advertisement config or could not run: install Debian package radvd and check dhcp6.interface and dhcp6.prefix.',
  },
  P2P_TRACKER_FAILED: {
    status: 500,
    hint: 'The BitTorrent tracker for peer-to-peer image downloads (opentracker) could not run: install Debian package opentracker, check p2p.trackerPort is free, or set p2p.mode to off. Installers fall back to plain HTTP meanwhile.',
  },
  REGISTRY_FAILED: {
    status: 500,
    hint: 'The image registry (docker-registry) could not run: install Debian package docker-registry, check registry.port is free on registry.bind (default: the master address), or set registry.enabled to false. See the master log.',
  },
  REGISTRY_NAME_INVALID: {
    status: 400,
    hint: 'Repository names are lower-case letters and digits separated by . _ __ or -, components joined by / (e.g. corral/base); tags are up to 128 letters, digits, _ . - (e.g. debian-12).',
  },
  REGISTRY_PUSH_FAILED: {
    status: 502,
    hint: 'The registry refused or dropped the push (the message quotes it). Check that the registry runs (GET /api/v1/health) and has free space, then push again: blobs already uploaded are skipped.',
  },
  REGISTRY_SOURCE_INVALID: {
    status: 400,
    hint: 'Give a root file system directory, a registered tar image (tar, tar.gz, tar.zst), or a `docker save` archive; the message names what is wrong with it.',
  },
  NFS_CONFIG_INVALID: {
    status: 500,
    hint: 'nfs-ganesha rejected the exports; the previous config keeps running. See DATA_DIR/sharedroot/nfs/ganesha.log.',
  },
  SERIAL_CONSOLE_UNAVAILABLE: {
    status: 409,
    hint: "Give the node an IPMI power driver (its BMC's serial-over-LAN is used), or a socket in serialConsole.socketDir; check that the BMC or VM is reachable.",
  },
  POWER_NOT_CONFIGURED: {
    status: 409,
    hint: 'Set a power driver for the node first: `corral node power NODE set ...` or PUT /api/v1/nodes/:id/power.',
  },
  POWER_UNSUPPORTED: {
    status: 400,
    hint: 'This driver cannot do that: Wake-on-LAN only powers on; use IPMI for off, cycle and PXE.',
  },
  POWER_FAILED: {
    status: 502,
    hint: 'Check the BMC address, port, user and password, and that the master reaches the BMC (UDP 623).',
  },
  REDFISH_UNREACHABLE: {
    status: 502,
    hint: "Check the BMC address and port, and that the master reaches the BMC's Redfish service over HTTPS (TCP 443 by default).",
  },
  REDFISH_CERT_CHANGED: {
    status: 502,
    hint: "The BMC's certificate is not the one pinned on first use. If it was replaced on purpose (new BMC firmware or certificate), set the node's power driver again with repin; otherwise something is impersonating the BMC.",
  },
  REDFISH_AUTH_FAILED: {
    status: 502,
    hint: "The BMC's Redfish service refused the user name or password: set the node's power credentials again.",
  },
  REDFISH_FAILED: {
    status: 502,
    hint: 'The BMC answered the Redfish request with an error (quoted in the message); check its log entries on the node page.',
  },
  SECRET_KEY_INVALID: {
    status: 500,
    hint: 'Restore DATA_DIR/keys/power.key from the master that stored the credentials, or set the credentials again.',
  },
  EXEC_NO_TARGETS: {
    status: 400,
    hint: 'Name nodes, or a role, whose nodes have an IP address (deployed nodes).',
  },
  // The CLI's own (docs/cli.md): it reaches the master through a profile saved by `corral login`.
  CLI_NOT_LOGGED_IN: {
    status: 401,
    hint: 'Run `corral login https://MASTER` first (or give --profile NAME).',
  },
  CLI_PROFILE_NOT_FOUND: { status: 404, hint: 'List the saved profiles with `corral profile list`.' },
  CLI_PROFILES_UNWRITABLE: {
    status: 500,
    hint: 'Check that the profiles directory ($CORRAL_CONFIG_DIR or ~/.config/corral) is yours and writable.',
  },
  TLS_FINGERPRINT_MISMATCH: {
    status: 502,
    hint: "The master's certificate is not the one pinned at login. If it was replaced on purpose, check the new fingerprint in the master log and run `corral login URL --fingerprint SHA256`; otherwise something is impersonating the master.",
  },
  MASTER_UNREACHABLE: {
    status: 502,
    hint: "Check the profile's URL (`corral profile list`), that the master runs, and that its HTTPS port is reachable.",
  },
  METRICS_AUTH_REQUIRED: {
    status: 401,
    hint: 'Send the bearer token of metrics.token (Prometheus: authorization.credentials_file), or scrape from the master itself.',
  },
  METRICS_LOOPBACK_ONLY: {
    status: 403,
    hint: 'Set metrics.token in the master config and give it to the Prometheus server, or scrape from the master itself.',
  },
  QUERY_INVALID: {
    status: 400,
    hint: 'Fix the named query parameter (docs/scale.md lists those of GET /api/v1/nodes).',
  },
  CURSOR_INVALID: {
    status: 400,
    hint: 'Pass back the nextCursor value of the previous page unchanged, or start again without a cursor.',
  },
  // Enrolment rules and tags (issue 16, master/enrolment/, docs/enrolment-rules.md).
  RULE_NOT_FOUND: { status: 404, hint: 'List the rules with `corral rules list` or GET /api/v1/rules.' },
  RULE_INVALID: {
    status: 400,
    hint: 'Fix the named field of the rule (docs/enrolment-rules.md lists every match and outcome field).',
  },
  RULE_PATTERN_INVALID: {
    status: 400,
    hint: 'Give a glob (`*`, `?`) or a regular expression between slashes, e.g. /^PowerEdge R[67]\\d0$/i, that JavaScript accepts.',
  },
  RULE_TARGET_UNKNOWN: {
    status: 400,
    hint: "The rule's image, layout or shared root does not exist: import or create it first (`corral image list`, `corral sharedroot list`).",
  },
  TAG_INVALID: {
    status: 400,
    hint: 'A tag is 1-32 lower-case letters, digits, -, _, . or :, and a node holds at most 32 tags.',
  },
  CLOUDINIT_LAYER_INVALID: {
    status: 400,
    hint: 'Fix the layer: a YAML mapping of cloud-config keys (#cloud-config), whose {{variables}} are among hostname, name, ip, role, master, mac, tags, instanceId; the message names the line.',
  },
  CLOUDINIT_LAYER_NOT_FOUND: {
    status: 404,
    hint: 'List the layers with `corral cloud-init list` or GET /api/v1/cloud-init/layers.',
  },
  CLOUDINIT_REFUSED: {
    status: 403,
    hint: "A node reads only its own cloud-init data: from its own leased or recorded address, or with its credential (Authorization: Bearer). Fix the node's address (PATCH /api/v1/nodes/:id {ip}) if it moved.",
  },
  DNS_DISABLED: { status: 503, hint: 'Set dns.enabled to true in the config file and restart the master.' },
  DNS_KNOT_MISSING: {
    status: 503,
    hint: 'Install knot (apt-get install knot) or set dns.knotdBin and dns.knotcBin.',
  },
  DNS_KNOT_FAILED: {
    status: 503,
    hint: 'knot did not start or reload; see the master log for its lines (port 53 may be taken by another DNS server).',
  },
  DNS_CONFIG_INVALID: {
    status: 500,
    hint: 'knotc conf-check refused the generated knot.conf; fix the dns section of the config file.',
  },
  DNS_ZONE_INVALID: {
    status: 500,
    hint: 'knotc zone-check refused the generated zone; knot keeps serving the previous one. Fix the name it reports (a node or service name, or dns.zone too long).',
  },
} as const satisfies Record<string, { status: number; hint: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class CorralError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'CorralError';
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return ERROR_CATALOGUE[this.code].status;
  }

  get hint(): string {
    return ERROR_CATALOGUE[this.code].hint;
  }
}

export function isCorralError(err: unknown): err is CorralError {
  return err instanceof CorralError;
}
