#!/usr/bin/env bash
# The README's IPAM tour: pools from the quickstart, a few pods' addresses taken the way the CNI
# plugin takes them, then `calicoctl ipam` to see, check and clean up. Own datastore file.
set -uo pipefail
cd "$(dirname "$0")/.."
export CALICO_DATASTORE="sqlite:$PWD/.tour/ipam.db"
mkdir -p .tour && rm -f .tour/ipam.db* .tour/ipam-report.json
show() {
  local shown=()
  for a in "$@"; do case "$a" in *[\ \{\"\']*) shown+=("'$a'") ;; *) shown+=("$a") ;; esac; done
  echo "\$ ${shown[*]}"; "$@" 2>&1; local rc=$?; [ "$rc" -eq 0 ] || echo "(exit code $rc)"; echo
}
calicoctl() { node dist/src/cli/main.js "$@"; }
calicoctl apply -f examples/quickstart.yaml >/dev/null
printf 'apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node-1}\nspec: {bgp: {ipv4Address: 198.18.0.1/24}}\n' |
  calicoctl apply -f - >/dev/null
show node examples/ipam-allocate.mjs node-1 shop web-1 web-2 db-1
show calicoctl ipam show --show-blocks
show calicoctl ipam show --ip=198.19.5.129
# No WorkloadEndpoint holds these addresses (no CNI plugin made them): ipam check calls them
# leak candidates. Calico's safe clean-up: lock the datastore, take a report, release, unlock.
show calicoctl datastore migrate lock
show calicoctl ipam check -o .tour/ipam-report.json
show calicoctl ipam release --from-report=.tour/ipam-report.json
show calicoctl datastore migrate unlock
show calicoctl ipam show
show calicoctl ipam configure --strictaffinity=true
show calicoctl ipam show --show-configuration
