#!/usr/bin/env bash
# Installs everything calico-ts needs on a fresh Debian 12 machine (run as root):
# the Debian packages its build and tests use, then the npm dependencies, then the build.
# Idempotent: safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages. Keep this list in step with what the tests use.
#  - python3, make, g++: node-gyp builds better-sqlite3's native addon when no prebuilt binary
#    can be fetched (this machine reaches only the npm registry and Debian's packages).
#  - iproute2, nftables: the kernel tooling the dataplane and lab use.
#  - sqlite3: the sqlite CLI, handy for inspecting the embedded datastore file.
#  - etcd-server, etcd-client: the etcd driver's tests start a real etcd on loopback.
#  - openssl: tests make throwaway TLS certificates.
#  - iputils-ping: the probe agents' ICMP probes (real-traffic tests, the lab's matrix).
#  - procps (sysctl), util-linux (nsenter): the agent sets interface sysctls and enters namespaces.
#  - conntrack: calico-node deletes the flows of a workload address that goes (src/dataplane/
#    conntrack.ts), and the real-traffic tests forget earlier flows between scenarios.
#  - netcat-openbsd: nc, the tracer's kernel cross-check sends TCP with it, and the installed
#    CNI plugins reach calico-node's CNI daemon with `nc -U` (src/cni/install.ts).
#  - kubernetes-client: kubectl, a real client of calico-apiserver in its tests; only when no
#    kubectl is on the machine already (some images ship one from another package, e.g. the
#    Google Cloud SDK's, and Debian's kubernetes-client would conflict with it over /usr/bin/kubectl).
APT_PACKAGES=(python3 make g++ iproute2 nftables sqlite3 ca-certificates etcd-server etcd-client openssl iputils-ping procps util-linux conntrack netcat-openbsd)
# iperf3: bench/policy-throughput.bench.ts measures workload-to-workload TCP throughput with it.
APT_PACKAGES+=(iperf3)
# bird2: test/bgp-bird.test.ts runs BIRD 2 in network namespaces as a real BGP peer of our speaker.
APT_PACKAGES+=(bird2)
# podman, runc, conmon, containernetworking-plugins, busybox-static: test/cni-podman.test.ts runs
# podman as a real CNI runtime of our plugins on two hosts (runc: crun fails on cgroups v1
# hybrid; containernetworking-plugins: podman's CNI backend, which also satisfies its
# container-network-stack dependency; busybox-static: the rootfs of the test's image, loaded
# with `podman import` since there is no registry access).
APT_PACKAGES+=(podman runc conmon containernetworking-plugins busybox-static)
command -v kubectl >/dev/null 2>&1 || APT_PACKAGES+=(kubernetes-client)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: missing Debian packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "install.sh: installing Debian packages: ${missing[*]}"
  # Finish any half-done earlier install first, or apt refuses to do anything.
  DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null 2>&1 || true
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node -e 'const [maj]=process.versions.node.split(".").map(Number); if (maj < 20) { console.error("calico-ts needs Node.js >= 20 (found " + process.version + ")"); process.exit(1); }'

echo "install.sh: installing npm dependencies"
npm ci --no-audit --no-fund --loglevel=error
echo "install.sh: building"
npm run --silent build
