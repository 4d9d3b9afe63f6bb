/**
 * UEFI HTTP boot's download: GET /boot/loader/NAME for the loader files the `bootFiles` slice names
 * (ipxe.efi by default), read from boot.ipxeDir. Unauthenticated like all of /boot (firmware cannot log
 * in); only the configured names are served, looked up in a fixed set, never a path from the URL.
 */
import express, { type RequestHandler, type Router } from 'express';
import { join } from 'node:path';
import type { BootActivitySink } from '../boot/activity.js';
import { sendFile } from '../boot/send-file.js';
import type { Logger } from '../util/logger.js';

export interface LoaderRouteDeps {
  /** Absolute directory holding the loader files (boot.ipxeDir). */
  dir: string;
  /** The names that may be served (loaderFileNames of the config). */
  names: readonly string[];
  logger: Logger;
  activity?: BootActivitySink;
}

/** The handler of the surface's `loader` row (boot/surface.ts): GET /boot/loader/:name. */
export function loaderHandler(deps: LoaderRouteDeps): RequestHandler {
  const allowed = new Set(deps.names);
  const log = deps.logger.child({ module: 'http-boot' });
  return (req, res) => {
    const name = String(req.params['name'] ?? '');
    if (!allowed.has(name)) {
      res.status(404).type('text/plain').send(`${name} is not a configured boot loader (bootFiles)\n`);
      return;
    }
    deps.activity?.watchFetch(req, res);
    log.info({ file: name, ip: req.socket.remoteAddress, range: req.headers.range }, 'HTTP boot loader');
    sendFile(res, join(deps.dir, name), log);
  };
}

/** The same handler on its own router (mounted at /boot/loader), for a test server without a master. */
export function createLoaderRouter(deps: LoaderRouteDeps): Router {
  return express.Router().get('/:name', loaderHandler(deps));
}
