#!/usr/bin/env bash
# Installs everything Corral and its tests need, idempotently: Debian packages (only those missing, so a
# second run does no apt work), npm packages (npm ci when the lock file changed), and the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  # boot protocols and their reference peers
  ipxe udhcpc isc-dhcp-client isc-dhcp-relay tftp-hpa atftp tftpd-hpa dnsmasq-base kea-admin
  # the virtual lab and the node environment
  qemu-system-x86 ipxe-qemu qemu-utils ovmf busybox-static cpio kmod zstd iproute2 debootstrap fdisk dosfstools openssh-client
  # later capabilities' real peers
  haproxy keepalived chromium wrk nfs-ganesha nfs-ganesha-vfs postgresql openipmi ipmitool openssh-server openssh-client
  # tools the scripts use
  curl ca-certificates procps
  # btrfs shared roots (subvolumes, snapshots) and their integration test
  btrfs-progs
)

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # tftpd-hpa's postinst tries to start its service; there is none to start in a container.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: Debian packages present"
fi
# Debian's tftpd-hpa starts a daemon on port 69 where it can; Corral serves TFTP itself.
if pgrep -x in.tftpd >/dev/null 2>&1 && [ -f /etc/default/tftpd-hpa ]; then
  (service tftpd-hpa stop || pkill -x in.tftpd) >/dev/null 2>&1 || true
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
