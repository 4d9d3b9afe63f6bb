export { Store, JOURNALED, type Db, type Journal, type JournaledTable, type StoreOptions } from './db.js';
export { NodeStore, NODE_STATES, type NodeRecord, type NodeState, type NodePatch } from './nodes.js';
export { EventStore, type EventRecord, type NewEvent, type Severity } from './events.js';
export { SettingsStore } from './settings.js';
export { UserStore, type Role, type UserRecord } from './users.js';
export { ChangeStore, type ChangeRecord } from './changes.js';
export { SCHEMA_VERSION } from './migrations.js';
export { openRepos, type Repos } from './repos.js';
export { LeaseStore, type LeaseRecord, type ReservationRecord } from './leases.js';
