#!/usr/bin/env bash
# Fresh machine → the main job. Until the lab lands (issue 8) the main job is the tours:
# calicoctl against the embedded sqlite datastore (apply a multi-document YAML of Calico
# resources, read them back as tables and YAML, see a precise error for a broken file), IPAM
# (addresses taken as the CNI plugin takes them, then calicoctl ipam show/check/release), a real
# calico-node enforcing a policy on the kernel (checked with real packets, in namespaces), then
# calico-apiserver over HTTPS with calicoctl and kubectl as its clients.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/tour.sh
bash scripts/tour-ipam.sh
bash scripts/tour-node.sh
exec bash scripts/tour-apiserver.sh
