/**
 * haproxy.cfg goes in through the shared install step (master/daemons/config-install.ts): temp file →
 * `haproxy -c` → `haproxy.cfg.prev` keeps the previous file → atomic rename → (caller) reload. The
 * running file is never half-written, and a config HAProxy rejects never replaces it.
 */
import { execFile } from 'node:child_process';
import { installConfig as install, runCheck } from '../daemons/config-install.js';
import { parseHaproxyVersion } from './render.js';

/** Runs `haproxy -c -f FILE`; throws LB_CONFIG_INVALID with HAProxy's own alert lines. */
export function checkConfig(bin: string, file: string, timeoutMs = 10_000): Promise<void> {
  return runCheck({
    bin,
    args: ['-c', '-q', '-f', file],
    invalid: 'LB_CONFIG_INVALID',
    missing: 'LB_HAPROXY_MISSING',
    what: 'haproxy -c',
    summarise: (output) =>
      output
        .split('\n')
        .filter((l) => /ALERT|error/i.test(l))
        .slice(0, 5)
        .join(' | '),
    timeoutMs,
  });
}

/**
 * Installs `text` at `path` when it differs from what is there. Resolves true when the file changed
 * (the caller reloads), false when it was already in place.
 */
export function installConfig(bin: string, path: string, text: string): Promise<boolean> {
  return install({ path, text, mode: 0o640 }, (staged) => checkConfig(bin, staged));
}

/** `haproxy -v` → [major, minor], or undefined when it cannot be run (the check then reports why). */
export function haproxyVersion(bin: string): Promise<[number, number] | undefined> {
  return new Promise((resolve) => {
    execFile(bin, ['-v'], { timeout: 5000 }, (err, stdout) =>
      resolve(err ? undefined : parseHaproxyVersion(stdout)),
    );
  });
}
