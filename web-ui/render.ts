import Handlebars from 'handlebars';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { formatBytes, formatRelative, formatTimestamp, plural } from './format.js';

type Template = Handlebars.TemplateDelegate;

export interface RendererOptions {
  /** Folder with `*.hbs` views, `layouts/*.hbs` and `partials/*.hbs`. */
  viewsDir: string;
  /** Clock for relative times ("5 min ago"). */
  now: () => number;
}

export interface Renderer {
  /** Renders `view` into `layout` (whose `{{{body}}}` receives the view's HTML). */
  render(view: string, context: Record<string, unknown>, layout?: string): string;
}

function hbsFiles(dir: string): { name: string; source: string }[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.hbs'))
    .map((e) => ({ name: basename(e.name, '.hbs'), source: readFileSync(join(dir, e.name), 'utf8') }));
}

function registerHelpers(hbs: typeof Handlebars, now: () => number): void {
  const esc = hbs.escapeExpression;
  hbs.registerHelper('bytes', (n: unknown) => formatBytes(typeof n === 'number' ? n : null));
  hbs.registerHelper('timestamp', (iso: unknown) => formatTimestamp(typeof iso === 'string' ? iso : null));
  // A <time> element: relative text to read at a glance, the exact UTC time on hover and for machines.
  hbs.registerHelper('ago', (iso: unknown) => {
    if (typeof iso !== 'string' || !iso) return new hbs.SafeString('<span class="muted">never</span>');
    return new hbs.SafeString(
      `<time datetime="${esc(iso)}" title="${esc(formatTimestamp(iso))}">${esc(formatRelative(iso, now()))}</time>`,
    );
  });
  hbs.registerHelper('json', (value: unknown) => JSON.stringify(value, null, 2));
  hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hbs.registerHelper('plural', (n: unknown, singular: unknown, pluralForm: unknown) =>
    plural(Number(n), String(singular), typeof pluralForm === 'string' ? pluralForm : undefined),
  );
  // "—" for an absent value, so tables never show empty cells that read like a rendering bug.
  hbs.registerHelper('dash', (value: unknown) =>
    value === null || value === undefined || value === '' ? '—' : String(value),
  );
}

/**
 * Loads every view, layout and partial once at start-up and compiles them into an isolated Handlebars
 * environment (the daemon-config templates in master/util/templates.ts use the global one, unescaped).
 * Parsing happens here, so a broken template stops the master at start rather than on first view.
 * HTML escaping is on: `{{x}}` is always safe, and only `{{{body}}}` in layouts is raw.
 */
export function createRenderer(options: RendererOptions): Renderer {
  const hbs = Handlebars.create();
  registerHelpers(hbs, options.now);
  const compile = (source: string): Template => hbs.compile(hbs.parse(source), { preventIndent: true });

  // A partial's final newline would land inside inline markup (a badge in a table cell): drop it.
  for (const p of hbsFiles(join(options.viewsDir, 'partials'))) {
    hbs.registerPartial(p.name, compile(p.source.replace(/\n$/, '')));
  }
  const layouts = new Map(
    hbsFiles(join(options.viewsDir, 'layouts')).map((l) => [l.name, compile(l.source)]),
  );
  const views = new Map(hbsFiles(options.viewsDir).map((v) => [v.name, compile(v.source)]));

  return {
    render(view, context, layout = 'main') {
      const viewTpl = views.get(view);
      if (!viewTpl) throw new Error(`no console view ${view}.hbs in ${options.viewsDir}`);
      const layoutTpl = layouts.get(layout);
      if (!layoutTpl) throw new Error(`no console layout ${layout}.hbs in ${options.viewsDir}`);
      return layoutTpl({ ...context, body: viewTpl(context) });
    },
  };
}
