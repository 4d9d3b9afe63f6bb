import type { Router } from 'express';
import { requireConsoleRole, sendPage, type ConsoleContext } from '../page.js';
import { settingSections } from '../settings-view.js';

/**
 * Settings (admin, read-only): the effective configuration this master runs with, defaults filled in, as
 * validated at start-up. Changing it means editing the config file and restarting: the config is frozen
 * once (docs/decisions.md), so a form here would only pretend.
 */
export function mountSettings(router: Router, ctx: ConsoleContext): void {
  router.get('/settings', (_req, res) => {
    requireConsoleRole(res, 'admin');
    sendPage(ctx, res, 'settings', {
      title: 'Settings',
      nav: 'settings',
      sections: settingSections(ctx.config as unknown as Record<string, unknown>),
    });
  });
}
