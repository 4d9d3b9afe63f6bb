#!/usr/bin/env bash
# `npm run bench`: every benchmark in test/bench/, each printing its figures beside a reference measured in
# the same run (dnsmasq, tftpd-hpa, a direct backend, ...). Figures are printed, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
status=0
for b in dist/test/bench/*-bench.js; do
  echo
  echo "=== ${b#dist/test/bench/}"
  node "$b" || { echo "benchmark ${b} failed" >&2; status=1; }
done
exit $status
