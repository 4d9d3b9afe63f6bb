import type { Request } from 'express';
import { CorralError } from '../master/util/errors.js';

/** A string field of an urlencoded form body, trimmed to `max` characters; '' when absent. */
export function formField(req: Request, name: string, max = 256): string {
  const body: unknown = req.body;
  const value = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  if (Array.isArray(value)) return typeof value[0] === 'string' ? value[0].slice(0, max) : '';
  return typeof value === 'string' ? value.slice(0, max) : '';
}

/** Every value of a repeated field (checkboxes). */
export function formList(req: Request, name: string, maxItems = 1000): string[] {
  const body: unknown = req.body;
  const value = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  const list = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return list.filter((v): v is string => typeof v === 'string').slice(0, maxItems);
}

const FLASH_MAX = 2000;

/**
 * A flash message carried across a POST-redirect-GET in the query string (`?ok=` / `?err=`). Long enough
 * for a bulk action's per-node outcomes; the cap keeps a crafted link from filling the page.
 */
export function flash(req: Request): { ok?: string; err?: string } {
  const ok = typeof req.query['ok'] === 'string' ? req.query['ok'].slice(0, FLASH_MAX) : undefined;
  const err = typeof req.query['err'] === 'string' ? req.query['err'].slice(0, FLASH_MAX) : undefined;
  return { ...(ok ? { ok } : {}), ...(err ? { err } : {}) };
}

export function withFlash(path: string, kind: 'ok' | 'err', message: string): string {
  const sep = path.includes('?') ? '&' : '?';
  return `${path}${sep}${kind}=${encodeURIComponent(message)}`;
}

/** The form's "I confirm" box was ticked (for pages that answer a missing tick with their own message). */
export function isConfirmed(req: Request): boolean {
  return formField(req, 'confirm') === 'yes';
}

/**
 * Destructive or disruptive actions (transitions, bulk, power off/cycle, deploy) need the form's "I confirm"
 * box ticked. Checked here on the server, so it holds without JavaScript and for a hand-made post.
 */
export function requireConfirmed(req: Request): void {
  if (!isConfirmed(req)) throw new CorralError('BODY_INVALID', 'Tick "I confirm" to carry out this action.');
}
