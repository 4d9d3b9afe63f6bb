/**
 * Which SSH host key the master accepts from each node, for `corral node exec` and node monitoring.
 * Without this, whoever answers on a node's address (a machine that took its IP on the provisioning
 * segment) receives the master's commands and returns made-up metrics.
 *
 * - A node whose host key Corral created is pinned to exactly that key, from the first connection on:
 *   diskless nodes (sharedroot/identity.ts generates it on the master and hands it to the node) and disk
 *   deploys (deploy/deployer.ts generates a fresh one per deployment, the installer lays it into the
 *   target; it becomes the node's key when the installer reports success, see adoptDeployKey).
 * - Any other node (deployed before Corral made keys for disk installs) is pinned to the key it shows on
 *   the first connection (trust on first use), recorded in DATA_DIR/ssh/known_nodes by MAC.
 *
 * A different key is refused: the connection is dropped before authentication (so the master's key never
 * signs for an impostor), and the caller gets an error that names both fingerprints.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import { nodeDir } from '../sharedroot/identity.js';
import { sharedRootDir } from '../sharedroot/service.js';

/** OpenSSH's fingerprint format: SHA256:base64 without padding (ssh-keygen -l). */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key blob of an OpenSSH public key line (`ssh-ed25519 AAAA… comment`). */
export function publicKeyBlob(line: string): Buffer | undefined {
  const b64 = line.trim().split(/\s+/)[1];
  return b64 && /^[A-Za-z0-9+/=]+$/.test(b64) ? Buffer.from(b64, 'base64') : undefined;
}

export interface HostKeyVerdict {
  ok: boolean;
  /** Set when refused: one sentence for the operator. */
  reason?: string;
  /** The key was seen for the first time and is now pinned. */
  pinned?: boolean;
}

export class HostKeyPins {
  private readonly file: string;

  constructor(
    dataDir: string,
    private readonly sharedRoots: string,
  ) {
    this.file = join(dataDir, 'ssh', 'known_nodes');
  }

  static forConfig(config: Pick<FrozenConfig, 'dataDir' | 'sharedRoot'>): HostKeyPins {
    return new HostKeyPins(config.dataDir, sharedRootDir(config));
  }

  /** Where the node's Corral-made host key lives (the private key, mode 0600; `.pub` beside it). */
  corralKeyPath(mac: string): string {
    return join(nodeDir(this.sharedRoots, mac), 'ssh', 'ssh_host_ed25519_key');
  }

  /**
   * Where a deployment's host key waits until its installer reports success: the node's running system
   * (if any) keeps its current key, and pin, until the new one is on its disk.
   */
  deployKeyPath(mac: string): string {
    return join(nodeDir(this.sharedRoots, mac), 'deploy', 'ssh_host_ed25519_key');
  }

  /** The key Corral made for this node, if it made one. */
  corralKey(mac: string): Buffer | undefined {
    const pub = `${this.corralKeyPath(mac)}.pub`;
    return existsSync(pub) ? publicKeyBlob(readFileSync(pub, 'utf8')) : undefined;
  }

  /**
   * The installer put the deployment's key (public half `pub`) on the node's disk: it becomes the node's
   * Corral-made key, pinned from the installed system's first connection on, and any first-contact pin of
   * the node's previous system is dropped (a reinstall legitimately changes the key). False when the
   * waiting key is not that one (a newer deploy replaced it): nothing changes then.
   */
  adoptDeployKey(mac: string, pub: string): boolean {
    const pending = this.deployKeyPath(mac);
    if (!existsSync(`${pending}.pub`) || readFileSync(`${pending}.pub`, 'utf8') !== pub) return false;
    const key = this.corralKeyPath(mac);
    mkdirSync(join(key, '..'), { recursive: true, mode: 0o700 });
    renameSync(pending, key);
    renameSync(`${pending}.pub`, `${key}.pub`);
    if (existsSync(this.file)) {
      const kept = readFileSync(this.file, 'utf8')
        .split('\n')
        .filter((l) => l.trim() && l.trim().split(/\s+/)[0] !== mac);
      writeFileSync(this.file, kept.map((l) => `${l}\n`).join(''), { mode: 0o600 });
    }
    return true;
  }

  /** The key pinned on first use, if any. */
  firstSeenKey(mac: string): Buffer | undefined {
    if (!existsSync(this.file)) return undefined;
    for (const line of readFileSync(this.file, 'utf8').split('\n')) {
      const [m, b64] = line.trim().split(/\s+/);
      if (m === mac && b64) return Buffer.from(b64, 'base64');
    }
    return undefined;
  }

  /** Decides on the key a node presented (the raw blob ssh2 hands to `hostVerifier`). */
  check(node: { mac: string; name: string }, key: Buffer): HostKeyVerdict {
    const made = this.corralKey(node.mac);
    const expected = made ?? this.firstSeenKey(node.mac);
    if (!expected) {
      mkdirSync(join(this.file, '..'), { recursive: true, mode: 0o700 });
      appendFileSync(this.file, `${node.mac} ${key.toString('base64')}\n`, { mode: 0o600 });
      return { ok: true, pinned: true };
    }
    if (expected.equals(key)) return { ok: true };
    const source = made
      ? 'the key Corral created for it'
      : `the key pinned on first contact (if it was reinstalled other than by a Corral deploy, remove its line from ${this.file})`;
    return {
      ok: false,
      reason:
        `SSH host key of ${node.name} (${node.mac}) is ${fingerprint(key)}, not ${fingerprint(expected)}, ` +
        `${source}: refused, something else may be answering on its address`,
    };
  }
}

/**
 * node-ssh/ssh2 connect options that pin the host key. The verdict is kept so the caller can report the
 * refusal in its own words (ssh2 itself only says "Host denied (verification failed)").
 */
export function pinnedConnect(
  pins: HostKeyPins,
  node: { mac: string; name: string },
): { hostVerifier: (key: Buffer) => boolean; verdict: () => HostKeyVerdict | undefined } {
  let verdict: HostKeyVerdict | undefined;
  return {
    hostVerifier: (key: Buffer) => {
      verdict = pins.check(node, key);
      return verdict.ok;
    },
    verdict: () => verdict,
  };
}

/** The event an operator sees (console Events, GET /api/v1/events) when a node's host key is refused. */
export function recordHostKeyRefusal(
  repos: Pick<Repos, 'events'>,
  node: { mac: string; name: string },
  reason: string,
): void {
  try {
    repos.events.append({
      kind: 'node.ssh-host-key-refused',
      severity: 'warning',
      message: reason,
      actor: 'system',
      nodeMac: node.mac,
    });
  } catch {
    // A store that refuses writes (an HA backup): the refusal itself still stands and is logged by the caller.
  }
}
