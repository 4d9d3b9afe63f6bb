import type { Logger } from '../util/logger.js';
import { Store } from './db.js';
import { NodeStore } from './nodes.js';
import { EventStore } from './events.js';
import { SettingsStore } from './settings.js';
import { UserStore } from './users.js';
import { ChangeStore } from './changes.js';

/** Every aggregate's narrow interface over one Store; passed to domain modules instead of the raw db. */
export interface Repos {
  store: Store;
  nodes: NodeStore;
  events: EventStore;
  settings: SettingsStore;
  users: UserStore;
  changes: ChangeStore;
}

export function openRepos(options: { path: string; logger: Logger; now?: () => Date }): Repos {
  const store = new Store(options);
  return {
    store,
    nodes: new NodeStore(store),
    events: new EventStore(store),
    settings: new SettingsStore(store),
    users: new UserStore(store),
    changes: new ChangeStore(store),
  };
}
