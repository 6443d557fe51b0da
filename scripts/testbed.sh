#!/bin/bash
# Commissaire test bed: private etcd, RabbitMQ, Redis and N sshd "hosts", no systemd.
#
# usage:
#   scripts/testbed.sh up STATE_DIR [N_SSH]     start everything, write STATE_DIR/env
#   scripts/testbed.sh down STATE_DIR           stop whatever was started, remove STATE_DIR
#   scripts/testbed.sh env STATE_DIR            print the `export VAR=...` lines
#   scripts/testbed.sh status STATE_DIR         show which daemons are alive
#   scripts/testbed.sh rabbitmqctl STATE_DIR ARGS...   e.g. stop_app / start_app / close_all_connections
#   scripts/testbed.sh sshd-stop STATE_DIR I    stop ssh host I (1-based), incl. open sessions
#   scripts/testbed.sh sshd-start STATE_DIR I   start ssh host I again (same address, key, hostname)
#   scripts/testbed.sh etcd-stop STATE_DIR      stop etcd (by PID; its data dir is kept)
#   scripts/testbed.sh etcd-start STATE_DIR     start etcd again (same data dir and ports), wait until healthy
#   With TESTBED_CLUSTER=3 (a 3-member etcd and a 3-node RabbitMQ cluster, scripts/testbed-cluster.sh):
#   scripts/testbed.sh cluster-etcd-leader STATE_DIR        print the index (1-3) of the etcd leader
#   scripts/testbed.sh cluster-etcd-kill|cluster-etcd-start STATE_DIR I     kill -9 / start member I
#   scripts/testbed.sh cluster-rmq-kill|cluster-rmq-start STATE_DIR N       kill -9 / start (and wait) node N
#   scripts/testbed.sh cluster-rabbitmqctl STATE_DIR N ARGS...             rabbitmqctl of node N
#
# Environment (read by `up` only; saved in STATE_DIR/config for the other subcommands):
#   ETCD_PORT (23790; peer port is +10)  AMQP_PORT (5672; dist port is +20000)
#   REDIS_PORT (16379)  SSH_NET (127.0.0; hosts are SSH_NET.11, .12, ...)  N_SSH (3)
#   ERL_EPMD_PORT (AMQP_PORT+38000, a private epmd)  TESTBED_TIMEOUT (seconds, 120)
#   TESTBED_CLUSTER (0, or 3 for the clustered engines)  CLUSTER_PORT (47000)
#   TESTBED_KUBE (0, or 1 for a real kube-apiserver, scripts/testbed-kube.sh: built once
#   per machine)  KUBE_PORT (56443)  KUBE_ETCD_PORT (52379; peer port +1)
#
# Every daemon runs in its own session (setsid), so Ctrl-C on the caller does not
# hit it and `down` can kill it by PID / process group.  All processes are ended
# by PID, never by name.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
RMQ_BIN=/usr/lib/rabbitmq/bin      # NOT /usr/sbin/*: those `su rabbitmq` and change HOME/cookie
MARKER=.commissaire-testbed

die() { echo "testbed: $*" >&2; exit 1; }
log() { echo "testbed: $*" >&2; }

usage() { sed -n '2,29p' "$SELF" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 2 ] || usage
CMD=$1; shift
S=$(readlink -m "$1"); shift
[ "$S" != / ] || die "refusing to use / as state dir"

# ---------------------------------------------------------------- helpers
# shellcheck source=scripts/testbed-cluster.sh
. "$(dirname "$SELF")/testbed-cluster.sh"
# shellcheck source=scripts/testbed-kube.sh
. "$(dirname "$SELF")/testbed-kube.sh"
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# tcp_open HOST PORT -> 0 if something accepts connections there
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_tcp HOST PORT SECONDS
wait_tcp() {
  local end=$(( $(date +%s) + $3 ))
  until tcp_open "$1" "$2"; do
    [ "$(date +%s)" -lt "$end" ] || { log "timeout waiting for $1:$2"; return 1; }
    sleep 0.05
  done
}

