import type { Router } from 'express';
import type { HaStatus } from '../../master/ha/controller.js';
import { sendPage, type ConsoleContext } from '../page.js';

/** The HA page: this master's role and epoch, and replication lag (changes and seconds) either way. */
export function mountHa(router: Router, ctx: ConsoleContext, ha: { status(): HaStatus }): void {
  router.get('/ha', (_req, res) => {
    const s = ha.status();
    const lag = s.backup ?? s.follower;
    sendPage(ctx, res, 'ha', {
      title: 'High availability',
      nav: 'ha',
      s,
      isPrimary: s.role === 'primary',
      lagChanges: lag?.lagChanges ?? 0,
      lagSeconds: (lag?.lagSeconds ?? 0).toFixed(1),
      connected: lag?.connected ?? false,
    });
  });
}
