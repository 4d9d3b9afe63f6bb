#!/usr/bin/env bash
# The architecture figures of issue 15, measured from a source tree with grep/awk (no build needed):
#   bash scripts/arch-counts.sh [TREE]          TREE defaults to this checkout
#   bash scripts/arch-counts.sh --commit REV    measures git commit REV (exported to a temporary dir)
# Every figure names its definition and lists what it counted, so a reader can check it by eye.
# docs/architecture-counts.md holds the before/after table.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cleanup=""
if [ "${1:-}" = "--commit" ]; then
  rev="${2:?--commit REV}"
  tree="$(mktemp -d /tmp/arch-counts.XXXXXX)"
  cleanup="$tree"
  git -C "$here" archive "$rev" | tar -x -C "$tree"
  label="commit $(git -C "$here" rev-parse --short "$rev")"
else
  tree="$(cd "${1:-$here}" && pwd)"
  label="$tree"
fi
trap '[ -n "$cleanup" ] && rm -rf "$cleanup"' EXIT
cd "$tree"

# Product sources: master/, web-ui/ and node-images/ TypeScript (no tests, no browser scripts).
product() { find master web-ui node-images -name '*.ts' -not -path '*/public/*' 2>/dev/null | sort; }
outside_store() { product | grep -v '^master/store/'; }
# Prints "N" then the matching lines/files indented, under a title.
report() {
  local title="$1" body="$2" n
  n=$(printf '%s' "$body" | grep -c . || true)
  printf '%-72s %s\n' "$title" "$n"
  [ "$n" -gt 0 ] && printf '%s\n' "$body" | sed 's/^/      /'
  return 0
}

echo "# Corral architecture counts ($label)"

# 1. startMaster: lines from `export async function startMaster` to the first line that is just `}`.
lines=$(awk '/^export async function startMaster/{s=NR} s && /^}/{print NR-s+1; exit}' master/master.ts)
imports=$(grep -cE '^import ' master/master.ts)
printf '%-72s %s\n' "startMaster length (lines, signature to closing brace)" "$lines"
printf '%-72s %s\n' "master/master.ts import statements" "$imports"

# 2. Node lookups. (a) by-name lookups written out: calls of nodes.getByName( outside master/store/;
# (b) places resolving a node reference (MAC or name) from a request or argument: calls of findNode( or
# <nodes service>.find( (the nodes service's lookup); (c) console files importing from master/api/.
report "node lookups by name written out (getByName( outside store/)" \
  "$(outside_store | xargs grep -nE 'getByName\(' || true)"
report "node-reference resolutions (findNode( / nodes.find( / nodeService.find()" \
  "$(outside_store | xargs grep -nE '\bfindNode\(|\bnodes\.find\(|[nN]odeService\.find\(|\bnodesService\.find\(' || true)"
report "console files importing from master/api/ (web-ui/ -> REST router code)" \
  "$(find web-ui -name '*.ts' | sort | xargs grep -lE "from '\.\./(\.\./)?master/api/" || true)"

# 3. The raw database outside store/: product files outside master/store/ that import better-sqlite3,
# import the handle types (Db, SqliteStore, sqliteOf), or reach a handle (`.db.` member, store.db).
raw=$(outside_store | xargs grep -lE "from 'better-sqlite3'|\bimport\b[^;]*\b(Db|SqliteStore|sqliteOf)\b[^;]*store/db\.js|\bstore\.db\b|\.db\.(prepare|exec|pragma|backup|transaction)\(" || true)
report "files touching the raw database outside master/store/" "$(printf '%s\n' "$raw" | grep -v '^master/snapshots/data/' || true)"
report "  of which master/snapshots/data/ (application databases, not Corral's)" \
  "$(printf '%s\n' "$raw" | grep '^master/snapshots/data/' || true)"
