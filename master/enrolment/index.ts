/**
 * The enrolment feature (issue 16): rules that enrol discovered machines, and node tags. One entry:
 * `startEnrolment(deps)` → its API router (mounted under /api/v1 after auth), its console pages, the
 * hook the enlist route calls for a new machine, and close().
 */
import type { Router } from 'express';
import type { Repos } from '../store/repos.js';
import type { NodeRecord } from '../store/nodes.js';
import { createEnrolmentApiRouter } from './api.js';
import { Enrolment, type EnrolmentDeps } from './service.js';

export { Enrolment } from './service.js';

export interface EnrolmentFeature {
  enrolment: Enrolment;
  api: Router;
  /** The enlist route calls this for a machine it has just recorded. */
  onDiscovered(node: NodeRecord): void;
  close(): Promise<void>;
}

export function startEnrolment(deps: EnrolmentDeps & { repos: Repos }): EnrolmentFeature {
  const enrolment = new Enrolment(deps);
  return {
    enrolment,
    api: createEnrolmentApiRouter(enrolment, deps.repos),
    onDiscovered: (node) => enrolment.onDiscovered(node),
    close: async () => {
      // Let a running rule finish its transaction before the store closes.
      await enrolment.idle();
    },
  };
}
