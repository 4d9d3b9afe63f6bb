/**
 * Console pages for shared roots (issue 6): the list of roots with their NFS exports, one root with its
 * versions and the diskless nodes assigned to it, and the forms behind them. Every action calls the
 * same domain function as the API (`SharedRoots.assign`, `publish`, `rollback`, `edit`) with the same
 * minimum role, then reconciles the NFS server at once instead of waiting for the timer.
 */
import type { Request, Response, Router } from 'express';
import { roleAllows } from '../../master/api/auth.js';
import { findNode } from '../../master/nodes/service.js';
import type { SharedRootSubsystem } from '../../master/sharedroot/index.js';
import { rootPseudo } from '../../master/sharedroot/service.js';
import type { Role } from '../../master/store/users.js';
import { CorralError, isCorralError } from '../../master/util/errors.js';
import { flash, formField, withFlash } from '../form.js';
import { requireConsoleRole, sendPage, signedIn, type ConsoleContext } from '../page.js';

/** What the pages need of the running subsystem; tests pass one without an NFS server. */
export type ConsoleSharedRoots = Pick<SharedRootSubsystem, 'roots' | 'reconcile' | 'status'>;

const href = (name: string): string => `/sharedroots/${encodeURIComponent(name)}`;

export function mountSharedRoots(router: Router, ctx: ConsoleContext, sub: ConsoleSharedRoots): void {
  const role = (res: Response): Role => signedIn(res)?.user.role ?? 'viewer';
  /** Nodes a form may offer: every node, diskless ones marked with the root they boot. */
  const nodeOptions = (): { mac: string; label: string }[] => {
    const assigned = new Map(ctx.repos.sharedRoots.assignments().map((a) => [a.mac, a.rootName]));
    return ctx.repos.nodes.list().map((n) => ({
      mac: n.mac,
      label: `${n.name} (${n.mac}, ${n.state}${assigned.has(n.mac) ? ` on ${assigned.get(n.mac)}` : ''})`,
    }));
  };

  /** Runs a form action; a refusal the operator can fix comes back as a flash on `back`. */
  const act = (
    path: string,
    minRole: Role,
    back: (req: Request) => string,
    fn: (req: Request, actor: string) => Promise<string>,
  ): void => {
    router.post(path, async (req, res) => {
      const actor = requireConsoleRole(res, minRole).user.name;
      const target = back(req);
      try {
        const message = await fn(req, actor);
        await sub.reconcile();
        res.redirect(303, withFlash(target, 'ok', message));
      } catch (err) {
        if (!isCorralError(err) || err.status >= 500) throw err;
        res.redirect(303, withFlash(target, 'err', err.message));
      }
    });
  };

  router.get('/sharedroots', (req, res) => {
    const roots = sub.roots.list();
    sendPage(ctx, res, 'sharedroots', {
      title: 'Shared roots',
      nav: 'sharedroots',
      ...flash(req),
      nfs: sub.status(),
      canOperate: roleAllows(role(res), 'operator'),
      roots: roots.map((r) => ({
        ...r,
        href: href(r.name),
        rootId: r.versions.find((v) => v.version === r.currentVersion)?.rootId ?? null,
        exportPath: rootPseudo(r.name, r.currentVersion),
        versionList: r.versions.map((v) => `${v.version}${v.state === 'draft' ? ' (draft)' : ''}`).join(', '),
      })),
      nodeOptions: nodeOptions(),
    });
  });

  router.get('/sharedroots/:name', (req, res) => {
    const root = sub.roots.get(String(req.params['name'] ?? ''));
    const nodes = ctx.repos.sharedRoots
      .assignments()
      .filter((a) => a.rootName === root.name)
      .map((a) => {
        const n = ctx.repos.nodes.get(a.mac);
        return {
          ...a,
          name: n?.name ?? a.mac,
          state: n?.state ?? 'unknown',
          ip: n?.ip ?? null,
          nodeHref: `/nodes/${encodeURIComponent(a.mac)}`,
          stale: a.bootedVersion !== null && a.bootedVersion !== root.currentVersion,
        };
      });
    const canAdmin = roleAllows(role(res), 'admin');
    sendPage(ctx, res, 'sharedroot', {
      title: root.name,
      nav: 'sharedroots',
      ...flash(req),
      root,
      exportPath: rootPseudo(root.name, root.currentVersion),
      versions: [...root.versions].reverse().map((v) => ({
        ...v,
        current: v.version === root.currentVersion,
        exported: v.state === 'ready',
        exportPath: rootPseudo(root.name, v.version),
        nodes: nodes.filter((n) => n.bootedVersion === v.version).length,
        canPublish: canAdmin && v.version !== root.currentVersion,
      })),
      draft: root.versions.some((v) => v.state === 'draft'),
      canRollback:
        canAdmin && root.versions.some((v) => v.state === 'ready' && v.version < root.currentVersion),
      nodes,
      canOperate: roleAllows(role(res), 'operator'),
      canAdmin,
      nodeOptions: nodeOptions(),
    });
  });

  act(
    '/sharedroots/diskless',
    'operator',
    (req) => {
      const name = formField(req, 'root', 32);
      return name && ctx.repos.sharedRoots.get(name) ? href(name) : '/sharedroots';
    },
    (req, actor) => {
      const rootName = formField(req, 'root', 32);
      if (!rootName) throw new CorralError('BODY_INVALID', 'Choose a shared root.');
      const node = findNode(ctx.repos.nodes, formField(req, 'node', 80));
      sub.roots.assign(node, rootName, { persistent: formField(req, 'persistent') === 'yes', actor });
      return Promise.resolve(
        `${node.name} is diskless on ${rootName}; it boots the shared root at its next PXE boot.`,
      );
    },
  );

  const byName = (req: Request): string => href(String(req.params['name'] ?? ''));
  act('/sharedroots/:name/edit', 'admin', byName, async (req) => {
    const d = await sub.roots.edit(String(req.params['name'] ?? ''));
    return `Draft version ${d.version} is at ${d.path}: change it there, then publish it.`;
  });
  act('/sharedroots/:name/publish', 'admin', byName, (req) => {
    const v = Number(formField(req, 'version', 10));
    const r = sub.roots.publish(
      String(req.params['name'] ?? ''),
      Number.isInteger(v) && v > 0 ? v : undefined,
    );
    return Promise.resolve(`Version ${r.currentVersion} is current; nodes pick it up when they reboot.`);
  });
  act('/sharedroots/:name/rollback', 'admin', byName, (req) => {
    const r = sub.roots.rollback(String(req.params['name'] ?? ''));
    return Promise.resolve(`Rolled back: version ${r.currentVersion} is current for new boots.`);
  });
}
