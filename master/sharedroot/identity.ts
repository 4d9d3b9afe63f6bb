/**
 * Per-node identity of a diskless node: files the initramfs unpacks over the node's overlay before
 * switch_root. Host keys are generated on the master once per node (ssh-keygen) and kept under
 * SHAREDROOT_DIR/nodes/MAC/, so a node keeps its SSH identity across reboots and root versions.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { CorralError } from '../util/errors.js';
import { writeTar, type TarEntry } from './tar.js';

const exec = promisify(execFile);

export const HOST_KEY_TYPES = ['ed25519', 'ecdsa', 'rsa'] as const;

export interface IdentityInput {
  hostname: string;
  mac: string;
  machineId: string;
  /** Where the master reaches: written to /etc/hosts as `corral-master`. */
  masterAddress: string;
  /** Host keys by type: [private, public]. */
  hostKeys: Record<string, [Buffer, Buffer]>;
}

/** The files of a node's identity (pure; tested against a golden listing). */
export function identityEntries(i: IdentityInput): TarEntry[] {
  const text = (s: string): Buffer => Buffer.from(s, 'utf8');
  const entries: TarEntry[] = [
    { path: 'etc', type: 'dir', mode: 0o755 },
    { path: 'etc/hostname', type: 'file', mode: 0o644, data: text(`${i.hostname}\n`) },
    { path: 'etc/machine-id', type: 'file', mode: 0o444, data: text(`${i.machineId}\n`) },
    {
      path: 'etc/hosts',
      type: 'file',
      mode: 0o644,
      data: text(`127.0.0.1\tlocalhost\n127.0.1.1\t${i.hostname}\n${i.masterAddress}\tcorral-master\n`),
    },
    { path: 'etc/systemd', type: 'dir', mode: 0o755 },
    { path: 'etc/systemd/network', type: 'dir', mode: 0o755 },
    {
      // The root is on NFS over this NIC: networkd must never take the address away (KeepConfiguration).
      path: 'etc/systemd/network/10-corral-boot.network',
      type: 'file',
      mode: 0o644,
      data: text(
        `[Match]\nMACAddress=${i.mac}\n\n[Network]\nDHCP=ipv4\nKeepConfiguration=yes\n\n[DHCPv4]\nCriticalConnection=yes\n`,
      ),
    },
    { path: 'etc/ssh', type: 'dir', mode: 0o755 },
  ];
  for (const type of Object.keys(i.hostKeys).sort()) {
    const [priv, pub] = i.hostKeys[type] ?? [];
    if (!priv || !pub) continue;
    entries.push({ path: `etc/ssh/ssh_host_${type}_key`, type: 'file', mode: 0o600, data: priv });
    entries.push({ path: `etc/ssh/ssh_host_${type}_key.pub`, type: 'file', mode: 0o644, data: pub });
  }
  return entries;
}

export function identityTar(i: IdentityInput): Buffer {
  return writeTar(identityEntries(i));
}

export function nodeDir(sharedRootDir: string, mac: string): string {
  return join(sharedRootDir, 'nodes', mac.replace(/:/g, '-'));
}

/**
 * Makes an ed25519 host key pair at `key` and `key`.pub with ssh-keygen (into temporary names first, so
 * a crash never leaves half a pair). Shared by diskless identities and disk deploys (deploy/host-key.ts).
 */
export async function generateHostKey(key: string, comment: string): Promise<void> {
  await mkdir(dirname(key), { recursive: true, mode: 0o700 });
  const tmp = `${key}.tmp-${process.pid}`;
  await rm(tmp, { force: true });
  await rm(`${tmp}.pub`, { force: true });
  try {
    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', tmp], {
      timeout: 30_000,
    });
  } catch (err) {
    throw new CorralError(
      'INTERNAL',
      `ssh-keygen failed (install openssh-client): ${(err as Error).message}`,
    );
  }
  await rename(tmp, key);
  await rename(`${tmp}.pub`, `${key}.pub`);
}

/** The node's host keys, generated on first use (ed25519 only: fast, and what OpenSSH prefers). */
export async function ensureHostKeys(dir: string): Promise<Record<string, [Buffer, Buffer]>> {
  const key = join(dir, 'ssh', 'ssh_host_ed25519_key');
  if (!existsSync(`${key}.pub`)) await generateHostKey(key, 'corral-diskless');
  return { ed25519: [await readFile(key), await readFile(`${key}.pub`)] };
}
