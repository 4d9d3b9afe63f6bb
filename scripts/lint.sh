#!/usr/bin/env bash
# `npm run lint`: eslint, prettier and madge over the tree. The three are independent and single-threaded,
# so they run side by side (on 2 cores the step takes about as long as the slowest of them instead of the
# sum; docs/testing.md has the figures); each one's output is printed whole, in a fixed order, and the step
# fails if any of them failed.
# eslint and prettier keep a cache under .cache/ (gitignored, per checkout): a second run in the same
# checkout re-checks only files whose content changed. A fresh clone (CI) starts without one.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

names=(eslint prettier madge)
commands=(
  "npx eslint --max-warnings 0 --cache --cache-strategy content --cache-location .cache/eslint/ ."
  "npx prettier --check --cache --cache-strategy content --cache-location .cache/prettier/cache.json ."
  "npx madge --circular --extensions ts master web-ui"
)
pids=()
for i in "${!names[@]}"; do
  bash -c "${commands[$i]}" >"$out/$i" 2>&1 &
  pids+=($!)
done
failed=()
for i in "${!names[@]}"; do
  wait "${pids[$i]}" || failed+=("${names[$i]}")
  cat "$out/$i"
done
if ((${#failed[@]})); then
  echo "lint: failed: ${failed[*]}" >&2
  exit 1
fi
