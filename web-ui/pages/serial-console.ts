/**
 * The serial console pages (issue 20): a node's live console (xterm.js over the feature's WebSocket,
 * master/serial-console/feature.ts) and the replay of recorded sessions. Operators and admins only: a
 * serial console is an input path to the node (viewers neither type nor read recorded output).
 *
 * The live page relaxes the CSP for styles alone: xterm.js writes its geometry into <style> elements it
 * creates at run time (it has no nonce option), which `style-src 'self'` blocks. Scripts stay 'self'.
 */
import type { Router } from 'express';
import type { LineSource } from '../../master/serial-console/lines.js';
import type { Recordings } from '../../master/serial-console/recordings.js';
import { findNode } from '../../master/nodes/service.js';
import { requireConsoleRole, sendPage, type ConsoleContext } from '../page.js';

export interface SerialConsolePagesDeps {
  sourceOf(mac: string): LineSource | undefined;
  recordings: Recordings;
}

const TERMINAL_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function describe(source: LineSource | undefined): string | undefined {
  if (!source) return undefined;
  return source.kind === 'socket'
    ? `serial socket ${source.path}`
    : `serial-over-LAN of BMC ${source.host}:${source.port}`;
}

export function mountSerialConsole(router: Router, ctx: ConsoleContext, deps: SerialConsolePagesDeps): void {
  router.get('/nodes/:id/console', (req, res) => {
    const who = requireConsoleRole(res, 'operator');
    const node = findNode(ctx.repos.nodes, String(req.params['id'] ?? ''));
    res.set('Content-Security-Policy', TERMINAL_CSP);
    sendPage(ctx, res, 'serial-console', {
      title: `${node.name} console`,
      nav: 'nodes',
      node,
      live: true,
      isAdmin: who.user.role === 'admin',
      source: describe(deps.sourceOf(node.mac)),
      wsPath: `/nodes/${node.mac}/console/ws`,
      recordings: deps.recordings.list(node.mac).slice(0, 20),
    });
  });

  router.get('/nodes/:id/console/recordings/:rec', (req, res) => {
    requireConsoleRole(res, 'operator');
    const node = findNode(ctx.repos.nodes, String(req.params['id'] ?? ''));
    const { meta } = deps.recordings.read(node.mac, String(req.params['rec'] ?? ''));
    res.set('Content-Security-Policy', TERMINAL_CSP);
    sendPage(ctx, res, 'serial-console', {
      title: `${node.name} console recording`,
      nav: 'nodes',
      node,
      live: false,
      recording: meta,
      rawPath: `/nodes/${encodeURIComponent(node.mac)}/console/recordings/${meta.id}/output`,
    });
  });

  router.get('/nodes/:id/console/recordings/:rec/output', (req, res) => {
    requireConsoleRole(res, 'operator');
    const node = findNode(ctx.repos.nodes, String(req.params['id'] ?? ''));
    const { output } = deps.recordings.read(node.mac, String(req.params['rec'] ?? ''));
    res.set('Cache-Control', 'no-store').type('application/octet-stream').send(output);
  });
}
