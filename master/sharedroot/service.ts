/**
 * Shared roots, the domain: create (from a directory or a registered image), edit a copy, publish it
 * atomically, roll back, delete; assign diskless nodes; and what the NFS server must export and what a
 * diskless node boots. Rows are written after the tree is complete on disk.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { provisioningSubnets, type FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { DisklessAssignment, SharedRootRecord, SharedRootVersion } from '../store/sharedroots.js';
import type { NodeRecord } from '../store/nodes.js';
import { CorralError } from '../util/errors.js';
import { transitionIn } from '../nodes/lifecycle.js';
import { imagePath, findImage } from '../images/registry.js';
import {
  buildVersion,
  copyVersion,
  removeRoot,
  removeVersion,
  ROOT_NAME,
  versionDir,
  type TreeSource,
} from './tree.js';
import { exportId, type NfsExport } from './ganesha-config.js';
import { ensureHostKeys, identityTar, nodeDir } from './identity.js';

export function sharedRootDir(config: Pick<FrozenConfig, 'sharedRoot' | 'dataDir'>): string {
  return config.sharedRoot.dir ?? join(config.dataDir, 'sharedroot');
}

export function statePseudo(mac: string): string {
  return `/state/${mac.replace(/:/g, '-')}`;
}

export function rootPseudo(name: string, version: number): string {
  return `/roots/${name}/${version}`;
}

export interface SharedRootView extends SharedRootRecord {
  versions: SharedRootVersion[];
  nodes: string[];
  path: string;
}

export interface DisklessBoot {
  rootName: string;
  version: number;
  rootId: string;
  /** Kernel parameters for the initramfs (corral.nfs=..., corral.persist=...). */
  params: string[];
}

export class SharedRoots {
  readonly dir: string;

  constructor(
    private readonly repos: Repos,
    private readonly config: FrozenConfig,
  ) {
    this.dir = sharedRootDir(config);
  }

  list(): SharedRootView[] {
    return this.repos.sharedRoots.list().map((r) => this.view(r));
  }

  get(name: string): SharedRootView {
    const r = this.repos.sharedRoots.get(name);
    if (!r) throw new CorralError('SHAREDROOT_NOT_FOUND', `no shared root named '${name}'`);
    return this.view(r);
  }

  private view(r: SharedRootRecord): SharedRootView {
    return {
      ...r,
      versions: this.repos.sharedRoots.versions(r.name),
      nodes: this.repos.sharedRoots.usedBy(r.name).map((mac) => this.repos.nodes.get(mac)?.name ?? mac),
      path: versionDir(this.dir, r.name, r.currentVersion),
    };
  }

  /** `corral sharedroot create NAME --from-dir DIR | --from-image IMG`. */
  async create(name: string, from: { dir?: string; image?: string }): Promise<SharedRootView> {
    if (!ROOT_NAME.test(name)) {
      throw new CorralError(
        'SHAREDROOT_INVALID',
        `shared root name '${name}' must be 1-32 lower-case letters, digits or -`,
      );
    }
    if (this.repos.sharedRoots.get(name))
      throw new CorralError('CONFLICT', `a shared root named '${name}' exists`);
    if ((from.dir === undefined) === (from.image === undefined)) {
      throw new CorralError('USAGE', 'give exactly one of --from-dir DIR or --from-image IMAGE');
    }
    let source: TreeSource;
    let label: string;
    if (from.image !== undefined) {
      const img = findImage(this.repos, from.image);
      if (img.format !== 'tar' && img.format !== 'tar.gz' && img.format !== 'tar.zst') {
        throw new CorralError(
          'SHAREDROOT_INVALID',
          `image ${img.name} is a ${img.format} disk image; a shared root needs a root filesystem tarball`,
        );
      }
      source = { kind: 'tarball', path: imagePath(this.config.dataDir, img), format: img.format };
      label = `image ${img.name}`;
    } else {
      source = { kind: 'dir', path: from.dir ?? '' };
      label = `dir ${from.dir}`;
    }
    await removeRoot(this.dir, name); // leftovers of a failed earlier attempt (no row exists)
    const { rootId } = await buildVersion(this.dir, name, 1, source);
    this.repos.store.write((journal) => {
      this.repos.sharedRoots.upsertRootIn(journal, { name, currentVersion: 1, source: label });
      this.repos.sharedRoots.upsertVersionIn(journal, {
        name,
        version: 1,
        rootId,
        state: 'ready',
        note: 'created',
      });
      this.repos.events.appendIn(journal, {
        nodeMac: null,
        kind: 'sharedroot.created',
        message: `shared root ${name} created from ${label} (${rootId})`,
        actor: 'system',
        data: { name, rootId },
      });
    });
    return this.get(name);
  }

