import express, { type Router } from 'express';

/** The host part of a Host header (`10.0.0.1:80`, `[fe80::1]:80`, `corral`), or undefined when absent or odd. */
export function hostOnly(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d+)?$/.exec(header.trim());
  return m?.[1];
}

/**
 * What plain HTTP answers for console paths when HTTPS is on: a permanent redirect to the same path on
 * the HTTPS port. 308 (not 301) keeps a POST a POST. Boot files and the API are mounted before this and
 * keep answering on plain HTTP, because iPXE and the busybox agent cannot speak HTTPS.
 */
export function redirectToHttps(options: { httpsPort: number; fallbackHost: string }): Router {
  const router = express.Router();
  router.use((req, res) => {
    const host = hostOnly(req.headers.host) ?? options.fallbackHost;
    const port = options.httpsPort === 443 ? '' : `:${options.httpsPort}`;
    res.redirect(308, `https://${host}${port}${req.originalUrl}`);
  });
  return router;
}
