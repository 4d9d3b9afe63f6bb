/**
 * Enrolment rules and tags as a feature (issue 16): the rules API and console page, and the hook the
 * node surface calls when a new machine enlists. After deploy, shared roots and remote in the feature
 * list: a rule's action goes through those features' own services.
 */
import express from 'express';
import type { ConsolePages, Started } from '../feature.js';
import type { NodeRecord } from '../store/nodes.js';
import { mountRules } from '../../web-ui/pages/rules.js';
import { startEnrolment, type Enrolment } from './index.js';

export type EnrolmentFeatureDeps = Parameters<typeof startEnrolment>[0];

export interface EnrolmentExposed {
  enrolment: Enrolment;
  /** A machine enlisted for the first time: the first matching rule acts on it (serialised). */
  onDiscovered(node: NodeRecord): void;
}

export function enrolmentPages(enrolment: Enrolment): ConsolePages {
  return (ctx) => {
    const router = express.Router();
    mountRules(router, ctx, enrolment);
    return router;
  };
}

export function startEnrolmentFeature(deps: EnrolmentFeatureDeps): Started<EnrolmentExposed> {
  const started = startEnrolment(deps);
  return {
    enrolment: started.enrolment,
    onDiscovered: (node) => started.onDiscovered(node),
    api: started.api,
    pages: enrolmentPages(started.enrolment),
    close: () => started.close(),
  };
}