# wait_tcp_closed HOST PORT SECONDS
wait_tcp_closed() {
  local end=$(( $(date +%s) + $3 ))
  while tcp_open "$1" "$2"; do
    [ "$(date +%s)" -lt "$end" ] || { log "timeout waiting for $1:$2 to close"; return 1; }
    sleep 0.05
  done
}

# alive PID: running and not a zombie (PID 1 in some sandboxes reaps orphans lazily)
alive() {
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  local st
  st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 0
  [ "$st" != Z ] && [ "$st" != X ]
}

# descendants PID...: all (transitive) children, deepest last
descendants() {
  local table frontier="$*" next p
  table=$(ps -e -o pid=,ppid= 2>/dev/null) || return 0
  while [ -n "$frontier" ]; do
    next=
    for p in $frontier; do
      next="$next $(awk -v pp="$p" '$2 == pp {print $1}' <<<"$table")"
    done
    next=$(echo $next)
    [ -n "$next" ] && echo "$next"
    frontier=$next
  done
}

# wait_gone SECONDS PID... ; returns 1 if some are still alive
wait_gone() {
  local t=$1 p left; shift
  local end=$(( $(date +%s) + t ))
  while :; do
    left=
    for p in "$@"; do alive "$p" && left="$left $p"; done
    [ -z "$left" ] && return 0
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.05
  done
}

readpid() { [ -s "$1" ] && tr -dc 0-9 < "$1" || true; }

# stop_pid NAME PID [GRACE]: TERM the process (and its process group when it leads
# one), wait, then KILL whatever is left.
stop_pid() {
  local name=$1 pid=$2 grace=${3:-15} pg=
  alive "$pid" || return 0
  pg=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ' || true)
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$grace" "$pid"; then
    log "$name ($pid) did not stop after ${grace}s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone 5 "$pid" || log "$name ($pid) still alive"
  fi
  # leftovers in the daemon's own process group (we started it with setsid)
  if [ "$pg" = "$pid" ]; then
    kill -TERM -- "-$pg" 2>/dev/null || true
    sleep 0.1
    kill -KILL -- "-$pg" 2>/dev/null || true
  fi
}

host_addr() { echo "$SSH_NET.$((10 + $1))"; }

load_config() {
  [ -f "$S/config" ] || die "$S is not a testbed state dir (no $S/config)"
  # shellcheck disable=SC1091
  . "$S/config"
  export ERL_EPMD_PORT
}

# ---------------------------------------------------------------- ssh hosts
start_sshd() {   # I
  local i=$1 H=$S/ssh$1 A pid
  A=$(host_addr "$i")
  mkdir -p /run/sshd        # privilege separation dir; sshd refuses to start without it
  # Own UTS namespace => `hostname` is hostI.test on that "host". setsid + unshare + exec
  # keep $! == the sshd listener PID.
  setsid unshare --uts sh -c "hostname host$i.test && exec /usr/sbin/sshd -D -f '$H/sshd_config' -E '$H/sshd.log'" \
    </dev/null >>"$H/stdout.log" 2>&1 &
  pid=$!
  echo "$pid" > "$S/pids/sshd$i"
}

stop_sshd() {    # I
  local i=$1 H=$S/ssh$1 p pids= kids
  for p in "$(readpid "$H/sshd.pid")" "$(readpid "$S/pids/sshd$i")"; do
    alive "$p" || continue
    case " $pids " in *" $p "*) ;; *) pids="$pids $p" ;; esac
  done
  [ -n "$pids" ] || { rm -f "$H/sshd.pid"; return 0; }
  # Killing the listener does not end open sessions, and commands started over ssh
  # live in their own session: kill the whole tree, like a host going down.
  # shellcheck disable=SC2086
  kids=$(descendants $pids)
  # shellcheck disable=SC2086
  kill -TERM $pids $kids 2>/dev/null || true
  # shellcheck disable=SC2086
  wait_gone 5 $pids $kids || kill -KILL $pids $kids 2>/dev/null || true
  rm -f "$H/sshd.pid"
}

