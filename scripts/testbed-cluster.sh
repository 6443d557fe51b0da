# Sourced by scripts/testbed.sh: the clustered engines of the test bed
# (TESTBED_CLUSTER=3): a 3-member etcd cluster and a 3-node RabbitMQ cluster on
# loopback, private ports from CLUSTER_PORT (47000), everything under
# $S/cluster, every process stopped by PID.
#
#   etcd members e1..e3   clients CLUSTER_PORT+1..3, peers CLUSTER_PORT+11..13
#   RabbitMQ nodes r1..r3 AMQP CLUSTER_PORT+21..23, distribution +31..33
#   epmd (its own)        CLUSTER_PORT+41
#
# Pitfalls (see shared/reference/clustered-engines.md): the CLI must not open a
# distribution listener (-dist_listen false); listeners bind 127.0.0.1 only;
# kill the beam PID (its pid file is deleted on a clean stop, so it is copied).

cl_dir() { echo "$S/cluster"; }
cl_etcd_port() { echo $((CLUSTER_PORT + $1)); }
cl_etcd_endpoints() {
  echo "http://127.0.0.1:$((CLUSTER_PORT + 1)),http://127.0.0.1:$((CLUSTER_PORT + 2)),http://127.0.0.1:$((CLUSTER_PORT + 3))"
}
cl_amqp_uris() {   # the bus_uri of the cluster: every node, quorum queues
  echo "amqp://guest:guest@127.0.0.1:$((CLUSTER_PORT + 21))/%2f?queue_type=quorum,amqp://guest:guest@127.0.0.1:$((CLUSTER_PORT + 22))/%2f,amqp://guest:guest@127.0.0.1:$((CLUSTER_PORT + 23))/%2f"
}

cl_etcd_start() {   # cl_etcd_start I: first start and restart alike (same data dir)
  local i=$1 D; D=$(cl_dir)/etcd
  mkdir -p "$D"
  local initial=
  for j in 1 2 3; do initial="$initial${initial:+,}e$j=http://127.0.0.1:$((CLUSTER_PORT + 10 + j))"; done
  setsid etcd --name "e$i" --data-dir "$D/e$i" \
    --listen-client-urls "http://127.0.0.1:$((CLUSTER_PORT + i))" \
    --advertise-client-urls "http://127.0.0.1:$((CLUSTER_PORT + i))" \
    --listen-peer-urls "http://127.0.0.1:$((CLUSTER_PORT + 10 + i))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((CLUSTER_PORT + 10 + i))" \
    --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token tb \
    --heartbeat-interval=10 --election-timeout=100 \
    </dev/null >"$D/e$i.log" 2>&1 &
  echo $! > "$S/pids/cl-etcd$i"
}

cl_etcd_leader() {   # the index (1..3) of the current leader
  ETCDCTL_API=3 etcdctl --endpoints="$(cl_etcd_endpoints)" endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    s = e["Status"]
    if s["leader"] == s["header"]["member_id"]:
        print(e["Endpoint"][-1])'
}

cl_etcd_wait() {   # SECONDS: until the cluster answers a write
  local end=$(( $(date +%s) + $1 ))
  until ETCDCTL_API=3 etcdctl --endpoints="$(cl_etcd_endpoints)" --command-timeout=500ms put /testbed/ready 1 >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || { log "timeout waiting for the etcd cluster"; return 1; }
    sleep 0.1
  done
}

cl_rmq_env() {   # N: the environment of node rN, for its server and its CLI (use in a subshell)
  local D; D=$(cl_dir)/rmq/r$1
  export HOME=$D/home RABBITMQ_NODENAME=r$1@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT=$((CLUSTER_PORT + 20 + $1)) RABBITMQ_DIST_PORT=$((CLUSTER_PORT + 30 + $1)) \
    RABBITMQ_MNESIA_BASE=$D/mnesia RABBITMQ_LOG_BASE=$D/log RABBITMQ_CONF_ENV_FILE=$D/rabbitmq-env.conf \
    RABBITMQ_ENABLED_PLUGINS_FILE=$D/enabled_plugins RABBITMQ_PID_FILE=$D/pid \
    RABBITMQ_CONFIG_FILE=$D/rabbitmq.conf \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    RABBITMQ_CTL_ERL_ARGS="-dist_listen false" ERL_EPMD_PORT=$((CLUSTER_PORT + 41)) \
    ERL_EPMD_ADDRESS=127.0.0.1
}

cl_rmqctl() {   # N ARGS...: rabbitmqctl of node rN
  ( cl_rmq_env "$1"; shift; timeout 60 "$RMQ_BIN/rabbitmqctl" -q -n "$RABBITMQ_NODENAME" "$@" )
}

cl_rmq_init() {   # per-node directories and configuration, one shared cookie
  local cookie N D
  cookie=$(head -c 15 /dev/urandom | od -An -tx1 | tr -d ' \n')
  for N in 1 2 3; do
    D=$(cl_dir)/rmq/r$N
    mkdir -p "$D/home" "$D/mnesia" "$D/log"
    echo '[].' > "$D/enabled_plugins"
    : > "$D/rabbitmq-env.conf"
    printf 'listeners.tcp.1 = 127.0.0.1:%s\nloopback_users = none\n' $((CLUSTER_PORT + 20 + N)) > "$D/rabbitmq.conf"
    rm -f "$D/home/.erlang.cookie"
    printf '%s' "$cookie" > "$D/home/.erlang.cookie"
    chmod 400 "$D/home/.erlang.cookie"
  done
}

