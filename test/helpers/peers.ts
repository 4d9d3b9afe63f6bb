/**
 * Real peers the tests drive, and the Debian package of each. A missing peer FAILS the test with the
 * package to install, never skips it: a green run then always means the peer was really there.
 * scripts/setup.sh (MAIN_PACKAGES + TEST_PACKAGES) installs every package named here; test/unit/
 * setup-packages.test.ts checks that it does.
 */
import { existsSync } from 'node:fs';
import { hasCommand } from './netns.js';

/** Command (or absolute path) → the Debian package that provides it. */
export const PEER_PACKAGES: Readonly<Record<string, string>> = {
  keepalived: 'keepalived',
  haproxy: 'haproxy',
  'ganesha.nfsd': 'nfs-ganesha',
  'mkfs.btrfs': 'btrfs-progs',
  btrfs: 'btrfs-progs',
  udhcpc: 'udhcpc',
  dhclient: 'isc-dhcp-client',
  dhcrelay: 'isc-dhcp-relay',
  tftp: 'tftp-hpa',
  atftp: 'atftp',
  curl: 'curl',
  busybox: 'busybox-static',
  cpio: 'cpio',
  lvcreate: 'lvm2',
  '/usr/bin/chromium': 'chromium',
  ipmi_sim: 'openipmi',
  ipmitool: 'ipmitool',
  '/usr/sbin/sshd': 'openssh-server',
  'ssh-keygen': 'openssh-client',
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  ip: 'iproute2',
  python3: 'python3',
  prometheus: 'prometheus',
  'prometheus-node-exporter': 'prometheus-node-exporter',
  socat: 'socat',
  aria2c: 'aria2',
  opentracker: 'opentracker',
  mktorrent: 'mktorrent',
  tc: 'iproute2',
  xorriso: 'xorriso',
  mcopy: 'mtools',
  mdir: 'mtools',
  'mkfs.vfat': 'dosfstools',
  radvd: 'radvd',
  knotd: 'knot',
  knotc: 'knot',
  dig: 'dnsutils',
  'docker-registry': 'docker-registry',
  dockerd: 'docker.io',
  docker: 'docker.io',
  nsenter: 'util-linux',
};

export function missingPeersMessage(missing: readonly string[]): string {
  const pkgs = [...new Set(missing.map((c) => PEER_PACKAGES[c] ?? `(the package providing ${c})`))];
  return `missing real peer(s) ${missing.join(', ')}: install Debian package(s) ${pkgs.join(' ')} (bash scripts/setup.sh --test)`;
}

/** Throws (fails the test) unless every command is installed; call it in `before` or at a test's start. */
export function requirePeers(...commands: string[]): void {
  const missing = commands.filter((c) => !hasCommand(c));
  if (missing.length) throw new Error(missingPeersMessage(missing));
}

/** Throws unless the test runs as root (network namespaces, daemons binding privileged ports). */
export function requireRoot(why = 'network namespaces'): void {
  if (process.getuid?.() !== 0)
    throw new Error(`needs root (${why}): run the tests as root, as npm test does`);
}

/** Files a test needs from a package (firmware, boot files) → the Debian package that installs them. */
export const FILE_PACKAGES: Readonly<Record<string, string>> = {
  '/usr/lib/ipxe/undionly.kpxe': 'ipxe',
  '/usr/lib/ipxe/ipxe.efi': 'ipxe',
  '/usr/share/ovmf/OVMF.fd': 'ovmf',
  // Secure Boot (issue 18): OVMF with Microsoft's keys enrolled, and the signed chain the master serves.
  '/usr/share/OVMF/OVMF_CODE_4M.ms.fd': 'ovmf',
  '/usr/share/OVMF/OVMF_VARS_4M.ms.fd': 'ovmf',
  '/usr/lib/shim/shimx64.efi.signed': 'shim-signed',
  '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed': 'grub-efi-amd64-signed',
};

/**
 * Why a test cannot run here (not root, a peer or a file missing), with what to install; false when it
 * can. Give it to failIfUnmet in a `before` hook: the test then fails with that reason, never skips.
 */
export function unmetNeeds(needs: {
  root?: boolean;
  commands?: readonly string[];
  files?: readonly string[];
}): string | false {
  if (needs.root && process.getuid?.() !== 0)
    return 'needs root (network namespaces): run the tests as root, as npm test does';
  const commands = (needs.commands ?? []).filter((c) => !hasCommand(c));
  const files = (needs.files ?? []).filter((f) => !existsSync(f));
  if (!commands.length && !files.length) return false;
  const pkgs = [
    ...new Set([
      ...commands.map((c) => PEER_PACKAGES[c] ?? `(the package providing ${c})`),
      ...files.map((f) => FILE_PACKAGES[f] ?? `(the package providing ${f})`),
    ]),
  ];
  return `missing ${[...commands, ...files].join(', ')}: install Debian package(s) ${pkgs.join(' ')} (bash scripts/setup.sh --test)`;
}

/** Fails the test (in a `before` hook: every test of the file or suite) when `reason` is set. */
export function failIfUnmet(reason: string | false): void {
  if (reason) throw new Error(reason);
}
