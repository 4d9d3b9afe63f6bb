/**
 * A small busybox root filesystem for shared-root tests: busybox-static with applet links, busybox init,
 * an rcS that reports what the node sees (root id, hostname, machine-id, host key, a per-node write) as
 * "corral-test:" lines on the console, and a getty on ttyS0 (the "login:" prompt the benchmark waits for).
 */
import { readdirSync, readFileSync, statSync, lstatSync, readlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { makeBusyboxTree } from '../../master/lab/demo-root.js';

const APPLETS = [
  'sh',
  'cat',
  'echo',
  'mount',
  'hostname',
  'sleep',
  'ls',
  'getty',
  'sha256sum',
  'cut',
  'grep',
  'login',
  'head',
];

export function makeBusyboxRoot(dir: string, writeDelaySeconds: number): void {
  makeBusyboxTree(dir, {
    applets: APPLETS,
    rcS: `#!/bin/sh
t() { echo "corral-test: $*"; }
t "root-id $(cat /etc/corral-root-id)"
t "hostname $(hostname)"
t "machine-id $(cat /etc/machine-id)"
t "hostkey $(sha256sum /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f1)"
t "root-fs $(grep ' / ' /proc/mounts | cut -d' ' -f1,3)"
echo "$(hostname)" > /root/written-by
# The other node writes the same path meanwhile: each must still read its own value.
sleep ${writeDelaySeconds}
t "written-by $(cat /root/written-by)"
t "rcS done"
`,
  });
}

/** A hash of every path, mode, link target and file content under `dir`: "unchanged" means equal. */
export function treeHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const p = join(rel, name);
      const st = lstatSync(join(dir, p));
      h.update(`${p}\0${st.mode}\0`);
      if (st.isSymbolicLink()) h.update(readlinkSync(join(dir, p)));
      else if (st.isDirectory()) walk(p);
      else if (statSync(join(dir, p)).isFile()) h.update(readFileSync(join(dir, p)));
    }
  };
  walk('.');
  return h.digest('hex');
}
