/**
 * A real OpenSSH server for tests, inside a namespace the test made: a fresh host key, the master's public
 * key as the only authorized key, no passwords or PAM. Shared by the tests that reach nodes over SSH
 * (remote-exec, node-metrics) so they configure sshd the same way.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor, type Host, type TestNet } from './netns.js';

export const SSHD = '/usr/sbin/sshd';

/** Writes `DIR/authorized_keys` (mode 0600) holding the master's public key. */
export function writeAuthorizedKeys(dir: string, publicKey: string): string {
  const file = join(dir, 'authorized_keys');
  writeFileSync(file, `${publicKey}\n`, { mode: 0o600 });
  return file;
}

/**
 * Generates a host key and an sshd config for `host` (port 22 on its address), checks the config with
 * `sshd -t`, and returns a function that starts sshd in the host's namespace (again after a kill, as in a
 * reboot) and waits, bounded, until its banner answers from `fromNs`.
 */
export function prepareSshd(
  net: TestNet,
  host: Host,
  opts: { dir: string; name: string; authorizedKeys: string; fromNs: string; extraConfig?: string[] },
): () => Promise<void> {
  // sshd insists on its privilege-separation directory (normally made by the service unit).
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKey = join(opts.dir, `${opts.name}.hostkey`);
  net.nsExec(host.ns, ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  const conf = join(opts.dir, `${opts.name}.sshd.conf`);
  writeFileSync(
    conf,
    [
      'Port 22',
      `ListenAddress ${host.address}`,
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${opts.authorizedKeys}`,
      `PidFile ${join(opts.dir, `${opts.name}.sshd.pid`)}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'LogLevel ERROR',
      ...(opts.extraConfig ?? []),
    ].join('\n') + '\n',
  );
  net.nsExec(host.ns, [SSHD, '-t', '-f', conf]);
  return async () => {
    net.spawnIn(host.ns, [SSHD, '-D', '-e', '-f', conf], { stdio: 'ignore' });
    await waitFor(
      `sshd on ${host.address}`,
      () => {
        try {
          return net
            .nsExec(opts.fromNs, ['bash', '-c', `exec 3<>/dev/tcp/${host.address}/22 && head -c 4 <&3`])
            .startsWith('SSH');
        } catch {
          return false;
        }
      },
      10_000,
      100,
    );
  };
}
