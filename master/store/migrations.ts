/**
 * Versioned schema migrations, applied in order at start inside one transaction each. A migration is
 * never edited once released: add a new one. `schema_version` in restore points and clones is the
 * highest version here.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
CREATE TABLE changes (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  at         TEXT    NOT NULL,
  epoch      INTEGER NOT NULL,
  entity     TEXT    NOT NULL,
  entity_key TEXT    NOT NULL,
  op         TEXT    NOT NULL CHECK (op IN ('upsert', 'delete')),
  data       TEXT
);

CREATE TABLE nodes (
  mac           TEXT PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE,
  seq_no        INTEGER NOT NULL UNIQUE,
  ip            TEXT,
  state         TEXT NOT NULL,
  role          TEXT,
  firmware      TEXT,
  inventory     TEXT NOT NULL DEFAULT '{}',
  image         TEXT,
  state_reason  TEXT,
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL,
  last_seen_at  TEXT
);

CREATE TABLE events (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  at       TEXT NOT NULL,
  node_mac TEXT,
  kind     TEXT NOT NULL,
  severity TEXT NOT NULL DEFAULT 'info',
  message  TEXT NOT NULL,
  actor    TEXT,
  data     TEXT
);
CREATE INDEX events_node ON events(node_mac, id);

CREATE TABLE leases (
  ip          TEXT PRIMARY KEY,
  mac         TEXT NOT NULL,
  client_id   TEXT,
  hostname    TEXT,
  state       TEXT NOT NULL CHECK (state IN ('offered', 'bound', 'released', 'expired', 'declined')),
  expires_at  INTEGER NOT NULL,
  updated_at  TEXT NOT NULL
);
CREATE INDEX leases_mac ON leases(mac);

CREATE TABLE reservations (
  mac      TEXT PRIMARY KEY,
  ip       TEXT NOT NULL UNIQUE,
  hostname TEXT
);

CREATE TABLE images (
  sha256      TEXT PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  format      TEXT NOT NULL,
  size_bytes  INTEGER NOT NULL,
  os_name     TEXT,
  os_version  TEXT,
  created_at  TEXT NOT NULL
);

CREATE TABLE users (
  name          TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL
);

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- Console sessions are per master and not journaled: after a fail-over users log in again.
CREATE TABLE sessions (
  id           TEXT PRIMARY KEY,
  user_name    TEXT NOT NULL,
  csrf_token   TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL
);
`,
  },
  {
    version: 4,
    name: 'lb-services',
    sql: `
-- Load-balanced services (issue #7): the spec is validated JSON (master/lb/service-spec.ts).
CREATE TABLE services (
  name       TEXT PRIMARY KEY,
  spec       TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
-- An operator's drain/maint of one node in one service; id is "SERVICE/MAC". Absent row = ready.
CREATE TABLE lb_server_admin (
  id         TEXT PRIMARY KEY,
  service    TEXT NOT NULL REFERENCES services(name) ON DELETE CASCADE,
  node_mac   TEXT NOT NULL,
  state      TEXT NOT NULL CHECK (state IN ('drain', 'maint')),
  updated_at TEXT NOT NULL
);
`,
  },
  {
    version: 5,
    name: 'ha-discarded-tail',
    // Not journaled: what a returning old primary discarded stays on that master for forensics.
    sql: `
CREATE TABLE ha_discarded (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  discarded_at TEXT    NOT NULL,
  seq          INTEGER NOT NULL,
  epoch        INTEGER NOT NULL,
  entity       TEXT    NOT NULL,
  entity_key   TEXT    NOT NULL,
  op           TEXT    NOT NULL,
  data         TEXT
);
`,
  },
  {
    version: 3,
    name: 'images-and-deployments',
    sql: `
ALTER TABLE images ADD COLUMN min_disk_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE images ADD COLUMN file TEXT NOT NULL DEFAULT '';

CREATE TABLE deployments (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  node_mac      TEXT NOT NULL,
  image_sha256  TEXT NOT NULL,
  layout        TEXT NOT NULL,
  plan          TEXT NOT NULL,
  token         TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('pending', 'installing', 'installed', 'booted', 'failed')),
  phase         TEXT,
  percent       INTEGER NOT NULL DEFAULT 0,
  bytes         INTEGER NOT NULL DEFAULT 0,
  bytes_per_sec INTEGER NOT NULL DEFAULT 0,
  message       TEXT,
  log_tail      TEXT,
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL,
  finished_at   TEXT
);
CREATE INDEX deployments_node ON deployments(node_mac, id);
`,
  },
  {
    version: 9,
    name: 'console-audit-metrics-totp',
    sql: `
-- Append-only audit log (issue #10): who did what, through the API or the console. Per master and not
-- journaled (like sessions): see docs/decisions.md. The triggers make the append-only rule the database's.
CREATE TABLE audit (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  at      TEXT    NOT NULL,
  actor   TEXT    NOT NULL,
  via     TEXT    NOT NULL CHECK (via IN ('api', 'console', 'system')),
  action  TEXT    NOT NULL,
  target  TEXT,
  outcome TEXT    NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed')),
  status  INTEGER,
  ip      TEXT,
  detail  TEXT
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Time series (issue #10): tier 0 holds raw samples, tier 1 five-minute averages. Per master, not journaled.
CREATE TABLE metrics (
  source     TEXT    NOT NULL,
  tier       INTEGER NOT NULL,
  at         INTEGER NOT NULL,
  cpu        REAL,
  mem_used   REAL,
  mem_total  REAL,
  disk_used  REAL,
  disk_total REAL,
  net_rx     REAL,
  net_tx     REAL,
  load1      REAL,
  samples    INTEGER NOT NULL DEFAULT 1,
  procs      TEXT,
  PRIMARY KEY (source, tier, at)
) WITHOUT ROWID;

-- Optional TOTP second factor (RFC 6238); journaled with users so a backup master knows it too.
CREATE TABLE user_totp (
  user_name  TEXT PRIMARY KEY REFERENCES users(name) ON DELETE CASCADE,
  secret     TEXT NOT NULL,
  enabled_at TEXT
);
`,
  },
  {
    version: 8,
    name: 'shared-roots',
    sql: `
-- Shared roots (issue 6): versions live in DATA_DIR/sharedroot/roots/NAME/VERSION; rows written once complete.
CREATE TABLE shared_roots (
  name            TEXT PRIMARY KEY,
  current_version INTEGER NOT NULL,
  source          TEXT NOT NULL,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL
);
CREATE TABLE shared_root_versions (
  key        TEXT PRIMARY KEY,
  name       TEXT NOT NULL REFERENCES shared_roots(name) ON DELETE CASCADE,
  version    INTEGER NOT NULL,
  root_id    TEXT NOT NULL,
  state      TEXT NOT NULL CHECK (state IN ('draft', 'ready')),
  note       TEXT,
  created_at TEXT NOT NULL,
  UNIQUE (name, version)
);
CREATE TABLE diskless_nodes (
  mac            TEXT PRIMARY KEY REFERENCES nodes(mac) ON DELETE CASCADE,
  root_name      TEXT NOT NULL REFERENCES shared_roots(name),
  persistent     INTEGER NOT NULL DEFAULT 0,
  machine_id     TEXT NOT NULL,
  booted_version INTEGER,
  booted_at      TEXT,
  created_at     TEXT NOT NULL
);
`,
  },
  {
    version: 7,
    name: 'remote-control',
    sql: `
-- Power control (issue #11): one row per node with a driver; the password is sealed (AES-256-GCM,
-- master/remote/secrets.ts). Journaled, so a backup master drives the same BMCs after a failover.
CREATE TABLE power_configs (
  node_mac         TEXT PRIMARY KEY REFERENCES nodes(mac) ON DELETE CASCADE,
  driver           TEXT NOT NULL CHECK (driver IN ('ipmi', 'wol', 'manual')),
  address          TEXT,
  port             INTEGER,
  username         TEXT,
  secret           TEXT,
  wol_mac          TEXT,
  power_state      TEXT NOT NULL DEFAULT 'unknown' CHECK (power_state IN ('on', 'off', 'unknown')),
  state_changed_at TEXT,
  state_error      TEXT,
  updated_at       TEXT NOT NULL
);
-- Commands run on nodes (corral node exec, console): the audit log's long form. Per master, not journaled.
CREATE TABLE exec_runs (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at  TEXT NOT NULL,
  finished_at TEXT,
  actor       TEXT NOT NULL,
  via         TEXT NOT NULL CHECK (via IN ('api', 'console', 'cli')),
  command     TEXT NOT NULL,
  targets     TEXT NOT NULL,
  summary     TEXT,
  output      TEXT NOT NULL DEFAULT ''
);
`,
  },
  {
    version: 10,
    name: 'boot-activity',
    sql: `
-- Per-MAC boot timeline (issue 22): every DHCP, TFTP, HTTP and agent step of a boot attempt, known MAC or
-- not. Per master and not journaled (like exec_runs): it describes what this master's sockets saw.
-- Bounded by master/store/boot-activity.ts (entries per MAC, MACs tracked; oldest evicted).
CREATE TABLE boot_activity (
  id      INTEGER PRIMARY KEY,
  mac     TEXT    NOT NULL,
  at      TEXT    NOT NULL,
  kind    TEXT    NOT NULL,
  summary TEXT    NOT NULL,
  failed  INTEGER NOT NULL DEFAULT 0,
  hint    TEXT,
  detail  TEXT    NOT NULL
);
CREATE INDEX boot_activity_by_mac ON boot_activity (mac, id);
-- One row per tracked MAC: the eviction order (last_id) and the per-MAC count without a COUNT(*).
CREATE TABLE boot_activity_macs (
  mac      TEXT PRIMARY KEY,
  first_at TEXT    NOT NULL,
  last_at  TEXT    NOT NULL,
  last_id  INTEGER NOT NULL,
  entries  INTEGER NOT NULL
);
CREATE INDEX boot_activity_macs_by_last ON boot_activity_macs (last_id);
`,
  },
  {
    version: 11,
    name: 'node-credentials',
    sql: `
-- Per-node credentials (issue 14): the agent's secret, issued at enlistment. Only its SHA-256 is kept (the
-- secret is 256 random bits, so no slow hash is needed). Journaled, so a promoted backup master still
-- knows every node's credential.
CREATE TABLE node_credentials (
  mac       TEXT PRIMARY KEY REFERENCES nodes(mac) ON DELETE CASCADE,
  hash      TEXT NOT NULL,
  issued_at TEXT NOT NULL,
  issued_ip TEXT,
  reason    TEXT NOT NULL CHECK (reason IN ('first-enlist', 'recovery'))
);
`,
  },
  {
    version: 12,
    name: 'enrolment-rules-and-tags',
    sql: `
-- Free-form node tags (issue 16): a JSON array of labels on the node row itself, so a tag change is a node
-- change (one journal row, one upsert on a backup) and the load balancer's journal-driven sync sees it.
ALTER TABLE nodes ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
-- The rule that enrolled the node (its name then), so a rule catches a machine once and the console can say why.
ALTER TABLE nodes ADD COLUMN enrolled_by TEXT;
-- Enrolment rules (issue 16, master/enrolment/): an ordered list; the first enabled rule that matches a
-- newly discovered node (and has not reached its limit) decides its name, role, tags and next step.
-- Journaled: a promoted backup applies the same rules with the same counts.
CREATE TABLE enrolment_rules (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  position   INTEGER NOT NULL,
  name       TEXT    NOT NULL UNIQUE,
  enabled    INTEGER NOT NULL DEFAULT 1,
  max_nodes  INTEGER,
  caught     INTEGER NOT NULL DEFAULT 0,
  match      TEXT    NOT NULL DEFAULT '{}',
  outcome    TEXT    NOT NULL DEFAULT '{}',
  created_at TEXT    NOT NULL,
  updated_at TEXT    NOT NULL
);
`,
  },
  {
    version: 13,
    name: 'cloud-init-layers',
    sql: `
-- cloud-init user-data layers (issue 16): #cloud-config fragments merged per node, global → role → tag →
-- node (master/cloudinit/). key = '<scope>:<target>' ('global:' for the one global layer). The content is
-- kept as the operator wrote it (templates unrendered), validated before it is written. Journaled.
CREATE TABLE cloud_init_layers (
  key        TEXT PRIMARY KEY,
  scope      TEXT NOT NULL CHECK (scope IN ('global', 'role', 'tag', 'node')),
  target     TEXT NOT NULL,
  content    TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  updated_by TEXT
);
`,
  },
  {
    version: 14,
    name: 'data-snapshots',
    sql: `
-- Data sets of nodes (issue 17): a path and a kind on one node, or on every node of a role or tag. The
-- password of a database connection is sealed (remote/secrets.ts), bound to the data set's name. Journaled,
-- so a promoted backup master keeps the declarations (and opens the secret with the cloned key).
CREATE TABLE data_sets (
  id            INTEGER PRIMARY KEY,
  name          TEXT    NOT NULL UNIQUE,
  node_mac      TEXT    REFERENCES nodes(mac) ON DELETE CASCADE,
  role          TEXT,
  tag           TEXT,
  kind          TEXT    NOT NULL CHECK (kind IN ('files', 'sqlite', 'postgresql', 'mysql')),
  path          TEXT    NOT NULL,
  connection    TEXT    NOT NULL DEFAULT '{}',
  secret        TEXT,
  stop_command  TEXT,
  start_command TEXT,
  schedule      TEXT    NOT NULL DEFAULT '{}',
  retention     TEXT    NOT NULL DEFAULT '{}',
  created_at    TEXT    NOT NULL,
  updated_at    TEXT    NOT NULL,
  CHECK ((node_mac IS NOT NULL) + (role IS NOT NULL) + (tag IS NOT NULL) = 1)
);
-- The snapshots themselves: per master (their archives live in this master's DATA_DIR), not journaled,
-- like exec_runs. A row is 'running' while its archive streams in; only 'ok' rows can be restored.
CREATE TABLE data_snapshots (
  id              INTEGER PRIMARY KEY,
  name            TEXT    NOT NULL UNIQUE,
  data_set_id     INTEGER NOT NULL,
  data_set_name   TEXT    NOT NULL,
  node_mac        TEXT    NOT NULL,
  node_name       TEXT    NOT NULL,
  kind            TEXT    NOT NULL,
  snapshot_kind   TEXT    NOT NULL CHECK (snapshot_kind IN ('manual', 'scheduled', 'auto', 'safety')),
  status          TEXT    NOT NULL CHECK (status IN ('running', 'ok')),
  method          TEXT,
  format          TEXT,
  reason          TEXT,
  actor           TEXT,
  created_at      TEXT    NOT NULL,
  finished_at     TEXT,
  bytes           INTEGER NOT NULL DEFAULT 0,
  raw_bytes       INTEGER,
  files           INTEGER,
  sha256          TEXT,
  position        TEXT,
  writer_stall_ms INTEGER,
  duration_ms     INTEGER
);
CREATE INDEX data_snapshots_by_set ON data_snapshots (data_set_id, node_mac, created_at);
`,
  },
  {
    version: 15,
    name: 'node-list-at-scale',
    sql: `
-- Inventory at scale (issue 19): what the node list filters, searches and sorts by, kept beside each node
-- by triggers, so a search scans one short text per node instead of parsing 10 000 inventories, and the
-- console's list reads these small rows instead of the nodes table with its inventories (measured: 175 ms
-- to read the sort columns of 10 000 nodes from nodes, docs/scale.md). Derived data: not journaled (the
-- triggers keep it on a backup master as its replication writes the nodes rows).
CREATE TABLE node_facts (
  mac               TEXT PRIMARY KEY,
  seq_no            INTEGER NOT NULL,
  name              TEXT NOT NULL,
  ip                TEXT,
  state             TEXT NOT NULL,
  role              TEXT,
  last_seen_at      TEXT,
  cpu_count         INTEGER,
  memory_bytes      INTEGER,
  disks_total_bytes INTEGER,
  search            TEXT NOT NULL
);
-- DELETE then INSERT, not INSERT OR REPLACE: a trigger's OR REPLACE is overridden by the outer statement's
-- conflict handling, and replication applies rows with an upsert (ON CONFLICT DO UPDATE), which then fails
-- on node_facts' key (found by test/integration/ha-replication.test.ts).
CREATE TRIGGER node_facts_insert AFTER INSERT ON nodes BEGIN
  DELETE FROM node_facts WHERE mac = new.mac;
  INSERT INTO node_facts
    (mac, seq_no, name, ip, state, role, last_seen_at, cpu_count, memory_bytes, disks_total_bytes, search)
  VALUES (new.mac, new.seq_no, new.name, new.ip, new.state, new.role, new.last_seen_at,
         (CASE WHEN json_valid(new.inventory) THEN json_extract(new.inventory, '$.cpu.count') END),
         (CASE WHEN json_valid(new.inventory) THEN json_extract(new.inventory, '$.memoryBytes') END),
         (CASE WHEN json_valid(new.inventory) THEN (SELECT SUM(json_extract(value, '$.sizeBytes'))
            FROM json_each(new.inventory, '$.disks') WHERE type = 'object') END),
         lower(new.name || char(10) || new.mac || char(10) || replace(new.mac, ':', '') || char(10) ||
           coalesce(new.ip, '') || char(10) || coalesce(new.role, '') || char(10) || new.state || char(10) ||
           coalesce(new.image, '') || char(10) ||
           (CASE WHEN json_valid(new.inventory) THEN
             coalesce(json_extract(new.inventory, '$.cpu.model'), '') || char(10) ||
             coalesce(json_extract(new.inventory, '$.dmi.vendor'), '') || char(10) ||
             coalesce(json_extract(new.inventory, '$.dmi.product'), '') || char(10) ||
             coalesce(json_extract(new.inventory, '$.dmi.serial'), '') || char(10) ||
             coalesce((SELECT group_concat(json_extract(value, '$.serial'), char(10))
                         FROM json_each(new.inventory, '$.disks') WHERE type = 'object'), '') || char(10) ||
             coalesce((SELECT group_concat(json_extract(value, '$.mac'), char(10))
                         FROM json_each(new.inventory, '$.nics') WHERE type = 'object'), '')
           ELSE '' END)));
END;
CREATE TRIGGER node_facts_update AFTER UPDATE ON nodes BEGIN
  DELETE FROM node_facts WHERE mac IN (old.mac, new.mac);
  INSERT INTO node_facts
    (mac, seq_no, name, ip, state, role, last_seen_at, cpu_count, memory_bytes, disks_total_bytes, search)
  VALUES (new.mac, new.seq_no, new.name, new.ip, new.state, new.role, new.last_seen_at,
         (CASE WHEN json_valid(new.inventory) THEN json_extract(new.inventory, '$.cpu.count') END),
         (CASE WHEN json_valid(new.inventory) THEN json_extract(new.inventory, '$.memoryBytes') END),
         (CASE WHEN json_valid(new.inventory) THEN (SELECT SUM(json_extract(value, '$.sizeBytes'))
            FROM json_each(new.inventory, '$.disks') WHERE type = 'object') END),
         lower(new.name || char(10) || new.mac || char(10) || replace(new.mac, ':', '') || char(10) ||
           coalesce(new.ip, '') || char(10) || coalesce(new.role, '') || char(10) || new.state || char(10) ||
           coalesce(new.image, '') || char(10) ||
           (CASE WHEN json_valid(new.inventory) THEN
             coalesce(json_extract(new.inventory, '$.cpu.model'), '') || char(10) ||
             coalesce(json_extract(new.inventory, '$.dmi.vendor'), '') || char(10) ||
             coalesce(json_extract(new.inventory, '$.dmi.product'), '') || char(10) ||
             coalesce(json_extract(new.inventory, '$.dmi.serial'), '') || char(10) ||
             coalesce((SELECT group_concat(json_extract(value, '$.serial'), char(10))
                         FROM json_each(new.inventory, '$.disks') WHERE type = 'object'), '') || char(10) ||
             coalesce((SELECT group_concat(json_extract(value, '$.mac'), char(10))
                         FROM json_each(new.inventory, '$.nics') WHERE type = 'object'), '')
           ELSE '' END)));
END;
CREATE TRIGGER node_facts_delete AFTER DELETE ON nodes BEGIN
  DELETE FROM node_facts WHERE mac = old.mac;
END;
INSERT INTO node_facts
    (mac, seq_no, name, ip, state, role, last_seen_at, cpu_count, memory_bytes, disks_total_bytes, search)
  SELECT mac, seq_no, name, ip, state, role, last_seen_at,
         (CASE WHEN json_valid(inventory) THEN json_extract(inventory, '$.cpu.count') END),
         (CASE WHEN json_valid(inventory) THEN json_extract(inventory, '$.memoryBytes') END),
         (CASE WHEN json_valid(inventory) THEN (SELECT SUM(json_extract(value, '$.sizeBytes'))
            FROM json_each(inventory, '$.disks') WHERE type = 'object') END),
         lower(name || char(10) || mac || char(10) || replace(mac, ':', '') || char(10) ||
           coalesce(ip, '') || char(10) || coalesce(role, '') || char(10) || state || char(10) ||
           coalesce(image, '') || char(10) ||
           (CASE WHEN json_valid(inventory) THEN
             coalesce(json_extract(inventory, '$.cpu.model'), '') || char(10) ||
             coalesce(json_extract(inventory, '$.dmi.vendor'), '') || char(10) ||
             coalesce(json_extract(inventory, '$.dmi.product'), '') || char(10) ||
             coalesce(json_extract(inventory, '$.dmi.serial'), '') || char(10) ||
             coalesce((SELECT group_concat(json_extract(value, '$.serial'), char(10))
                         FROM json_each(inventory, '$.disks') WHERE type = 'object'), '') || char(10) ||
             coalesce((SELECT group_concat(json_extract(value, '$.mac'), char(10))
                         FROM json_each(inventory, '$.nics') WHERE type = 'object'), '')
           ELSE '' END))
    FROM nodes;
-- Filters of GET /api/v1/nodes and the console, in sequence order (the keyset of the API's cursor).
CREATE INDEX nodes_state_seq ON nodes (state, seq_no);
CREATE INDEX nodes_role_seq ON nodes (role, seq_no);
`,
  },
  {
    version: 16,
    name: 'dhcp6-leases',
    sql: `
-- DHCPv6 IA_NA bindings (issue 18, RFC 8415 §6.2): one row per address, keyed like the v4 leases by
-- address, naming the client by DUID (hex) and IAID; the MAC when the DUID or a relay names one.
CREATE TABLE dhcp6_leases (
  address    TEXT    PRIMARY KEY,
  duid       TEXT    NOT NULL,
  iaid       INTEGER NOT NULL,
  mac        TEXT,
  state      TEXT    NOT NULL CHECK (state IN ('bound', 'released', 'expired', 'declined')),
  expires_at INTEGER NOT NULL,
  updated_at TEXT    NOT NULL
);
CREATE INDEX dhcp6_leases_client ON dhcp6_leases (duid, iaid);
`,
  },
  {
    version: 18,
    name: 'redfish-power',
    sql: `
-- Redfish power (issue 20): two more drivers, and the BMC certificate's SHA-256 fingerprint pinned on first
-- use (tls_pin). SQLite cannot widen a CHECK in place, so the table is rebuilt with its rows
-- (https://www.sqlite.org/lang_altertable.html, "other kinds of table schema changes"); no table refers to it.
CREATE TABLE power_configs_v18 (
  node_mac         TEXT PRIMARY KEY REFERENCES nodes(mac) ON DELETE CASCADE,
  driver           TEXT NOT NULL CHECK (driver IN ('ipmi', 'redfish', 'auto', 'wol', 'manual')),
  address          TEXT,
  port             INTEGER,
  username         TEXT,
  secret           TEXT,
  wol_mac          TEXT,
  power_state      TEXT NOT NULL DEFAULT 'unknown' CHECK (power_state IN ('on', 'off', 'unknown')),
  state_changed_at TEXT,
  state_error      TEXT,
  updated_at       TEXT NOT NULL,
  tls_pin          TEXT
);
INSERT INTO power_configs_v18
    (node_mac, driver, address, port, username, secret, wol_mac, power_state, state_changed_at, state_error, updated_at)
  SELECT node_mac, driver, address, port, username, secret, wol_mac, power_state, state_changed_at, state_error, updated_at
    FROM power_configs;
DROP TABLE power_configs;
ALTER TABLE power_configs_v18 RENAME TO power_configs;
`,
  },
  {
    version: 19,
    name: 'apps',
    sql: `
-- Apps on the cluster engine (issue 21): the declaration (validated JSON, master/apps/app-spec.ts) with its
-- version and the one before it (a failed rollout or a revert goes back there), journaled; and what this
-- master saw the engine run per instance slot over time (the rollout picture), per master, bounded.
CREATE TABLE apps (
  name             TEXT PRIMARY KEY,
  spec             TEXT    NOT NULL,
  version          INTEGER NOT NULL,
  previous_spec    TEXT,
  previous_version INTEGER,
  created_at       TEXT    NOT NULL,
  updated_at       TEXT    NOT NULL
);
CREATE TABLE app_observations (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  app     TEXT    NOT NULL,
  at      TEXT    NOT NULL,
  slot    INTEGER NOT NULL,
  version INTEGER,
  state   TEXT    NOT NULL,
  node    TEXT
);
CREATE INDEX app_observations_app ON app_observations (app, id);
`,
  },
  {
    version: 23,
    name: 'inventory-scale-search-and-counters',
    sql: `
-- Inventory at scale, continued (issue 19). Measured on 10 000 nodes and 1 000 000 events (docs/scale.md):
-- a search scanned every node_facts.search with LIKE twice per request (count, then page), the console's
-- list read every node's sort key without an index for its order, and the dashboard counted the events
-- table (a full index scan: ~200 ms). Everything here is derived data kept by triggers, like node_facts:
-- not journaled, rebuilt here from what is already stored.

-- The console's sort keys in sequence order without a temporary B-tree.
CREATE INDEX node_facts_seq ON node_facts (seq_no);

-- Substring search through an index: FTS5's trigram tokenizer answers a phrase query as a substring match
-- of 3 or more characters (https://www.sqlite.org/fts5.html#the_trigram_tokenizer). rowid = the node's
-- seq_no, stable for the node's life (node_facts' own rowid is not: its triggers delete and insert).
CREATE VIRTUAL TABLE node_search USING fts5(search, tokenize = 'trigram');
INSERT INTO node_search (rowid, search) SELECT seq_no, search FROM node_facts;

-- A number that changes whenever any node's list row changes (any write to nodes rewrites its node_facts
-- row), so the console may reuse a sorted order or the tag list computed at the same number.
CREATE TABLE node_list_generation (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT INTO node_list_generation (id, n) VALUES (1, 0);

CREATE TRIGGER node_search_insert AFTER INSERT ON node_facts BEGIN
  INSERT INTO node_search (rowid, search) VALUES (new.seq_no, new.search);
  UPDATE node_list_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER node_search_update AFTER UPDATE ON node_facts BEGIN
  DELETE FROM node_search WHERE rowid = old.seq_no;
  INSERT INTO node_search (rowid, search) VALUES (new.seq_no, new.search);
  UPDATE node_list_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER node_search_delete AFTER DELETE ON node_facts BEGIN
  DELETE FROM node_search WHERE rowid = old.seq_no;
  UPDATE node_list_generation SET n = n + 1 WHERE id = 1;
END;

-- The events total the dashboard and the events page show, kept instead of counted.
CREATE TABLE event_count (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT INTO event_count (id, n) SELECT 1, COUNT(*) FROM events;
CREATE TRIGGER event_count_insert AFTER INSERT ON events BEGIN
  UPDATE event_count SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER event_count_delete AFTER DELETE ON events BEGIN
  UPDATE event_count SET n = n - 1 WHERE id = 1;
END;
`,
  },
  {
    version: 25,
    name: 'apps-issued',
    sql: `
-- The digest of the declaration Corral last sent to the engine, per app (issue 21). The engine keeps
-- reporting rollback_completed until the next update, so a rollback is the failure of the current
-- declaration only if that declaration was sent. Kept in memory until now, so after a master restart (or a
-- failover) the first failure of a rollout in flight was not recognised and the failing version was rolled
-- out again. Journaled with the row: a backup master that takes over knows it too.
ALTER TABLE apps ADD COLUMN issued TEXT;
`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);
