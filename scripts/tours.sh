#!/usr/bin/env bash
# The tours (README "Tour"): calicoctl on the embedded sqlite datastore, IPAM, a real
# calico-node enforcing policy on the kernel, then calico-apiserver over HTTPS with calicoctl
# and kubectl as its clients. Needs a build (scripts/install.sh); the node tour needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/tour.sh
bash scripts/tour-ipam.sh
bash scripts/tour-node.sh
exec bash scripts/tour-apiserver.sh