# ---------------------------------------------------------------- etcd
# etcd runs as root: etcd 3.4 allows it, and a nobody-owned etcd would need every
# parent of STATE_DIR to be world-traversable. Same data dir and ports on every
# start, so `etcd-stop` / `etcd-start` is a restart that keeps the records.
# run_etcd NAME DIR CLIENT_PORT PEER_PORT [ETCD_ARGS...]: a one-member etcd on
# loopback, data and logs in DIR, its PID in $S/pids/NAME.
run_etcd() {
  local name=$1 dir=$2 client=$3 peer=$4; shift 4
  mkdir -p "$dir"
  setsid etcd --name "$name" --data-dir "$dir/data" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$name=http://127.0.0.1:$peer" "$@" \
    --logger zap --log-outputs "$dir/etcd.log" </dev/null >>"$dir/stdout.log" 2>&1 &
  echo $! > "$S/pids/$name"
}

# wait_etcd_healthy NAME CLIENT_PORT SECONDS: until that etcd answers /health with true
wait_etcd_healthy() {
  local name=$1 client=$2
  wait_tcp 127.0.0.1 "$client" "$3" || return 1
  local end=$(( $(date +%s) + $3 ))
  until curl -sf -m 2 "http://127.0.0.1:$client/health" | grep -q '"health":"true"'; do
    [ "$(date +%s)" -lt "$end" ] || { log "timeout waiting for $name's health"; return 1; }
    alive "$(readpid "$S/pids/$name")" || { log "$name died"; return 1; }
    sleep 0.05
  done
}

start_etcd() {
  run_etcd etcd "$S/etcd" "$ETCD_PORT" "$((ETCD_PORT + 10))" --heartbeat-interval=10 --election-timeout=100
}

# wait_etcd SECONDS: until the test bed's etcd answers /health with true
wait_etcd() { wait_etcd_healthy etcd "$ETCD_PORT" "$1"; }

# ---------------------------------------------------------------- up
# q STRING: single-quote for the shell
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

write_env() {
  local hosts= i
  for i in $(seq 1 "$N_SSH"); do hosts="$hosts${hosts:+,}$(host_addr "$i")"; done
  {
    echo "export COMMISSAIRE_TEST_ETCD=127.0.0.1:$ETCD_PORT"
    echo "export COMMISSAIRE_TEST_ETCD_URL=http://127.0.0.1:$ETCD_PORT"
    echo "export COMMISSAIRE_TEST_AMQP=amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f"
    echo "export COMMISSAIRE_TEST_REDIS=redis://127.0.0.1:$REDIS_PORT/"
    echo "export COMMISSAIRE_TEST_SSH_HOSTS=$hosts"
    echo "export COMMISSAIRE_TEST_SSH_KEY=$(q "$S/id_ed25519")"
    echo "export COMMISSAIRE_TEST_STATE=$(q "$S")"
    echo "export COMMISSAIRE_TEST_RABBITMQCTL=$(q "$SELF rabbitmqctl $S")"
    echo "export COMMISSAIRE_TEST_TESTBED=$(q "$SELF")"
    if [ "${TESTBED_CLUSTER:-0}" = 3 ]; then
      echo "export COMMISSAIRE_TEST_CLUSTER_ETCD=$(q "$(cl_etcd_endpoints)")"
      echo "export COMMISSAIRE_TEST_CLUSTER_AMQP=$(q "$(cl_amqp_uris)")"
    fi
    if [ "${TESTBED_KUBE:-0}" = 1 ]; then kube_env; fi
  } > "$S/env.tmp"
  mv "$S/env.tmp" "$S/env"
}

