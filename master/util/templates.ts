import Handlebars from 'handlebars';
import { readFileSync } from 'node:fs';
import { installPath } from './paths.js';

const cache = new Map<string, Handlebars.TemplateDelegate>();

/**
 * Renders `templates/<name>` with Handlebars. Templates are data in, text out. `noEscape`: these are
 * daemon configs and boot scripts, not HTML, so callers pass only validated values.
 */
export function renderTemplate(name: string, vars: object): string {
  let tpl = cache.get(name);
  if (!tpl) {
    tpl = Handlebars.compile(readFileSync(installPath('templates', name), 'utf8'), {
      noEscape: true,
      strict: true,
    });
    cache.set(name, tpl);
  }
  return tpl(vars);
}
