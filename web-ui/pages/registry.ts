import type { Router } from 'express';
import { sendPage, type ConsoleContext } from '../page.js';

/** What the registry page shows: the feature's health facts (master/registry/feature.ts). */
export interface RegistryView {
  state: string;
  address: string;
  restarts: number;
  error?: string | null;
  baseReference: string;
  base: { state: string; digest?: string; uploaded?: number; reason?: string };
}

/** The registry page: is it serving, where engine nodes pull from, and the base image's push. */
export function mountRegistry(router: Router, ctx: ConsoleContext, view: () => RegistryView): void {
  router.get('/registry', (_req, res) => {
    const v = view();
    sendPage(ctx, res, 'registry', {
      title: 'Image registry',
      nav: 'registry',
      v,
      running: v.state === 'running',
    });
  });
}
