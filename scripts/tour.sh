#!/usr/bin/env bash
# The README tour, runnable on its own once installed: every command echoed, then its output.
# Uses its own datastore file (CALICO_DATASTORE) so it never touches a real installation.
set -uo pipefail
cd "$(dirname "$0")/.."
export CALICO_DATASTORE="${CALICO_DATASTORE:-sqlite:$PWD/.tour/calico-ts.db}"
rm -rf .tour && mkdir -p .tour
calicoctl() { node dist/src/cli/main.js "$@"; }
run() {
  local shown=()
  for a in "$@"; do
    case "$a" in *[\ \{\"\']*) shown+=("'$a'") ;; *) shown+=("$a") ;; esac
  done
  echo "\$ calicoctl ${shown[*]}"
  calicoctl "$@"
  local rc=$?
  [ "$rc" -eq 0 ] || echo "(exit code $rc)"
  echo
}
run apply -f examples/quickstart.yaml
run get ippools -o wide
run get globalnetworkpolicies -o wide
run get networkpolicies -A
run get networkpolicy knp.default.web-ingress -n shop -o yaml
run label globalnetworkset bad-actors env=prod
run patch ippool pool-a -p '{"spec":{"natOutgoing":true}}'
run get ippool pool-a -o json
run apply -f examples/broken.yaml
run get globalnetworksets
run version