cl_rmq_start() {   # N: returns at once; cl_rmq_wait N waits until it is booted
  local D; D=$(cl_dir)/rmq/r$1
  # A kill -9 leaves the old pid file behind; the new node writes its own.
  alive "$(readpid "$D/pid")" || rm -f "$D/pid"
  # Where this boot's lines begin in the node's log (cl_rmq_wait reads on).
  mkdir -p "$D/log"
  wc -l < "$D/log/r$1@localhost.log" 2>/dev/null > "$D/log-offset" || echo 0 > "$D/log-offset"
  ( cl_rmq_env "$1"; setsid "$RMQ_BIN/rabbitmq-server" </dev/null >"$D/stdout.log" 2>&1 &
    echo $! > "$S/pids/cl-rmq$1" )
}

cl_rmq_wait() {   # N [SECONDS]
  # Booted: the node logged "Server startup complete" in this boot and
  # accepts AMQP connections. No rabbitmqctl: its RPC once lost its
  # connection to a node restarted under load ({:case_clause, {:badrpc,
  # :nodedown}}) and once waited out the whole deadline on one that did
  # boot. A VM that dies fails at once, with the end of its log.
  local D end from p started
  D=$(cl_dir)/rmq/r$1
  end=$(( $(date +%s) + ${2:-120} ))
  from=$(( $(cat "$D/log-offset" 2>/dev/null || echo 0) + 1 ))
  started=$(now)
  while :; do
    p=$(readpid "$D/pid")
    if [ -n "$p" ] && tail -n "+$from" "$D/log/r$1@localhost.log" 2>/dev/null | grep -q "Server startup complete" \
       && tcp_open 127.0.0.1 $((CLUSTER_PORT + 20 + $1)); then
      cp "$D/pid" "$D/beam.pid"
      log "rabbitmq r$1: booted in $(elapsed "$started")s"
      return 0
    fi
    if [ -n "$p" ] && ! alive "$p"; then
      log "rabbitmq r$1: its VM (pid $p) died while booting; end of its log:"
      tail -n 30 "$D/log/r$1@localhost.log" >&2 2>/dev/null || true
      tail -n 20 "$D/stdout.log" >&2 2>/dev/null || true
      return 1
    fi
    if [ "$(date +%s)" -ge "$end" ]; then
      log "rabbitmq r$1: not booted after ${2:-120}s (VM pid '${p:-none}'); this boot's log:"
      tail -n "+$from" "$D/log/r$1@localhost.log" 2>/dev/null | grep -v "^\s*$" | tail -n 60 >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

cl_rmq_join() {   # N: node rN joins r1's cluster
  local step
  for step in stop_app reset "join_cluster r1@localhost" start_app; do
    # shellcheck disable=SC2086
    cl_rmqctl "$1" $step >/dev/null 2>&1 || { log "rabbitmq r$1: '$step' failed"; return 1; }
  done
}

cl_rmq_kill() {   # N: kill -9 the node's Erlang VM
  kill -KILL "$(readpid "$(cl_dir)/rmq/r$1/beam.pid")" 2>/dev/null || true
}

cl_etcd_kill() {   # I: kill -9 member eI
  kill -KILL "$(readpid "$S/pids/cl-etcd$1")" 2>/dev/null || true
}

cl_up() {   # SECONDS
  local N busy= p
  for p in $(seq $((CLUSTER_PORT + 1)) $((CLUSTER_PORT + 3))) $(seq $((CLUSTER_PORT + 11)) $((CLUSTER_PORT + 13))) \
           $(seq $((CLUSTER_PORT + 21)) $((CLUSTER_PORT + 23))) $(seq $((CLUSTER_PORT + 31)) $((CLUSTER_PORT + 33))) \
           $((CLUSTER_PORT + 41)); do
    tcp_open 127.0.0.1 "$p" && busy="$busy 127.0.0.1:$p"
  done
  [ -z "$busy" ] || die "cluster ports already in use:$busy (set CLUSTER_PORT)"
  mkdir -p "$(cl_dir)"
  setsid epmd -port $((CLUSTER_PORT + 41)) -address 127.0.0.1 </dev/null >"$(cl_dir)/epmd.log" 2>&1 &
  echo $! > "$S/pids/cl-epmd"
  wait_tcp 127.0.0.1 $((CLUSTER_PORT + 41)) 10
  for N in 1 2 3; do cl_etcd_start "$N"; done
  cl_rmq_init
  for N in 1 2 3; do cl_rmq_start "$N"; done
  cl_etcd_wait "$1"
  for N in 1 2 3; do cl_rmq_wait "$N" "$1" || { log "rabbitmq r$N did not boot"; return 1; }; done
  cl_rmq_join 2 && cl_rmq_join 3
}

cl_stop() {   # every cluster process, by PID (SIGTERM is a clean stop for both)
  local N p jobs=
  for N in 1 2 3; do
    p=$(readpid "$(cl_dir)/rmq/r$N/beam.pid")
    alive "$p" && { stop_pid "beam r$N" "$p" 20 & jobs="$jobs $!"; }
    p=$(readpid "$S/pids/cl-rmq$N")
    alive "$p" && { stop_pid "rabbitmq r$N" "$p" 20 & jobs="$jobs $!"; }
    p=$(readpid "$S/pids/cl-etcd$N")
    alive "$p" && { stop_pid "etcd e$N" "$p" 10 & jobs="$jobs $!"; }
  done
  # shellcheck disable=SC2086
  [ -z "$jobs" ] || wait $jobs || true
  p=$(readpid "$S/pids/cl-epmd")
  alive "$p" && stop_pid "cluster epmd" "$p" 5
  return 0
}
