#!/usr/bin/env bash
# The lab, the README's main job: 3 hosts as network namespaces, a real calico-node per host
# (BGP mesh), demo workloads attached by the real calico CNI plugin, a demo policy set, and a
# connectivity matrix measured with real packets; then what to try. Replaces a lab left by an
# earlier run. Needs root and a build (scripts/install.sh). Extra arguments go to `lab up`
# (e.g. --ipv6, --nodes 5, --datastore etcd). Remove it with:
#   node dist/src/cli/main.js lab down
set -euo pipefail
cd "$(dirname "$0")/.."
node dist/src/cli/main.js lab down >/dev/null
exec node dist/src/cli/main.js lab up "$@"