  /**
   * A draft: a copy of the current version to edit on the master (on btrfs a writable snapshot, instant);
   * nodes do not see it until published.
   */
  async edit(name: string): Promise<{ version: number; path: string }> {
    const root = this.get(name);
    const draft = root.versions.find((v) => v.state === 'draft');
    if (draft) return { version: draft.version, path: versionDir(this.dir, name, draft.version) };
    const next = Math.max(...root.versions.map((v) => v.version)) + 1;
    const { rootId, method } = await copyVersion(this.dir, name, root.currentVersion, next);
    this.repos.store.write((journal) =>
      this.repos.sharedRoots.upsertVersionIn(journal, {
        name,
        version: next,
        rootId,
        state: 'draft',
        note: `${method === 'btrfs-snapshot' ? 'btrfs snapshot' : 'copy'} of ${root.currentVersion}`,
      }),
    );
    return { version: next, path: versionDir(this.dir, name, next) };
  }

  /** Makes the draft (or `version`) current: one row update, so new boots switch atomically. */
  publish(name: string, version?: number): SharedRootView {
    const root = this.get(name);
    const target = version ?? root.versions.find((v) => v.state === 'draft')?.version;
    const v = target === undefined ? undefined : root.versions.find((x) => x.version === target);
    if (!v)
      throw new CorralError(
        'SHAREDROOT_NOT_FOUND',
        `shared root ${name} has no ${version === undefined ? 'draft (run edit first)' : `version ${version}`}`,
      );
    this.repos.store.write((journal) => {
      if (v.state !== 'ready') this.repos.sharedRoots.upsertVersionIn(journal, { ...v, state: 'ready' });
      this.repos.sharedRoots.upsertRootIn(journal, { name, currentVersion: v.version, source: root.source });
      this.repos.events.appendIn(journal, {
        nodeMac: null,
        kind: 'sharedroot.published',
        message: `shared root ${name}: version ${v.version} is current (was ${root.currentVersion}); nodes pick it up on reboot`,
        actor: 'system',
        data: { name, from: root.currentVersion, to: v.version },
      });
    });
    return this.get(name);
  }

  rollback(name: string, to?: number): SharedRootView {
    const root = this.get(name);
    const older = root.versions.filter((v) => v.state === 'ready' && v.version < root.currentVersion);
    const target = to ?? older[older.length - 1]?.version;
    if (target === undefined)
      throw new CorralError('SHAREDROOT_NOT_FOUND', `shared root ${name} has no earlier version`);
    return this.publish(name, target);
  }

  /** Deletes a version that is neither current nor booted by a node, or the whole root (no nodes). */
  async remove(name: string, version?: number): Promise<void> {
    const root = this.get(name);
    if (version === undefined) {
      if (root.nodes.length > 0)
        throw new CorralError(
          'SHAREDROOT_IN_USE',
          `shared root ${name} is assigned to ${root.nodes.join(', ')}`,
        );
      this.repos.store.write((journal) => this.repos.sharedRoots.deleteIn(journal, name));
      await removeRoot(this.dir, name);
      return;
    }
    if (version === root.currentVersion)
      throw new CorralError('SHAREDROOT_IN_USE', `version ${version} is current`);
    const booted = this.repos.sharedRoots
      .assignments()
      .filter((a) => a.rootName === name && a.bootedVersion === version);
    if (booted.length > 0)
      throw new CorralError('SHAREDROOT_IN_USE', `nodes still run version ${version}; reboot them first`);
    const v = root.versions.find((x) => x.version === version);
    if (!v) throw new CorralError('SHAREDROOT_NOT_FOUND', `shared root ${name} has no version ${version}`);
    this.repos.store.write((journal) => this.repos.sharedRoots.deleteVersionIn(journal, v.key));
    await removeVersion(this.dir, name, version);
  }

