/**
 * The cloud-init layer for engine nodes (issue 21): dockerd trusts the master's registry over plain HTTP
 * (`insecure-registries`, https://docs.docker.com/reference/cli/dockerd/#insecure-registries), so a
 * deployed engine node pulls the base image and apps' images from the master with nothing from outside.
 * It is a tag (or role) layer like an operator's, so it shows and can be edited on the cloud-init page; an
 * existing layer for that tag/role is never overwritten. The deployed OS image must contain docker.io.
 */
import type { CloudInit } from '../cloudinit/service.js';
import type { Logger } from '../util/logger.js';
import type { AppsConfig } from './config.js';

export function engineLayer(registry: string): string {
  const daemon = JSON.stringify({ 'insecure-registries': [registry] });
  return [
    '#cloud-config',
    '# Written by Corral for engine nodes (apps, issue 21): dockerd trusts the master registry.',
    'write_files:',
    '  - path: /etc/docker/daemon.json',
    "    permissions: '0644'",
    `    content: '${daemon}'`,
    'runcmd:',
    '  - [systemctl, restart, docker]',
    '',
  ].join('\n');
}

/** Stores the engine layer unless one exists for the engine tag/role; returns whether it did. */
export function ensureEngineLayer(
  cloudInit: Pick<CloudInit, 'list' | 'set'>,
  engine: AppsConfig['engine'],
  registry: string,
  log: Logger,
): boolean {
  const scope = engine.role ? 'role' : 'tag';
  const target = engine.role ?? engine.tag;
  if (cloudInit.list().some((l) => l.scope === scope && l.target === target)) {
    log.info({ scope, target }, 'a cloud-init layer for engine nodes exists; left as it is');
    return false;
  }
  cloudInit.set(scope, target, engineLayer(registry), 'apps');
  log.info({ scope, target, registry }, 'cloud-init layer for engine nodes stored');
  return true;
}
