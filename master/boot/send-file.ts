/**
 * The one way Corral answers an HTTP request with a file from disk: node kernels and initrds, OS images,
 * installer tools, files a backup master copies. Every caller names the file by an absolute path it chose
 * itself (a fixed name in the data directory, a sha256 looked up in the catalogue, a path checked against
 * an allow-list); nothing here maps a URL onto the file system.
 *
 * Built on the `send` module (through res.sendFile) for Range (RFC 9110 section 14), conditional requests,
 * HEAD and Content-Length, which iPXE, the agent's wget and the installer rely on. `send` checks every
 * component of the path for a leading dot, and by default answers 404 with no body for a hit: written for
 * a URL under a web root, it also hid `/root/.lab/master/node-image/vmlinuz`, so `npm start` (data under
 * `.lab/`) could boot no node. The path here is the server's own, so dot components are allowed.
 */
import type { Response } from 'express';
import { statSync } from 'node:fs';
import { basename, isAbsolute, normalize } from 'node:path';
import type { Logger } from '../util/logger.js';

export interface SendFileOptions {
  /** Default true: ETag and Last-Modified let a client resume (If-Range) and revalidate. */
  validators?: boolean;
}

/**
 * Sends `file` (absolute, normalised) with Range support. A satisfiable Range gets 206 with
 * Content-Range; an unsatisfiable one 416 with `Content-Range: bytes *\/SIZE` (RFC 9110 section 15.5.17),
 * so the client can ask again; a missing file 404 with a one-line text body naming the file (not its path).
 */
export function sendFile(res: Response, file: string, log: Logger, opts: SendFileOptions = {}): void {
  // A programming error, not a request error: a relative or unnormalised path would make `send` resolve it
  // against the working directory or treat '..' as an attack.
  if (!isAbsolute(file) || normalize(file) !== file) {
    throw new Error(`sendFile needs an absolute, normalised path, not '${file}'`);
  }
  const validators = opts.validators ?? true;
  res.sendFile(
    file,
    {
      dotfiles: 'allow',
      acceptRanges: true,
      cacheControl: false,
      lastModified: validators,
      etag: validators,
    },
    (err) => {
      if (!err) return;
      const status = (err as { status?: number }).status ?? 500;
      const code = (err as { code?: string }).code;
      if (res.headersSent) {
        // The client went away mid-transfer (or the disk failed mid-file): nothing can be said to it now.
        if (code !== 'ECONNABORTED' && code !== 'ECONNRESET' && code !== 'EPIPE') {
          log.warn({ file, err: err.message }, 'file transfer ended early');
        }
        return;
      }
      if (status === 416) {
        let size: number | undefined;
        try {
          size = statSync(file).size;
        } catch {
          size = undefined;
        }
        if (size !== undefined) res.setHeader('Content-Range', `bytes */${size}`);
        res.status(416).end();
      } else if (status === 404) {
        log.warn({ file }, 'file to serve is missing');
        res
          .status(404)
          .type('text/plain')
          .send(`${basename(file)} not found on the master\n`);
      } else if (status >= 500) {
        log.warn({ file, err: err.message }, 'serving file failed');
        res
          .status(500)
          .type('text/plain')
          .send(`${basename(file)} could not be read on the master\n`);
      } else {
        // 304/412 never reach here (send answers them itself); 400/403 would mean a bad path from a caller.
        log.warn({ file, status, err: err.message }, 'file not served');
        res.status(status).end();
      }
    },
  );
}
