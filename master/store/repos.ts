import type { Logger } from '../util/logger.js';
import { SqliteStore, type Store } from './db.js';
import { NodeStore } from './nodes.js';
import { EventStore } from './events.js';
import { SettingsStore } from './settings.js';
import { UserStore } from './users.js';
import { ChangeStore } from './changes.js';
import { AuditStore } from './audit.js';
import { AccountStore } from './accounts.js';
import { MetricStore } from './metrics.js';
import { ImageStore } from './images.js';
import { DeploymentStore } from './deployments.js';
import { ServiceStore } from './services.js';
import { PowerConfigStore } from './power-configs.js';
import { ExecRunStore } from './exec-runs.js';
import { SharedRootStore } from './sharedroots.js';
import { NodeCredentialStore } from './node-credentials.js';
import { BootActivityStore } from './boot-activity.js';
import { SessionStore } from './sessions.js';
import { SnapshotStore } from './snapshots.js';
import { EnrolmentRuleStore } from './enrolment-rules.js';
import { CloudInitLayerStore } from './cloud-init-layers.js';
import { AppStore } from './apps.js';

/**
 * Every aggregate's narrow interface over one database; passed to domain modules instead of the raw db.
 * `store` gives transactions (`write`), replication and lifecycle, not SQL: the handle stays in store/.
 */
export interface Repos {
  store: Store;
  nodes: NodeStore;
  events: EventStore;
  settings: SettingsStore;
  users: UserStore;
  changes: ChangeStore;
  audit: AuditStore;
  accounts: AccountStore;
  metrics: MetricStore;
  images: ImageStore;
  deployments: DeploymentStore;
  services: ServiceStore;
  powerConfigs: PowerConfigStore;
  execRuns: ExecRunStore;
  sharedRoots: SharedRootStore;
  nodeCredentials: NodeCredentialStore;
  bootActivity: BootActivityStore;
  sessions: SessionStore;
  snapshots: SnapshotStore;
  enrolmentRules: EnrolmentRuleStore;
  cloudInitLayers: CloudInitLayerStore;
  apps: AppStore;
}

export function openRepos(options: { path: string; logger: Logger; now?: () => Date }): Repos {
  const store = new SqliteStore(options);
  return {
    store,
    nodes: new NodeStore(store),
    events: new EventStore(store),
    settings: new SettingsStore(store),
    users: new UserStore(store),
    changes: new ChangeStore(store),
    audit: new AuditStore(store),
    accounts: new AccountStore(store),
    metrics: new MetricStore(store),
    images: new ImageStore(store),
    deployments: new DeploymentStore(store),
    services: new ServiceStore(store),
    powerConfigs: new PowerConfigStore(store),
    execRuns: new ExecRunStore(store),
    sharedRoots: new SharedRootStore(store),
    nodeCredentials: new NodeCredentialStore(store),
    bootActivity: new BootActivityStore(store),
    sessions: new SessionStore(store),
    snapshots: new SnapshotStore(store),
    enrolmentRules: new EnrolmentRuleStore(store),
    cloudInitLayers: new CloudInitLayerStore(store),
    apps: new AppStore(store),
  };
}