do_up() {
  N_SSH=${1:-${N_SSH:-3}}
  SSH_NET=${SSH_NET:-127.0.0}
  ETCD_PORT=${ETCD_PORT:-23790}
  AMQP_PORT=${AMQP_PORT:-5672}
  REDIS_PORT=${REDIS_PORT:-16379}
  ERL_EPMD_PORT=${ERL_EPMD_PORT:-$((AMQP_PORT + 38000))}
  TESTBED_CLUSTER=${TESTBED_CLUSTER:-0}
  CLUSTER_PORT=${CLUSTER_PORT:-47000}
  TESTBED_KUBE=${TESTBED_KUBE:-0}
  KUBE_PORT=${KUBE_PORT:-56443}
  KUBE_ETCD_PORT=${KUBE_ETCD_PORT:-52379}
  local timeout=${TESTBED_TIMEOUT:-120}
  export ERL_EPMD_PORT
  case "$TESTBED_CLUSTER" in 0|3) ;; *) die "TESTBED_CLUSTER must be 0 or 3, got '$TESTBED_CLUSTER'" ;; esac
  case "$N_SSH" in ''|*[!0-9]*) die "N_SSH must be a number, got '$N_SSH'" ;; esac
  case "$TESTBED_KUBE" in 0|1) ;; *) die "TESTBED_KUBE must be 0 or 1, got '$TESTBED_KUBE'" ;; esac

  if [ -f "$S/env" ] && [ -f "$S/$MARKER" ]; then
    # already up? then this is a no-op
    load_config
    if alive "$(readpid "$S/pids/etcd")" && alive "$(readpid "$S/pids/rabbitmq")" && alive "$(readpid "$S/pids/redis")"; then
      log "already up in $S"
      cat "$S/env"
      return 0
    fi
    die "$S holds a half-dead testbed; run '$SELF down $S' first"
  fi
  if [ -e "$S" ] && [ -n "$(ls -A "$S" 2>/dev/null)" ] && [ ! -f "$S/$MARKER" ]; then
    die "$S exists, is not empty and is not a testbed state dir"
  fi

  local t0 i A p
  t0=$(now)
  for p in /usr/bin/etcd /usr/bin/redis-server /usr/sbin/sshd /usr/bin/epmd "$RMQ_BIN/rabbitmq-server" /usr/bin/curl; do
    [ -x "$p" ] || command -v "$(basename "$p")" >/dev/null || die "missing $p (see .ci/run for the apt packages)"
  done

  # refuse to start on top of somebody else's service: wait_tcp would then succeed
  # against the wrong server
  local busy=
  for p in "$ETCD_PORT" "$((ETCD_PORT + 10))" "$AMQP_PORT" "$((AMQP_PORT + 20000))" "$ERL_EPMD_PORT" "$REDIS_PORT"; do
    tcp_open 127.0.0.1 "$p" && busy="$busy 127.0.0.1:$p"
  done
  if [ "$TESTBED_KUBE" = 1 ]; then
    for p in "$KUBE_PORT" "$KUBE_ETCD_PORT" "$((KUBE_ETCD_PORT + 1))"; do
      tcp_open 127.0.0.1 "$p" && busy="$busy 127.0.0.1:$p"
    done
  fi
  for i in $(seq 1 "$N_SSH"); do
    A=$(host_addr "$i"); tcp_open "$A" 22 && busy="$busy $A:22"
  done
  [ -z "$busy" ] || die "ports already in use:$busy (another testbed, or a system etcd/rabbitmq/redis/sshd?)"

  mkdir -p "$S/pids"
  chmod 755 "$S"
  touch "$S/$MARKER"
  cat > "$S/config" <<EOF
