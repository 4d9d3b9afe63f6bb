/**
 * The `next` target after login, accepted only if it is a path on this console: an absolute path with
 * no scheme, no host ("//evil.example" and "/\evil.example" are host-relative to browsers), no
 * backslash or control character. Anything else, and the login/logout pages themselves, go to "/".
 */
export function safeNextPath(value: unknown): string {
  if (typeof value !== 'string' || value.length > 2000) return '/';
  // eslint-disable-next-line no-control-regex
  if (!value.startsWith('/') || value.startsWith('//') || /[\\\u0000-\u001f\u007f]/.test(value)) return '/';
  const base = 'http://console.invalid';
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    return '/';
  }
  if (url.origin !== base) return '/';
  if (url.pathname === '/login' || url.pathname === '/logout') return '/';
  return url.pathname + url.search;
}
