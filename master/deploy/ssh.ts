/**
 * The master's SSH identity: an ed25519 key pair in DATA_DIR/ssh, made with ssh-keygen on first start.
 * Its public key goes into every deployed node's /root/.ssh/authorized_keys (with deploy.sshAuthorizedKeys),
 * so the master (and an admin holding the key) can reach deployed nodes, e.g. to reboot them for a redeploy.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CorralError } from '../util/errors.js';

const exec = promisify(execFile);

export interface MasterKey {
  privateKeyPath: string;
  publicKey: string;
}

export function masterKeyPath(dataDir: string): string {
  return join(dataDir, 'ssh', 'id_ed25519');
}

export async function ensureMasterKey(dataDir: string): Promise<MasterKey> {
  const key = masterKeyPath(dataDir);
  if (!existsSync(key)) {
    mkdirSync(join(dataDir, 'ssh'), { recursive: true, mode: 0o700 });
    try {
      await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'corral-master', '-f', key], {
        timeout: 30_000,
      });
    } catch (err) {
      throw new CorralError(
        'INTERNAL',
        `ssh-keygen failed (install openssh-client): ${(err as Error).message}`,
      );
    }
  }
  return { privateKeyPath: key, publicKey: readFileSync(`${key}.pub`, 'utf8').trim() };
}

/**
 * OpenSSH's arguments for one command as root on a node with the master's key: batch mode (no prompt),
 * no host key file (a redeployed node has a new key), connect within 10 s.
 */
export function sshArgs(privateKeyPath: string, host: string, command: string): string[] {
  return [
    ...['-i', privateKeyPath, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no'],
    ...['-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=10', `root@${host}`, command],
  ];
}

/** Asks a deployed node to reboot over SSH (bounded to 20 s); resolves to an error text or null. */
export async function sshReboot(key: MasterKey, ip: string): Promise<string | null> {
  try {
    await exec('ssh', sshArgs(key.privateKeyPath, ip, 'systemctl reboot || reboot'), { timeout: 20_000 });
    return null;
  } catch (err) {
    // The connection drops as the node goes down: exit 255 after the command ran is success enough.
    const e = err as { code?: number; stderr?: string };
    if (e.code === 255 && /closed by remote host/i.test(e.stderr ?? '')) return null;
    return (e.stderr ?? (err as Error).message).trim().split('\n').slice(-1)[0] ?? 'ssh failed';
  }
}
