#!/usr/bin/env bash
# Builds the Debian package of Corral (docs/install.md): `npm run package` → dist/package/corral_V_ARCH.deb.
#
#   scripts/package.sh [--version V] [--out DIR] [--no-build] [--no-lintian] [--source DIR]
#
# --version  the package version (default: package.json's); the installed package.json carries it too,
#            so `corral --version` names the package that is installed.
# --no-build use dist/ as it is (the caller just compiled it, as the package test does).
# --source   package the Corral in DIR (a built checkout of another commit; the upgrade test packages an
#            older release this way) with this checkout's packaging files.
#
# The package holds dist/ (without the tests), templates/, the console's views and assets, the node
# agent's files and the production npm packages, copied from node_modules as `npm ci` built them for
# this host's node: the native better-sqlite3 module is tied to that node's ABI, hence the nodejs
# version range in Depends (docs/decisions.md, "Debian package").
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

version=""
out="$REPO/dist/package"
build=1
lint=1
src="$REPO"
while (($#)); do
  case "$1" in
    --version) version=${2:?--version needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-lintian) lint=0; shift ;;
    --source) src=$(cd "${2:?--source needs a directory}" && pwd); shift 2 ;;
    *) echo "package: unknown argument '$1' (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done

# Tools, installed only when missing (dpkg-shlibdeps is in dpkg-dev; lintian checks the result).
need=()
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
((lint)) && ! command -v lintian >/dev/null && need+=(lintian)
if ((${#need[@]})); then
  echo "package: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

[ -n "$version" ] || version=$(node -p "require(process.argv[1]).version" "$src/package.json")
if ! [[ "$version" =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
  echo "package: '$version' is not a Debian version for a native package (digits first; letters, digits, . + ~)" >&2
  exit 2
fi
arch=$(dpkg --print-architecture)
# The Maintainer field and changelog signature: whoever builds it (git's identity), unless given.
maintainer=${CORRAL_MAINTAINER:-"$(git config user.name 2>/dev/null || echo Corral developers) <$(git config user.email 2>/dev/null || echo corral@users.noreply.github.com)>"}
node_major=$(node -p 'process.versions.node.split(".")[0]')

if ((build)); then
  echo "package: building (tsc)"
  (cd "$src" && npx tsc -p tsconfig.json)
fi
[ -f "$src/dist/master/cli.js" ] || { echo "package: $src/dist/master/cli.js missing: build first (npx tsc)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/corral-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
lib="$root/usr/lib/corral"
mkdir -p "$lib/dist" "$lib/web-ui" "$lib/node-images" "$root/DEBIAN"

# --- the program ---
cp -r "$src/dist/master" "$src/dist/web-ui" "$src/dist/node-images" "$lib/dist/"
cp -r "$src/templates" "$lib/"
cp -r "$src/web-ui/views" "$src/web-ui/public" "$lib/web-ui/"
cp -r "$src/node-images/agent" "$lib/node-images/"
# package.json: what the code reads at run time (type: module, version); no scripts or dev packages.
node -e '
  const [src, dst, version] = process.argv.slice(1);
  const p = JSON.parse(require("fs").readFileSync(src, "utf8"));
  const keep = { name: p.name, version, description: p.description, license: p.license, type: p.type,
                 private: true, engines: p.engines, dependencies: p.dependencies };
  require("fs").writeFileSync(dst, JSON.stringify(keep, null, 2) + "\n");
' "$src/package.json" "$lib/package.json" "$version"

# Production npm packages: the lock file's entries without "dev", those present on disk (an optional
# package that did not install, like cpu-features on some hosts, is absent there too).
node -e '
  const lock = JSON.parse(require("fs").readFileSync(process.argv[1] + "/package-lock.json", "utf8"));
  for (const [path, entry] of Object.entries(lock.packages))
    if (path.startsWith("node_modules/") && !entry.dev && !entry.link) console.log(path);
' "$src" >"$work/prod-modules"
while read -r m; do
  [ -d "$src/$m" ] || continue
  mkdir -p "$lib/$(dirname "$m")"
  cp -r "$src/$m" "$lib/$m"
done <"$work/prod-modules"
echo "package: $(wc -l <"$work/prod-modules") production npm packages"

# Native modules (every build/Release with a .node in it): keep the built .node files, drop sources,
# object files and test addons.
find "$lib/node_modules" -type d -path '*/build/Release' | while read -r rel; do
  find "$rel/.." -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
  find "$rel" -mindepth 1 ! -name '*.node' -exec rm -rf {} +
done
rm -rf "$lib/node_modules/better-sqlite3/deps" "$lib/node_modules/better-sqlite3/src" \
  "$lib/node_modules/better-sqlite3/build/Release/test_extension.node"
find "$lib/node_modules" -name '*.node' -exec strip --strip-unneeded {} + -exec chmod 644 {} +
# What npm publishes beside the code and the package does not need at run time: docs, tests, sources of
# compiled code, VCS and editor files (only at the top of each npm package, where they live).
find "$lib/node_modules" \( -name '*.md' -o -name '*.markdown' -o -name '*.ts' -o -name '*.map' \
  -o -name '.npmignore' -o -name '.gitattributes' -o -name '.gitignore' -o -name '.eslintrc*' \
  -o -name '.prettierrc*' -o -name '.editorconfig' -o -name '.travis.yml' -o -name '.github' \
  -o -name '.husky' -o -name 'binding.gyp' -o -name '*.gypi' -o -name 'Makefile' \) \
  ! -name 'LICENSE*' -prune -exec rm -rf {} +
for pkg in "$lib"/node_modules/* "$lib"/node_modules/@*/*; do
  [ -f "$pkg/package.json" ] || continue
  rm -rf "$pkg/test" "$pkg/tests" "$pkg/docs" "$pkg/benchmarks" "$pkg/example" "$pkg/examples" "$pkg"/*.html
done
find "$lib" -type d -empty -delete
# Mode by content: scripts (#!) executable, everything else not (npm keeps whatever bits the author had).
# Templates are data even where they start with #! (iPXE scripts: "#!ipxe").
find "$lib" -type f ! -name '*.node' -exec chmod 644 {} +
find "$lib/dist" "$lib/node_modules" "$lib/node-images" -type f ! -name '*.node' \
  -exec awk 'FNR == 1 && /^#!/ { print FILENAME } { nextfile }' {} + | xargs -r -d '\n' chmod 755
# A template that is a shell script for a node (#!/..., e.g. templates/data-snapshots/node.sh, sent over SSH)
# is a script to lintian too; "#!ipxe" templates stay data.
find "$lib/templates" -type f -exec awk 'FNR == 1 && /^#!\// { print FILENAME } { nextfile }' {} + |
  xargs -r -d '\n' chmod 755

# The native module must load in the node the package depends on (this host's).
node -e 'const D = require(process.argv[1]); new D(":memory:").prepare("SELECT 1").get();' \
  "$lib/node_modules/better-sqlite3" || {
  echo "package: better-sqlite3 in the package does not load with $(node --version)" >&2
  exit 1
}

# --- system integration ---
install -D -m 755 packaging/corral "$root/usr/bin/corral"
install -D -m 644 packaging/corral.service "$root/lib/systemd/system/corral.service"
install -D -m 644 packaging/corral.json "$root/etc/corral/corral.json"
install -D -m 644 packaging/debian/copyright "$root/usr/share/doc/corral/copyright"
install -D -m 644 docs/install.md "$root/usr/share/doc/corral/install.md"
install -D -m 644 packaging/corral.1 "$root/usr/share/man/man1/corral.1"
gzip -9n "$root/usr/share/man/man1/corral.1"
install -D -m 644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/corral"
# A native package's changelog: one entry for this build (the git history is the real one).
{
  echo "corral ($version) unstable; urgency=medium"
  echo
  echo "  * Package of Corral $version built from git $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo
  echo " -- $maintainer  $(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")"
} >"$root/usr/share/doc/corral/changelog"
gzip -9n "$root/usr/share/doc/corral/changelog"
for s in postinst prerm postrm; do install -m 755 "packaging/debian/$s" "$root/DEBIAN/$s"; done
echo /etc/corral/corral.json >"$root/DEBIAN/conffiles"

# Depends: the shared libraries of the native modules (dpkg-shlibdeps wants a debian/control to read),
# node within the major whose ABI the modules were built for, and the tools the master runs: iPXE's
# binaries (served by TFTP), ip, ssh-keygen and openssl (first start: SSH key, TLS certificate), and
# the node environment's and installer's builders. Optional capabilities' daemons are Recommends.
mkdir -p "$work/shlibs/debian"
printf 'Source: corral\n\nPackage: corral\nArchitecture: any\n' >"$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && find "$lib" -name '*.node' -print0 | xargs -0 dpkg-shlibdeps -O 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
tools="ipxe, iproute2, openssh-client, openssl, busybox-static, cpio, kmod, zstd, fdisk, dosfstools, e2fsprogs"
depends="nodejs (>= $node_major), nodejs (<< $((node_major + 1))), ${shlibs:+$shlibs, }$tools"

(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
  >"$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
  -e "s|@MAINTAINER@|$maintainer|" \
  packaging/debian/control.in >"$root/DEBIAN/control"

mkdir -p "$out"
deb="$out/corral_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "package: $deb ($(du -k "$deb" | cut -f1) KiB; installed $size KiB)"

if ((lint)); then
  # Errors and warnings fail the build; the overrides file says why each override is there.
  lintian --fail-on error,warning --tag-display-limit 0 "$deb"
  echo "package: lintian passed"
fi
