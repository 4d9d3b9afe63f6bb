/**
 * The contract every feature keeps with the master (docs/architecture.md). A feature is one folder with
 * one entry, `start(deps)`, in `<folder>/feature.ts`. It takes only what it uses: its config slice,
 * narrow store ports (`Pick<Repos, ...>`), a logger and a clock (and what earlier features expose).
 * It returns a `Feature`; master.ts starts the features in the order of its list, mounts their routes
 * and pages, and closes them in reverse order, so no feature is wired by hand in three places.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Router } from 'express';
import type { ConsoleContext } from '../web-ui/page.js';
import type { HaRole } from './ha/controller.js';

/**
 * A feature's console pages. They are built once the console exists, because every page renders with
 * the console's shared context (renderer, sessions, the signed-in user): hence a function of it.
 */
export type ConsolePages = (console: ConsoleContext) => Router;

export interface Feature {
  /** Authenticated REST routes: mounted under /api/v1 after the one authentication boundary. */
  api?: Router;
  /** Console pages: mounted after the session guard, the CSRF check and the HA write gate. */
  pages?: ConsolePages;
  /** Facts for GET /api/v1/health, which answers without a login: never inventory or secrets. */
  health?(): Record<string, unknown>;
  /**
   * Work that needs the HTTP listeners (HA tells keepalived its port; HAProxy, the monitor). A feature
   * with `serve` is closed before the listeners, so its long-lived responses (the HA change feed, the
   * monitor's live stream) end before the listeners wait for in-flight requests.
   */
  serve?(http: { port: number }): Promise<void>;
  /**
   * With HA, only the VIP holder runs some services (DHCP, TFTP): told in list order on promotion and
   * in reverse order on demotion. Without HA a feature starts serving in `start`.
   */
  onRole?(role: HaRole): Promise<void>;
  /**
   * An HTTP Upgrade (WebSocket) on the listener that serves the console: answers true when the feature
   * took the socket (it then authenticates it itself), false to let the next feature look. An upgrade no
   * feature takes is refused, so no WebSocket path exists unless a feature checks its credentials.
   */
  upgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Stops everything `start` (and `serve`) started; must not throw for a half-started feature. */
  close(): Promise<void>;
}

/** A started feature with what it exposes to later features (typed by the feature itself). */
export type Started<Exposed extends object = object> = Feature & Exposed;