N_SSH=$N_SSH
SSH_NET=$SSH_NET
ETCD_PORT=$ETCD_PORT
AMQP_PORT=$AMQP_PORT
REDIS_PORT=$REDIS_PORT
ERL_EPMD_PORT=$ERL_EPMD_PORT
RMQ_NODE=tb$AMQP_PORT@localhost
TESTBED_CLUSTER=$TESTBED_CLUSTER
CLUSTER_PORT=$CLUSTER_PORT
TESTBED_KUBE=$TESTBED_KUBE
KUBE_PORT=$KUBE_PORT
KUBE_ETCD_PORT=$KUBE_ETCD_PORT
EOF
  . "$S/config"

  # On any failure from here on: show logs, stop what was started (keep logs for
  # inspection; a later `down` removes the dir).
  trap 'rc=$?; if [ $rc -ne 0 ]; then log "up FAILED (rc=$rc), log tails:"; show_logs; do_stop; fi' EXIT

  # -- etcd
  start_etcd

  # -- redis (no persistence)
  mkdir -p "$S/redis"
  setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$S/redis" --logfile "$S/redis/redis.log" </dev/null >"$S/redis/stdout.log" 2>&1 &
  echo $! > "$S/pids/redis"

  # -- ssh hosts
  [ -f "$S/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C commissaire-test -f "$S/id_ed25519"
  for i in $(seq 1 "$N_SSH"); do
    local H=$S/ssh$i
    A=$(host_addr "$i")
    mkdir -p "$H"
    [ -f "$H/hostkey" ] || ssh-keygen -q -t ed25519 -N '' -C "host$i.test" -f "$H/hostkey"
    cp "$S/id_ed25519.pub" "$H/authorized_keys"
    # The hosts' root gets a home of its own, empty as a plain host's is:
    # this machine's ~/.bashrc (which bash reads for every command sshd
    # runs) may be slow (pyenv init: ~100 ms), and would count as
    # Commissaire's time in the benchmarks.
    mkdir -p "$H/home"
    printf '%s\n' "ListenAddress $A:22" "HostKey $H/hostkey" "PidFile $H/sshd.pid" \
      "AuthorizedKeysFile $H/authorized_keys" "PermitRootLogin prohibit-password" \
      "PasswordAuthentication no" "KbdInteractiveAuthentication no" "UsePAM no" "StrictModes no" \
      "MaxStartups 100:30:200" "MaxSessions 50" "Subsystem sftp internal-sftp" \
      "SetEnv HOME=$H/home" > "$H/sshd_config"
    start_sshd "$i"
  done

  # -- rabbitmq: private epmd first (any Erlang CLI call would otherwise leave an
  #    `epmd -daemon` behind), then the broker with all paths inside STATE_DIR
  local R=$S/rabbitmq
  mkdir -p "$R"
  echo '[].' > "$R/enabled_plugins"
  : > "$R/rabbitmq-env.conf"   # do not read /etc/rabbitmq/rabbitmq-env.conf
  setsid epmd -port "$ERL_EPMD_PORT" -address 127.0.0.1 </dev/null >"$R/epmd.log" 2>&1 &
  echo $! > "$S/pids/epmd"
  wait_tcp 127.0.0.1 "$ERL_EPMD_PORT" 10
  HOME=$R RABBITMQ_CONF_ENV_FILE=$R/rabbitmq-env.conf RABBITMQ_NODENAME=$RMQ_NODE \
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$AMQP_PORT \
  RABBITMQ_DIST_PORT=$((AMQP_PORT + 20000)) RABBITMQ_MNESIA_BASE=$R/mnesia RABBITMQ_LOG_BASE=$R/log \
  RABBITMQ_ENABLED_PLUGINS_FILE=$R/enabled_plugins RABBITMQ_CONFIG_FILE=$R/rabbitmq \
  RABBITMQ_ADVANCED_CONFIG_FILE=$R/advanced.config RABBITMQ_PID_FILE=$R/pid \
    setsid "$RMQ_BIN/rabbitmq-server" </dev/null >"$R/stdout.log" 2>&1 &
  echo $! > "$S/pids/rabbitmq"

  # -- readiness
  wait_etcd "$timeout"
  local end
  wait_tcp 127.0.0.1 "$REDIS_PORT" "$timeout"
  for i in $(seq 1 "$N_SSH"); do wait_tcp "$(host_addr "$i")" 22 "$timeout"; done
  end=$(( $(date +%s) + timeout ))
  until tcp_open 127.0.0.1 "$AMQP_PORT"; do
    [ "$(date +%s)" -lt "$end" ] || { log "timeout waiting for rabbitmq :$AMQP_PORT"; return 1; }
    alive "$(readpid "$S/pids/rabbitmq")" || { log "rabbitmq died"; return 1; }
    sleep 0.1
  done
  rmqctl -q await_startup --timeout "$timeout" >/dev/null
  if [ "$TESTBED_CLUSTER" = 3 ]; then
    local tc; tc=$(now)
    cl_up "$timeout"
    log "clustered engines up in $(elapsed "$tc")s: etcd $(cl_etcd_endpoints), amqp :$((CLUSTER_PORT + 21))-$((CLUSTER_PORT + 23))"
  fi

  if [ "$TESTBED_KUBE" = 1 ]; then
    kube_up "$timeout"
  fi

  write_env
  trap - EXIT
  log "up in $(elapsed "$t0")s: etcd :$ETCD_PORT amqp :$AMQP_PORT redis :$REDIS_PORT" \
      "ssh $(host_addr 1)..$(host_addr "$N_SSH") key $S/id_ed25519"
  cat "$S/env"
}

