#!/usr/bin/env bash
# The README's API server tour: calico-apiserver over HTTPS with bearer tokens in front of a
# sqlite file; calicoctl reaches it through the HTTP datastore driver, kubectl with a kubeconfig.
# Everything lives in a temporary directory (removed at the end) and on 127.0.0.1 only.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=$(mktemp -d /tmp/calico-ts-tour.XXXXXX)
# A free loopback port unless one is given.
PORT=${PORT:-$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')}
cleanup() { [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
show() { echo "\$ $*"; "$@" 2>&1; local rc=$?; [ "$rc" -eq 0 ] || echo "(exit code $rc)"; echo; }

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DIR/key.pem" -out "$DIR/cert.pem" -days 1 \
  -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>/dev/null
printf 'admin-token,admin,1\nviewer-token,viewer,2,"read-only"\n' > "$DIR/tokens.csv"
node dist/src/apiserver/main.js --datastore "sqlite:$DIR/calico-ts.db" --listen "127.0.0.1:$PORT" \
  --tls-cert "$DIR/cert.pem" --tls-key "$DIR/key.pem" --token-file "$DIR/tokens.csv" > "$DIR/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 50); do grep -q listening "$DIR/server.log" && break; sleep 0.1; done
echo "\$ calico-apiserver --datastore sqlite:calico-ts.db --listen 127.0.0.1:$PORT --tls-cert cert.pem --tls-key key.pem --token-file tokens.csv &"
sed "s#$DIR/##g" "$DIR/server.log"; echo

calicoctl() { node "$ROOT/dist/src/cli/main.js" "$@"; }
export CALICO_DATASTORE="https://admin-token@127.0.0.1:$PORT?ca=$DIR/cert.pem"
echo "\$ export CALICO_DATASTORE='https://admin-token@127.0.0.1:$PORT?ca=cert.pem'"
show calicoctl apply -f examples/quickstart.yaml
show calicoctl get globalnetworkpolicies

cat > "$DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: calico-ts, cluster: {server: "https://127.0.0.1:$PORT", certificate-authority: $DIR/cert.pem}}]
users: [{name: viewer, user: {token: viewer-token}}]
contexts: [{name: viewer, context: {cluster: calico-ts, user: viewer}}]
current-context: viewer
KC
export KUBECONFIG=$DIR/kubeconfig
echo "\$ export KUBECONFIG=kubeconfig   # user 'viewer', token in group read-only"
show kubectl get ippools -o wide
show kubectl get networkpolicies -n shop
show kubectl delete ippool pool-a
echo "\$ curl --cacert cert.pem https://127.0.0.1:$PORT/readyz"
curl -s --cacert "$DIR/cert.pem" "https://127.0.0.1:$PORT/readyz"; echo; echo
