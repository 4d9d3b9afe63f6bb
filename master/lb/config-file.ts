/**
 * STYLE.md habit 7: render → temp file → `haproxy -c` → atomic rename → (caller) reload. The running
 * file is never half-written, a config HAProxy rejects never replaces it, and the previous file is kept
 * as `haproxy.cfg.prev` for the operator to diff.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { CorralError } from '../util/errors.js';
import { parseHaproxyVersion } from './render.js';

/** Runs `haproxy -c -f FILE`; throws LB_CONFIG_INVALID with HAProxy's own alert lines. */
export function checkConfig(bin: string, file: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(bin, ['-c', '-q', '-f', file], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (!err) return resolve();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        return reject(new CorralError('LB_HAPROXY_MISSING', `HAProxy binary '${bin}' not found`));
      }
      const alerts = `${stderr}\n${stdout}`
        .split('\n')
        .filter((l) => /ALERT|error/i.test(l))
        .slice(0, 5)
        .join(' | ');
      reject(
        new CorralError(
          'LB_CONFIG_INVALID',
          `haproxy -c rejected the rendered config: ${alerts || err.message}`,
        ),
      );
    });
  });
}

export function readConfig(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

/**
 * Installs `text` at `path` when it differs from what is there. Resolves true when the file changed
 * (the caller reloads), false when it was already in place.
 */
export async function installConfig(bin: string, path: string, text: string): Promise<boolean> {
  if (readConfig(path) === text) return false;
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o640 });
  try {
    await checkConfig(bin, tmp);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  if (existsSync(path)) copyFileSync(path, `${path}.prev`);
  renameSync(tmp, path);
  return true;
}

/** `haproxy -v` → [major, minor], or undefined when it cannot be run (the check then reports why). */
export function haproxyVersion(bin: string): Promise<[number, number] | undefined> {
  return new Promise((resolve) => {
    execFile(bin, ['-v'], { timeout: 5000 }, (err, stdout) =>
      resolve(err ? undefined : parseHaproxyVersion(stdout)),
    );
  });
}
