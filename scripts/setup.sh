#!/usr/bin/env bash
# Installs what a command needs, idempotently: Debian packages (only those missing, so a second run does no
# apt work), npm packages (npm ci when the lock file changed), the TypeScript build, and the Debian kernel
# of the node environment (apt-get download, cached in /var/cache/corral).
#
#   setup.sh --main   what the master and the virtual lab use at run time (`npm start`)
#   setup.sh --test   that plus the tests' reference peers and tools (`npm test`, `npm run bench`)
#   setup.sh          both (same as --test)
#   setup.sh --main|--test --list   print that set's Debian packages, one a line, and do nothing else
set -euo pipefail
cd "$(dirname "$0")/.."

mode=test
case "${1:-}" in
  --main) mode=main ;;
  --test | "") mode=test ;;
  *)
    echo "usage: scripts/setup.sh [--main|--test] [--list]" >&2
    exit 2
    ;;
esac
list=false
[ "${2:-}" = --list ] && list=true

# Every program the master and the lab run (features off by default included: a real master may turn on
# HA or IPMI power control): HAProxy for services, nfs-ganesha for shared roots, keepalived for HA,
# ipmitool for power, debootstrap for `corral image build-debian`.
MAIN_PACKAGES=(
  # boot files the master serves (undionly.kpxe, ipxe.efi; the Secure Boot chain shim → signed GRUB)
  ipxe shim-signed grub-efi-amd64-signed
  # the Secure Boot chain over UEFI HTTP boot: the ISO the master builds (xorriso) with its FAT boot image (mtools)
  xorriso mtools
  # the virtual lab: VMs, their iPXE option ROMs and UEFI firmware; qcow2 disks (also image import)
  qemu-system-x86 ipxe-qemu qemu-utils ovmf iproute2
  # the node environment builder (busybox initramfs, modinfo/depmod) and the installer's tools
  busybox-static kmod zstd fdisk dosfstools e2fsprogs
  # OS image builder, the master's SSH identity (ssh-keygen), load balancer, shared-root NFS server
  debootstrap openssh-client haproxy nfs-ganesha nfs-ganesha-vfs btrfs-progs keepalived ipmitool
  procps ca-certificates
  # peer-to-peer image downloads (issue 19): the tracker the master runs, aria2c for the installer tools
  opentracker aria2
  # DNS-SD for the cluster zone (issue 21): the authoritative server the master runs
  knot
  # the image registry on the master that apps pull from (issue 21)
  docker-registry
)
# Test-only peers: reference servers and clients, load tools, browsers, simulated BMCs.
TEST_PACKAGES=(
  udhcpc isc-dhcp-client isc-dhcp-relay tftp-hpa atftp tftpd-hpa dnsmasq-base kea-admin
  chromium wrk postgresql openipmi openssh-server cpio curl radvd python3 prometheus prometheus-node-exporter cloud-init
  # the serial console's integration test (issue 20): a shell on a pty behind a Unix socket
  socat
  # peer-to-peer images (issue 19): mktorrent checks Corral's torrents give the same info-hash
  mktorrent
  # data snapshots of nodes (issue 17): a real MariaDB server and the sqlite3 CLI a node may use;
  # lvm2 for the LVM snapshot case (run in a VM where the host kernel lacks device-mapper)
  mariadb-server sqlite3 lvm2
  # DNS-SD (issue 21): dig queries the master's knot
  dnsutils
  # the boot storm benchmark's HTTP reference (issue 19: dnsmasq + nginx beside Corral in the same run)
  nginx
  # issue 21: a real dockerd pulls and runs the base image Corral pushed (registry test), and dockerd in
  # swarm mode on the apps test's engine nodes with the docker CLI
  docker.io
)

packages=("${MAIN_PACKAGES[@]}")
[ "$mode" = test ] && packages+=("${TEST_PACKAGES[@]}")
if $list; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup ($mode): installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # tftpd-hpa's postinst tries to start its service; there is none to start in a container.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup ($mode): Debian packages present"
fi
# Debian's tftpd-hpa starts a daemon on port 69 where it can; Corral serves TFTP itself.
if pgrep -x in.tftpd >/dev/null 2>&1 && [ -f /etc/default/tftpd-hpa ]; then
  (service tftpd-hpa stop || pkill -x in.tftpd) >/dev/null 2>&1 || true
fi
# Likewise Debian's nginx on port 80: the benchmark starts its own, in its namespace.
if pgrep -f "nginx: master process /usr/sbin/nginx" >/dev/null 2>&1; then
  (service nginx stop || pkill -f "nginx: master process /usr/sbin/nginx") >/dev/null 2>&1 || true
fi

stamp=node_modules/.corral-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci"
  npm ci --no-fund --no-audit --loglevel=error
  echo "$want" > "$stamp"
else
  echo "setup: npm packages present"
fi

echo "setup: building (tsc)"
npx tsc -p tsconfig.json
chmod +x dist/master/cli.js

# The node environment's kernel (generic; the tests also build the cloud flavour). Cached: with the
# current package unpacked under /var/cache/corral/kernels this only asks apt-cache for its version.
# Only root can write the cache; a non-root run leaves it to the first build.
if [ "$(id -u)" -eq 0 ]; then
  flavours=(generic)
  [ "$mode" = test ] && flavours+=(cloud)
  for f in "${flavours[@]}"; do
    node dist/master/cli.js node-image build --kernel-only --flavour "$f" --cache-dir /var/cache/corral
  done
fi