  /** `corral node diskless NODE --root NAME`: assign and move the node to `diskless` in one transaction. */
  assign(
    node: NodeRecord,
    rootName: string,
    opts: { persistent?: boolean; actor?: string | null } = {},
  ): DisklessAssignment {
    this.get(rootName);
    return this.repos.store.write((journal) => {
      const existing = this.repos.sharedRoots.assignment(node.mac);
      const a = this.repos.sharedRoots.assignIn(journal, {
        mac: node.mac,
        rootName,
        persistent: opts.persistent ?? false,
        machineId: existing?.machineId ?? randomBytes(16).toString('hex'),
      });
      transitionIn(this.repos, journal, node, {
        to: 'diskless',
        reason: `shared root ${rootName}`,
        actor: opts.actor ?? null,
        data: { root: rootName, persistent: a.persistent },
      });
      return a;
    });
  }

  /** What a diskless node boots now, or undefined (not diskless, not assigned, no NFS). */
  bootFor(node: NodeRecord): DisklessBoot | undefined {
    if (node.state !== 'diskless' || !this.config.sharedRoot.enabled) return undefined;
    const a = this.repos.sharedRoots.assignment(node.mac);
    const root = a && this.repos.sharedRoots.get(a.rootName);
    const v = root && this.repos.sharedRoots.version(root.name, root.currentVersion);
    if (!a || !root || !v) return undefined;
    const server = this.config.address;
    const params = [
      `corral.nfs=${server}:${rootPseudo(root.name, v.version)}`,
      `corral.nfsvers=${this.config.sharedRoot.nfsVersion}`,
      `corral.rwsize=${this.config.sharedRoot.overlaySize}`,
    ];
    if (a.persistent && node.ip) params.push(`corral.persist=${server}:${statePseudo(node.mac)}`);
    return { rootName: root.name, version: v.version, rootId: v.rootId, params };
  }

  /** Every retained ready version read-only to the provisioning subnets; each persistent node directory read-write to its node. */
  exports(): NfsExport[] {
    const out: NfsExport[] = [];
    for (const v of this.repos.sharedRoots.allVersions()) {
      if (v.state !== 'ready') continue;
      const pseudo = rootPseudo(v.name, v.version);
      out.push({
        id: exportId(pseudo),
        path: versionDir(this.dir, v.name, v.version),
        pseudo,
        access: 'RO',
        clients: [...(this.config.sharedRoot.clients ?? provisioningSubnets(this.config))],
        comment: `shared root ${v.name} version ${v.version} (${v.rootId})`,
      });
    }
    for (const a of this.repos.sharedRoots.assignments()) {
      const node = this.repos.nodes.get(a.mac);
      if (!a.persistent || !node?.ip) continue;
      const pseudo = statePseudo(a.mac);
      out.push({
        id: exportId(pseudo),
        path: join(this.dir, 'state', a.mac.replace(/:/g, '-')),
        pseudo,
        access: 'RW',
        clients: [node.ip],
        comment: `persistent directory of ${node.name}`,
      });
    }
    return out;
  }

  /** The identity tar a diskless node unpacks over its overlay. */
  async identity(node: NodeRecord): Promise<Buffer> {
    const a = this.repos.sharedRoots.assignment(node.mac);
    if (!a) throw new CorralError('NODE_NOT_FOUND', `${node.name} is not a diskless node`);
    return identityTar({
      hostname: node.name,
      mac: node.mac,
      machineId: a.machineId,
      masterAddress: this.config.address,
      hostKeys: await ensureHostKeys(nodeDir(this.dir, node.mac)),
    });
  }

  /** The initramfs reports the root id it mounted; recorded with an event. */
  booted(node: NodeRecord, rootId: string, address: string | null): { version: number | null } {
    const a = this.repos.sharedRoots.assignment(node.mac);
    const v = a ? this.repos.sharedRoots.versions(a.rootName).find((x) => x.rootId === rootId) : undefined;
    this.repos.store.write((journal) => {
      if (a && v) this.repos.sharedRoots.markBootedIn(journal, node.mac, v.version);
      this.repos.events.appendIn(journal, {
        nodeMac: node.mac,
        kind: 'sharedroot.booted',
        severity: v ? 'info' : 'warning',
        message: v
          ? `${node.name} booted shared root ${v.name} version ${v.version}${address ? ` at ${address}` : ''}`
          : `${node.name} booted an unknown shared root id '${rootId}'`,
        actor: 'agent',
        data: { rootId, address },
      });
    });
    return { version: v?.version ?? null };
  }
}
