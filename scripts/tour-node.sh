#!/usr/bin/env bash
# The README's node-agent tour: a real calico-node enforcing a policy on the real kernel, checked
# with real packets, in network namespaces it makes and removes. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node dist/src/lab/tour-node.js