show_logs() {
  local f
  for f in "$S/etcd/etcd.log" "$S/etcd/stdout.log" "$S/redis/redis.log" "$S/rabbitmq/stdout.log" "$S"/ssh*/sshd.log; do
    [ -s "$f" ] || continue
    echo "---- $f" >&2
    tail -n 15 "$f" >&2
  done
}

rmqctl() {
  HOME=$S/rabbitmq RABBITMQ_CONF_ENV_FILE=$S/rabbitmq/rabbitmq-env.conf ERL_EPMD_PORT=$ERL_EPMD_PORT \
    "$RMQ_BIN/rabbitmqctl" -n "$RMQ_NODE" "$@"
}

# ---------------------------------------------------------------- down
# Stop every process we started; keep the directory.
do_stop() {
  [ -d "$S" ] || return 0
  if [ -f "$S/config" ]; then . "$S/config"; export ERL_EPMD_PORT; fi
  local f i p
  [ -d "$S/cluster" ] && cl_stop
  [ -d "$S/kube" ] && kube_stop
  # ssh hosts first (their sessions may be talking to the other services)
  for f in "$S"/ssh*/; do
    [ -d "$f" ] || continue
    i=${f%/}; i=${i##*/ssh}
    case "$i" in ''|*[!0-9]*) continue ;; esac
    stop_sshd "$i"
  done
  # the rabbitmq-server script traps TERM and stops the node cleanly (~2-3 s)
  # (in parallel; wait only for these jobs: when called from up's EXIT trap the
  # daemons are our children too)
  local jobs=
  stop_pid redis "$(readpid "$S/pids/redis")" 10 & jobs="$jobs $!"
  stop_pid etcd "$(readpid "$S/pids/etcd")" 10 & jobs="$jobs $!"
  stop_pid rabbitmq "$(readpid "$S/pids/rabbitmq")" 30 & jobs="$jobs $!"
  # shellcheck disable=SC2086
  wait $jobs || true
  # the Erlang VM itself, in case the wrapper died without taking it along
  p=$(readpid "$S/rabbitmq/pid")
  alive "$p" && stop_pid beam "$p" 10
  stop_pid epmd "$(readpid "$S/pids/epmd")" 5
  # last resort: anything still running with a path inside STATE_DIR on its
  # command line (e.g. an sshd restarted by a playbook without our pid file)
  for p in $(leftovers); do
    log "killing leftover $(ps -o pid=,args= -p "$p" 2>/dev/null | cut -c1-120)"
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -f "$S/env"
}

