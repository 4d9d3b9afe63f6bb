#!/usr/bin/env bash
# The main job: set up, then run the virtual lab until Ctrl-C. By default it plays ClusterMaker's story
# (two masters and a VIP, web nodes deployed by a rule behind HAProxy, a diskless node; docs/lab.md);
# `npm start -- --story=off` is the discovery-only lab. CORRAL_LAB_NODES / CORRAL_LAB_WEB set the VM counts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --main
exec node dist/master/cli.js lab ${CORRAL_LAB_NODES:+--nodes "$CORRAL_LAB_NODES"} \
  ${CORRAL_LAB_WEB:+--web "$CORRAL_LAB_WEB"} "$@"
