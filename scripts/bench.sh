#!/bin/bash
# The bench command.
#
#   scripts/bench.sh [run|load] [COMMISSAIRE_BENCH_ARGS...]
#
# Builds the release binaries (`cargo build --release --workspace --bins`:
# the bench starts the real `commissaire` all-in-one binary and the split
# daemons), brings the test bed up (etcd, RabbitMQ, Redis and N_SSH=50 sshd
# hosts, see scripts/testbed.sh; or reuses the one named by
# COMMISSAIRE_TEST_STATE, left running) and runs commissaire-bench, which
# prints one table: REST req/s and p50/p99 (cluster GET, host list with 1k
# and 10k hosts, host create) for the all-in-one and the split daemons over
# AMQP+etcd and Redis+etcd, refusal times of unknown vs known users
# (all-in-one), bus round trips, rolling-restart overhead per
# host (5 ssh hosts), watcher checks per second (50 ssh hosts), resident
# memory of every daemon idle and under load, and the load test.
#
# With no arguments EVERYTHING runs, the 60 s load test (50 clients, split
# AMQP+etcd) included: about 6-8 minutes on 2 cores. Examples:
#   scripts/bench.sh --quick                      small counts, short windows
#   scripts/bench.sh --only rest,memory --setups all-in-one
#   scripts/bench.sh --only rest,bus,rolling,watcher,memory   all but the load test
#   scripts/bench.sh load --clients 50 --seconds 60 [--load-setup all-in-one|amqp|redis]
# The exit status is 1 if a measurement failed, a request errored, or the
# load test found a lost write. `scripts/bench.sh --help` lists every option.
# The watcher measurement needs 50 ssh hosts: a reused test bed must have
# been started with `scripts/testbed.sh up STATE 50`.
set -uo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT" || exit 1
case "${1:-}" in
  -h|--help)
    sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
    echo
    echo "commissaire-bench options:"
    ;;
esac
if [ -f "$HOME/.cargo/env" ] && ! command -v cargo >/dev/null 2>&1; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
[ -n "${PROTOC:-}" ] || { [ -x /usr/bin/protoc ] && export PROTOC=/usr/bin/protoc; }
cargo build --release --workspace --bins || { echo "bench.sh: cargo build failed" >&2; exit 1; }
case "${1:-}" in
  -h|--help) exec cargo run --release -q -p commissaire-bench -- --help ;;
esac
if [ -n "${COMMISSAIRE_TEST_STATE:-}" ] && [ -f "$COMMISSAIRE_TEST_STATE/env" ]; then
  echo "bench.sh: reusing test bed in $COMMISSAIRE_TEST_STATE" >&2
  # shellcheck disable=SC1091
  . "$COMMISSAIRE_TEST_STATE/env"
else
  STATE=$(mktemp -d "${TMPDIR:-/tmp}/commissaire-bench.XXXXXX") || exit 1
  trap '"$ROOT/scripts/testbed.sh" down "$STATE"; rmdir "$STATE" 2>/dev/null' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # 50 sshd hosts for the watcher measurement (the whole test bed is up in ~10 s).
  "$ROOT/scripts/testbed.sh" up "$STATE" "${N_SSH:-50}" >/dev/null || { echo "bench.sh: test bed failed to start" >&2; exit 1; }
  # shellcheck disable=SC1091
  . "$STATE/env"
fi
cargo run --release -q -p commissaire-bench -- "$@"