leftovers() {
  local d p comm me=$$
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = "$me" ] && continue
    [ "$p" = "$PPID" ] && continue
    comm=$(cat "$d/comm" 2>/dev/null) || continue
    case "$comm" in sshd|etcd|redis-server|beam.smp|epmd|erl_child_setup|unshare|kube-apiserver) ;; *) continue ;; esac
    tr '\0' ' ' < "$d/cmdline" 2>/dev/null | grep -qF -- "$S/" && echo "$p"
  done
  return 0
}

do_down() {
  [ -e "$S" ] || { log "$S does not exist, nothing to do"; return 0; }
  local t0; t0=$(now)
  do_stop
  if [ -f "$S/$MARKER" ]; then
    rm -rf "$S"
  else
    log "$S has no $MARKER marker; processes stopped, directory left in place"
  fi
  log "down in $(elapsed "$t0")s"
}

# ---------------------------------------------------------------- main
case "$CMD" in
  up)
    do_up "$@" ;;
  down)
    do_down ;;
  stop)   # stop processes but keep logs
    do_stop ;;
  env)
    [ -f "$S/env" ] || die "no $S/env: testbed not up"
    cat "$S/env" ;;
  status)
    load_config
    for p in etcd redis rabbitmq epmd $(cd "$S/pids" && ls | grep '^sshd' || true); do
      if alive "$(readpid "$S/pids/$p")"; then echo "$p up $(readpid "$S/pids/$p")"; else echo "$p DOWN"; fi
    done ;;
  rabbitmqctl)
    load_config
    rmqctl "$@" ;;
  etcd-stop)
    load_config
    stop_pid etcd "$(readpid "$S/pids/etcd")" 10
    wait_tcp_closed 127.0.0.1 "$ETCD_PORT" 10 ;;
  etcd-start)
    load_config
    if alive "$(readpid "$S/pids/etcd")"; then log "etcd already running"; exit 0; fi
    start_etcd
    wait_etcd "${TESTBED_TIMEOUT:-60}" ;;
  cluster-etcd-leader)
    load_config
    cl_etcd_leader ;;
  cluster-etcd-kill|cluster-etcd-start|cluster-rmq-kill|cluster-rmq-start)
    load_config
    [ $# -ge 1 ] || usage
    case "$1" in 1|2|3) ;; *) die "member/node index must be 1, 2 or 3" ;; esac
    case "$CMD" in
      cluster-etcd-kill) cl_etcd_kill "$1" ;;
      cluster-etcd-start) cl_etcd_start "$1"; cl_etcd_wait "${TESTBED_TIMEOUT:-60}" ;;
      cluster-rmq-kill) cl_rmq_kill "$1" ;;
      # A node restarted under load (the clustered tests bootstrap hosts
      # meanwhile) has been seen to take minutes to boot.
      cluster-rmq-start) cl_rmq_start "$1"; cl_rmq_wait "$1" "${TESTBED_RMQ_BOOT_TIMEOUT:-300}" ;;
    esac ;;
  cluster-rabbitmqctl)
    load_config
    [ $# -ge 1 ] || usage
    N=$1; shift
    cl_rmqctl "$N" "$@" ;;
  sshd-stop|sshd-start)
    load_config
    [ $# -ge 1 ] || usage
    I=$1
    case "$I" in ''|*[!0-9]*) die "host index must be a number" ;; esac
    [ -f "$S/ssh$I/sshd_config" ] || die "no ssh host $I in $S"
    A=$(host_addr "$I")
    if [ "$CMD" = sshd-stop ]; then
      stop_sshd "$I"
      wait_tcp_closed "$A" 22 10
    else
      if tcp_open "$A" 22; then log "ssh host $I ($A) already listening"; exit 0; fi
      start_sshd "$I"
      wait_tcp "$A" 22 "${TESTBED_TIMEOUT:-30}"
    fi ;;
  *)
    usage ;;
esac
