#!/usr/bin/env bash
# Fresh machine → the main job: install everything, then bring the lab up (scripts/lab.sh:
# 3 hosts as network namespaces with a real calico-node each, BGP mesh, workloads attached by
# the real calico CNI plugin, a demo policy, a connectivity matrix measured with real packets)
# and print what to try. The lab stays up; `node dist/src/cli/main.js lab down` removes it.
# The tours (calicoctl, IPAM, the node agent, calico-apiserver) are `bash scripts/tours.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/lab.sh "$@"
echo
echo "The tours of calicoctl, IPAM, calico-node and calico-apiserver: bash scripts/tours.sh"
