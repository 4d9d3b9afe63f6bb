#!/usr/bin/env bash
# The main job: set up, then run the virtual lab (master + PXE-booting VMs) until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --main
exec node dist/master/cli.js lab --nodes "${CORRAL_LAB_NODES:-2}" "$@"
