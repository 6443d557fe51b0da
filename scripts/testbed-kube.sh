# A real Kubernetes API server for the test bed (sourced by testbed.sh; not run
# on its own). With TESTBED_KUBE=1, `testbed.sh up` builds kube-apiserver
# v1.20.2 once per machine (scripts/build-kube-apiserver.sh, cached by version)
# and starts it on loopback with an etcd of its own:
#
#   etcd            127.0.0.1:KUBE_ETCD_PORT (52379; peer port +1), data in STATE_DIR/kube/etcd
#   kube-apiserver  https://127.0.0.1:KUBE_PORT (56443), serving certificate from --cert-dir
#                   (self-signed; its CA is written to STATE_DIR/kube/ca.crt), RBAC
#
# Who may call it (all exported by write_env as COMMISSAIRE_TEST_KUBE_*):
#   admin token       user `admin` in group system:masters             (_TOKEN)
#   restricted token  user `viewer`, no group: RBAC lets it read nodes and nothing else (_RESTRICTED_TOKEN)
#   client certificate CN=commissaire-cert, O=system:masters, signed by a client CA
#                     the server trusts (--client-ca-file)              (_CLIENT_CERT, _CLIENT_KEY)
#
# No controller-manager, scheduler or kubelet runs: tests act as those where
# they need to (a node's Ready status, a PodDisruptionBudget's status, pods
# that finish terminating), through the API as they would. v1.20 serves
# PodDisruptionBudgets and Evictions as policy/v1beta1 only.

KUBE_VERSION=1.20.2

kube_ca_extract() {   # FILE: the last certificate of a PEM chain (the self-signed CA)
  awk '/-----BEGIN CERTIFICATE-----/{n++; buf=""} {buf=buf $0 "\n"} /-----END CERTIFICATE-----/{last=buf} END{printf "%s", last}' "$1"
}

kube_token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# kube_up SECONDS: build (if needed), make the credentials, start etcd and the
# API server, wait until /readyz answers, and give the restricted user its role.
kube_up() {
  local timeout=$1 K=$S/kube bin t0 end admin
  t0=$(now)
  bin=$(bash "$(dirname "$SELF")/build-kube-apiserver.sh") || { log "kube-apiserver build failed"; return 1; }
  mkdir -p "$K/certs"
  openssl genrsa -out "$K/sa.key" 2048 2>/dev/null
  openssl rsa -in "$K/sa.key" -pubout -out "$K/sa.pub" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$K/client-ca.key" -out "$K/client-ca.crt" \
    -days 3650 -subj /CN=commissaire-test-client-ca 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout "$K/client.key" -out "$K/client.csr" \
    -subj "/O=system:masters/CN=commissaire-cert" 2>/dev/null
  # X.509 v3 (extensions given): rustls refuses a v1 certificate.
  printf '%s\n' basicConstraints=CA:FALSE keyUsage=digitalSignature,keyEncipherment \
    extendedKeyUsage=clientAuth > "$K/client.ext"
  openssl x509 -req -in "$K/client.csr" -CA "$K/client-ca.crt" -CAkey "$K/client-ca.key" \
    -CAcreateserial -extfile "$K/client.ext" -out "$K/client.crt" -days 3650 2>/dev/null
  chmod 600 "$K"/*.key
  admin=$(kube_token)
  echo "$admin" > "$K/admin.token"
  kube_token > "$K/viewer.token"
  printf '%s,admin,uid-admin,system:masters\n%s,viewer,uid-viewer\n' "$admin" "$(cat "$K/viewer.token")" > "$K/tokens.csv"
  chmod 600 "$K/tokens.csv" "$K"/*.token

  run_etcd kube-etcd "$K/etcd" "$KUBE_ETCD_PORT" "$((KUBE_ETCD_PORT + 1))"
  wait_etcd_healthy kube-etcd "$KUBE_ETCD_PORT" "$timeout" || { log "see $K/etcd/etcd.log"; return 1; }
  end=$(( $(date +%s) + timeout ))
  setsid "$bin" --etcd-servers="http://127.0.0.1:$KUBE_ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$KUBE_PORT" --insecure-port=0 \
    --cert-dir="$K/certs" --token-auth-file="$K/tokens.csv" --client-ca-file="$K/client-ca.crt" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$K/sa.pub" --service-account-signing-key-file="$K/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 --endpoint-reconciler-type=none \
    </dev/null >"$K/apiserver.log" 2>&1 &
  echo $! > "$S/pids/kube-apiserver"
  until curl -ksf -m 2 -H "Authorization: Bearer $admin" "https://127.0.0.1:$KUBE_PORT/readyz" >/dev/null; do
    [ "$(date +%s)" -lt "$end" ] || { log "timeout waiting for kube-apiserver /readyz"; return 1; }
    alive "$(readpid "$S/pids/kube-apiserver")" || { log "kube-apiserver died (see $K/apiserver.log)"; return 1; }
    sleep 0.2
  done
  kube_ca_extract "$K/certs/apiserver.crt" > "$K/ca.crt"
  # The restricted user may read nodes, nothing else.
  local api="https://127.0.0.1:$KUBE_PORT" h=(-sf -m 10 --cacert "$K/ca.crt" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json')
  curl "${h[@]}" -XPOST "$api/apis/rbac.authorization.k8s.io/v1/clusterroles" -d \
    '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"commissaire-test-node-reader"},"rules":[{"apiGroups":[""],"resources":["nodes"],"verbs":["get","list"]}]}' >/dev/null ||
    { log "could not create the node-reader role"; return 1; }
  curl "${h[@]}" -XPOST "$api/apis/rbac.authorization.k8s.io/v1/clusterrolebindings" -d \
    '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"commissaire-test-viewer"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"commissaire-test-node-reader"},"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"viewer"}]}' >/dev/null ||
    { log "could not bind the node-reader role"; return 1; }
  log "kube-apiserver v$KUBE_VERSION up in $(elapsed "$t0")s on https://127.0.0.1:$KUBE_PORT"
}

kube_env() {
  local K=$S/kube
  echo "export COMMISSAIRE_TEST_KUBE_URL=https://127.0.0.1:$KUBE_PORT"
  echo "export COMMISSAIRE_TEST_KUBE_CA=$(q "$K/ca.crt")"
  echo "export COMMISSAIRE_TEST_KUBE_TOKEN=$(cat "$K/admin.token")"
  echo "export COMMISSAIRE_TEST_KUBE_RESTRICTED_TOKEN=$(cat "$K/viewer.token")"
  echo "export COMMISSAIRE_TEST_KUBE_CLIENT_CERT=$(q "$K/client.crt")"
  echo "export COMMISSAIRE_TEST_KUBE_CLIENT_KEY=$(q "$K/client.key")"
}

kube_stop() {
  stop_pid kube-apiserver "$(readpid "$S/pids/kube-apiserver")" 10
  stop_pid kube-etcd "$(readpid "$S/pids/kube-etcd")" 10
}
