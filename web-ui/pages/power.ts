/**
 * Console power actions (issue #11), posted from the node page's power panel: actions need an operator,
 * settings an admin. Both answer with a redirect back to the node page and a flash message.
 */
import type { Router } from 'express';
import { findNode } from '../../master/nodes/service.js';
import {
  POWER_ACTIONS,
  DRIVER_CHOICES,
  type DriverChoice,
  type PowerAction,
} from '../../master/remote/power-driver.js';
import type { PowerControl } from '../../master/remote/power.js';
import { isCorralError } from '../../master/util/errors.js';
import { formField, isConfirmed, withFlash } from '../form.js';
import { requireConsoleRole, type ConsoleContext } from '../page.js';
import { CONFIRMED_POWER_ACTIONS } from '../power-view.js';

export function mountPower(router: Router, ctx: ConsoleContext, power: PowerControl): void {
  // Before the :action route. Reading the BMC changes nothing, so any signed-in user may ask; the answer
  // is kept in the master (PowerControl.cachedBmc) and shown on the node page.
  router.post('/nodes/:id/power/bmc', async (req, res) => {
    requireConsoleRole(res, 'viewer');
    const node = findNode(ctx.repos.nodes, String(req.params['id'] ?? ''));
    const back = `/nodes/${encodeURIComponent(node.name)}`;
    try {
      const d = await power.bmcDetails(node);
      res.redirect(
        303,
        d
          ? withFlash(back, 'ok', `Read the BMC: ${d.logEntries.length} log entries.`)
          : withFlash(back, 'err', 'Only the Redfish driver reads the BMC inventory and log.'),
      );
    } catch (err) {
      if (!isCorralError(err)) throw err;
      res.redirect(303, withFlash(back, 'err', `${err.message}. ${err.hint}`));
    }
  });

  router.post('/nodes/:id/power/:action', async (req, res) => {
    const who = requireConsoleRole(res, 'operator');
    const node = findNode(ctx.repos.nodes, String(req.params['id'] ?? ''));
    const back = `/nodes/${encodeURIComponent(node.name)}`;
    const action = String(req.params['action'] ?? '') as PowerAction;
    if (!POWER_ACTIONS.includes(action))
      return void res.redirect(303, withFlash(back, 'err', `Unknown power action '${action}'.`));
    if (CONFIRMED_POWER_ACTIONS.includes(action) && !isConfirmed(req))
      return void res.redirect(
        303,
        withFlash(
          back,
          'err',
          `Tick "I confirm" to ${action === 'off' ? 'power off' : 'power-cycle'} ${node.name}.`,
        ),
      );
    try {
      const r = await power.act(node, action, who.user.name);
      res.redirect(
        303,
        withFlash(back, 'ok', `${r.message}${r.state !== 'unknown' ? `; power now ${r.state}` : ''}.`),
      );
    } catch (err) {
      if (!isCorralError(err)) throw err;
      res.redirect(303, withFlash(back, 'err', `${err.message}. ${err.hint}`));
    }
  });

  router.post('/nodes/:id/power', (req, res) => {
    const who = requireConsoleRole(res, 'admin');
    const node = findNode(ctx.repos.nodes, String(req.params['id'] ?? ''));
    const back = `/nodes/${encodeURIComponent(node.name)}`;
    const driver = formField(req, 'driver', 16) as DriverChoice;
    const portText = formField(req, 'port', 5);
    const password = formField(req, 'password', 128);
    try {
      if (!DRIVER_CHOICES.includes(driver)) throw new Error(`unknown driver '${driver}'`);
      if (portText && !/^\d{1,5}$/.test(portText)) throw new Error('the port must be a number');
      power.configure(
        node,
        {
          driver,
          address: formField(req, 'address', 253) || undefined,
          port: portText ? Number(portText) : undefined,
          username: formField(req, 'username', 64) || undefined,
          password: password || undefined,
          repin: formField(req, 'repin', 3) === 'yes',
        },
        who.user.name,
      );
      res.redirect(303, withFlash(back, 'ok', `Power driver ${driver} saved.`));
    } catch (err) {
      res.redirect(303, withFlash(back, 'err', (err as Error).message));
    }
  });
}
