/**
 * The story's shared root: a few-megabyte busybox tree (Debian's busybox-static) that a diskless node
 * mounts read-only over NFS. Small on purpose: creating it takes a second, where the Debian image as a
 * shared root would unpack hundreds of megabytes on a 2-core machine. Its init prints one `corral:` line
 * on the serial console (the lab shows it) and serves the node's name on port 8000 with busybox httpd,
 * from the node's own tmpfs overlay.
 */
import { chmodSync, copyFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const APPLETS = ['sh', 'cat', 'echo', 'mount', 'hostname', 'mkdir', 'httpd', 'getty', 'login', 'sleep'];

/** The story's rcS: serves the node's name on port 8000 from /run (the tree is exported read-only). */
const DEMO_RCS = `#!/bin/sh
mkdir -p /run/www
echo "hello from $(hostname) (diskless, shared root $(cat /etc/corral-root-id))" > /run/www/index.html
httpd -p 8000 -h /run/www
echo "corral: diskless node $(hostname) is up on shared root $(cat /etc/corral-root-id)"
`;

/**
 * A busybox tree in `dir` (replacing it): busybox init, the applet links, root in /etc/passwd, a getty on
 * ttyS0 and `rcS` as /etc/init.d/rcS. `busybox` is a static busybox binary. The shared-root tests build
 * theirs with it too, with their own applets and rcS.
 */
export function makeBusyboxTree(
  dir: string,
  opts: { applets: readonly string[]; rcS: string; busybox?: string },
): void {
  rmSync(dir, { recursive: true, force: true });
  for (const d of ['bin', 'sbin', 'etc/init.d', 'proc', 'sys', 'dev', 'tmp', 'root', 'run', 'var', 'etc/ssh'])
    mkdirSync(join(dir, d), { recursive: true });
  copyFileSync(opts.busybox ?? '/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const a of opts.applets) symlinkSync('busybox', join(dir, 'bin', a));
  symlinkSync('../bin/busybox', join(dir, 'sbin/init'));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(
    join(dir, 'etc/inittab'),
    '::sysinit:/etc/init.d/rcS\nttyS0::respawn:/bin/getty -L 115200 ttyS0 vt100\n',
  );
  writeFileSync(join(dir, 'etc/init.d/rcS'), opts.rcS);
  chmodSync(join(dir, 'etc/init.d/rcS'), 0o755);
}

/** Writes the story's tree into `dir` (replacing it); `busybox` is a static busybox binary. */
export function makeDemoRoot(dir: string, busybox = '/bin/busybox'): void {
  makeBusyboxTree(dir, { applets: APPLETS, rcS: DEMO_RCS, busybox });
}