report "SQL statements outside master/store/ (.prepare( / .exec( with SQL keywords)" \
  "$(outside_store | grep -v '^master/snapshots/data/' | xargs grep -nE "\.(prepare|exec)\(\s*['\`\"](SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|PRAGMA)" || true)"
report "master/store/index.ts (had no importers)" "$(ls master/store/index.ts 2>/dev/null || true)"

# 4. Daemons: supervisors = files under master/ that spawn() a long-running child, leaving out the lab
# (VMs, namespaces), image import tools and application-database snapshots; the Supervisor instances;
# config-install step definitions (function install*Config*); and files outside master/daemons/ with
# their own renameSync of a daemon config (a path naming haproxy, keepalived, ganesha, *.cfg or *.conf).
report "daemon supervisor implementations (files calling spawn( for a daemon)" \
  "$(product | grep '^master/' | grep -vE '^master/(lab|images|snapshots/data)/' | xargs grep -lE '\bspawn\(' || true)"
report "supervised daemons (new Supervisor( sites)" "$(product | xargs grep -nE 'new Supervisor\(' || true)"
report "config-install step definitions (function install*Config*)" \
  "$(product | xargs grep -nE 'function install\w*Config\w*\(' || true)"
report "daemon configs renamed into place outside master/daemons/" \
  "$(product | grep -v '^master/daemons/' | xargs grep -nE 'renameSync\([^)]*(haproxy|keepalived|ganesha|\.cfg|\.conf\b)' || true)"

# 5. Node-facing HTTP: files under master/ registering a route a node calls without a login (iPXE
# script, enlistment, deploy/shared-root callbacks, image and installer downloads).
report "node-facing route files (routes a node calls: /ipxe /enlist /deploy/:mac ...)" \
  "$(product | xargs grep -lE "['\`](/ipxe|/enlist|/deploy/:mac[^'\`]*|/sharedroot/:mac[^'\`]*|/images/:sha256|/installer/[^'\`]*|/node-image/[^'\`]*)['\`]" || true)"

# 6. Repos: product files that name the Repos type or take a `repos` (importers of store/repos.js),
# and for each the distinct stores it reaches as repos.<store> (store = the transaction handle, not counted).
consumers=$(outside_store | xargs grep -lE "store/repos\.js'" || true)
n=$(printf '%s' "$consumers" | grep -c . || true)
printf '%-72s %s\n' "Repos consumers (product files importing store/repos.js)" "$n"
max=0
maxfile=""
for f in $consumers; do
  k=$(grep -oE '\brepos\.[a-zA-Z]+' "$f" | sort -u | grep -vc '\.store$' || true)
  if [ "$k" -gt "$max" ]; then
    max=$k
    maxfile=$f
  fi
done
printf '%-72s %s\n' "most stores any one consumer reaches (distinct repos.<store>)" "$max ($maxfile)"

# 7. parseArgs outside the CLI entry.
report "product files calling parseArgs( (only master/cli.ts should)" \
  "$(product | xargs grep -lE '\bparseArgs\(' || true)"

# 8. Test helper copies: definitions of the shared helpers' names outside test/helpers/{golden,api,ports,
# console,browser}.ts, and fixture-update checks outside test/helpers/golden.ts.
# A definition that only binds a target and calls the shared helper (apiOk/apiCall/goldenFile, or the
# real curl peer inside a namespace) within its first three lines is a wrapper, not a copy.
defs() {
  find test -name '*.ts' | grep -vE '^test/helpers/(golden|api|ports|console|browser)\.ts$' | sort | while read -r f; do
    awk -v f="$f" '
      { line[NR] = $0 }
      END {
        for (i = 1; i <= NR; i++) {
          if (line[i] !~ /(function (golden|api|apiOk|freePort|signIn|logIn|login)\(|const (golden|api|apiOk|freePort|signIn|logIn|login) = (async )?(<[^>]*>)?\()/) continue
          w = line[i] " " line[i+1] " " line[i+2]
          kind = (w ~ /(apiOk|apiCall|goldenFile|curl|\.signIn)(<.*>)?\(/) ? "wrapper" : "copy"
          print kind "\t" f ":" i ": " line[i]
        }
      }' "$f"
  done
}
all_defs=$(defs)
report "test helper copies (golden/api/freePort/signIn/login defined again outside the shared helpers)" \
  "$(printf '%s\n' "$all_defs" | awk -F'\t' '$1 == "copy" {print $2}')"
report "  thin wrappers that bind a target and call the shared helper (not copies)" \
  "$(printf '%s\n' "$all_defs" | awk -F'\t' '$1 == "wrapper" {print $2}')"
report "console harness copies (tests mounting createConsoleRouter themselves, not test/helpers/console.ts)" \
  "$(find test -name '*.ts' -not -path 'test/helpers/*' | sort | xargs grep -lE 'createConsoleRouter\(' || true)"
report "UPDATE_FIXTURES read outside test/helpers/golden.ts" \
  "$(find test -name '*.ts' -not -path 'test/helpers/golden.ts' | sort | xargs grep -nE "env\[?['.]?UPDATE_FIXTURES" || true)"
report "test/unit/ files that open sockets, start masters or namespaces, or download" \
  "$(find test/unit -name '*.ts' -not -name unit-tree.test.ts | sort | xargs grep -lE "from 'node:(net|dgram|http|https|http2|tls)'|\.listen\(|\bawait fetch\(|\bstartMaster\b|\b(TestNet|LabNet)\b|\b(ensureKernel|buildNodeImage|buildOsImage)\(" || true)"
report "tests that skip when a peer is missing ({ skip / t.skip( / describe skip)" \
  "$(find test -name '*.ts' | sort | xargs grep -nE "\{ skip[,: }]|\bskip: |\bt\.skip\(" || true)"
