#!/usr/bin/env bash
# The one test command (README, .ci/run): set up, type-check and build, lint, then every test —
# unit, integration (network namespaces + real peers) and e2e (QEMU VMs PXE-booting from Corral).
set -euo pipefail
cd "$(dirname "$0")/.."
# Compiled tests from scratch: a test moved or deleted in the sources must not run on from an old dist/.
rm -rf dist/test
bash scripts/setup.sh --test

echo "== lint (eslint, prettier, madge)"
npm run --silent lint

echo "== tests"
if [ "$(id -u)" -ne 0 ]; then
  echo "tests: integration and e2e tests create network namespaces and need root" >&2
  exit 1
fi
# Files run one at a time: the namespace/QEMU tests each use most of a 2-core machine. Coverage is reported
# by node's runner; the summary it prints before the coverage table is repeated as the last line.
# A missing real peer fails its suite's `before` hook: node counts those tests as cancelled, and the run fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
node --test --test-concurrency=1 --experimental-test-coverage \
  --test-reporter=spec --test-reporter-destination=stdout \
  dist/test/unit/ dist/test/integration/ dist/test/e2e/ 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
count() { grep -aE "^ℹ $1 [0-9]+$" "$log" | tail -n 1 | awk '{print $3}'; }
echo "tests: $(count pass) passed, $(count fail) failed, $(count cancelled) cancelled, $(count skipped) skipped"
exit "$rc"
