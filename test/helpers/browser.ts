import assert from 'node:assert/strict';
import type { Browser as Chromium } from 'playwright-core';

/** Debian's Chromium package: playwright-core drives it, so no browser is downloaded. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * A headless Chromium for the e2e test and `npm run screenshots`. No sandbox (tests may run as root in a
 * container), and nothing in the background that would reach for the internet.
 */
export async function launchChromium(): Promise<Chromium> {
  // Loaded on demand: the fetch-based Browser below is used by tests that never start Chromium.
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A browser of sorts: keeps cookies, never follows redirects, so each test sees every hop. */
export class Browser {
  readonly cookies = new Map<string, string>();
  constructor(private readonly base: string) {}

  async get(path: string): Promise<Response> {
    return this.keep(await fetch(this.base + path, { redirect: 'manual', headers: this.headers() }));
  }

  async post(
    path: string,
    form: Record<string, string>,
    extra: Record<string, string> = {},
  ): Promise<Response> {
    return this.keep(
      await fetch(this.base + path, {
        method: 'POST',
        redirect: 'manual',
        headers: { ...this.headers(), 'content-type': 'application/x-www-form-urlencoded', ...extra },
        body: new URLSearchParams(form).toString(),
      }),
    );
  }

  /** Loads the login form (for its token) and submits it. */
  async login(user: string, password: string, next = '/'): Promise<Response> {
    const form = await (await this.get('/login')).text();
    return this.post('/login', { _csrf: hiddenValue(form, '_csrf'), user, password, next });
  }

  /** The session's CSRF token, read from the sign-out form every signed-in page carries. */
  async csrfToken(): Promise<string> {
    return hiddenValue(await (await this.get('/')).text(), '_csrf');
  }

  private headers(): Record<string, string> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    return cookie ? { cookie } : {};
  }

  private keep(res: Response): Response {
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      if (/Max-Age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(eq + 1));
    }
    return res;
  }
}

export function hiddenValue(html: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  assert.ok(m?.[1], `page has a hidden ${name} field`);
  return m[1];
}
