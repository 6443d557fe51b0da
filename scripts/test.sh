#!/bin/bash
# The project test command.
#
#   scripts/test.sh [CARGO_TEST_ARGS...] [-- TEST_BINARY_ARGS...]
#
# Brings up the test bed (etcd, RabbitMQ, Redis, ssh hosts; see scripts/testbed.sh)
# in a temporary state dir, exports its COMMISSAIRE_TEST_* variables, builds the
# whole workspace and runs `cargo test --workspace -- --test-threads=4`; with
# no arguments also the features over Redis, scripts/lint-playbooks.sh
# (ansible-lint), scripts/check-openapi.sh (openapi-spec-validator and
# schemathesis against the all-in-one) and scripts/check-first-run.sh (the
# all-in-one builds without protoc).
# Arguments before a `--` go to cargo test (e.g. `-p commissaire-http`, a test
# name filter), arguments after it go to the test binaries (e.g. `--nocapture`).
#
# If a test bed is already up (COMMISSAIRE_TEST_STATE is set and
# $COMMISSAIRE_TEST_STATE/env exists), it is reused and left running:
#   scripts/testbed.sh up /tmp/tb >/dev/null && source /tmp/tb/env
#   scripts/test.sh; scripts/test.sh -p some-crate; ...
#   scripts/testbed.sh down /tmp/tb
#
# Environment: N_SSH (default 10), TEST_THREADS (default 4), TESTBED_CLUSTER
# (default 3: the clustered engines the clustered fault tests need; 0 leaves
# them out, and those tests then fail saying so), TESTBED_KUBE (default 1: a
# real kube-apiserver, built once per machine; 0 leaves it out, and the tests
# that need it fail saying so), plus the port variables understood by
# scripts/testbed.sh.
set -uo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
TESTBED=$ROOT/scripts/testbed.sh
cd "$ROOT" || exit 1

if [ -f "$HOME/.cargo/env" ] && ! command -v cargo >/dev/null 2>&1; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "test.sh: cargo not found on PATH" >&2; exit 127; }
[ -n "${PROTOC:-}" ] || { [ -x /usr/bin/protoc ] && export PROTOC=/usr/bin/protoc; }   # etcd-client's build.rs

# On a fresh machine, install what the test bed needs first (Debian packages).
for tool in etcd redis-server /usr/lib/rabbitmq/bin/rabbitmq-server /usr/sbin/sshd ansible-playbook protoc openssl curl prometheus; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "test.sh: $tool is missing; installing the test bed's packages" >&2
    bash "$ROOT/scripts/install-deps.sh" || exit 1
    break
  fi
done
[ -n "${PROTOC:-}" ] || { [ -x /usr/bin/protoc ] && export PROTOC=/usr/bin/protoc; }

# split "$@" at the first `--`
cargo_args=()
bin_args=()
seen_sep=
for a in "$@"; do
  if [ -z "$seen_sep" ] && [ "$a" = "--" ]; then seen_sep=1; continue; fi
  if [ -n "$seen_sep" ]; then bin_args+=("$a"); else cargo_args+=("$a"); fi
done
threads=("--test-threads=${TEST_THREADS:-4}")
for a in ${bin_args[@]+"${bin_args[@]}"}; do
  case "$a" in --test-threads|--test-threads=*) threads=() ;; esac   # caller's choice wins
done

if [ -n "${COMMISSAIRE_TEST_STATE:-}" ] && [ -f "$COMMISSAIRE_TEST_STATE/env" ]; then
  echo "test.sh: reusing test bed in $COMMISSAIRE_TEST_STATE" >&2
  # shellcheck disable=SC1091
  . "$COMMISSAIRE_TEST_STATE/env"
else
  STATE=$(mktemp -d "${TMPDIR:-/tmp}/commissaire-testbed.XXXXXX") || exit 1
  trap '"$TESTBED" down "$STATE"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # TESTBED_CLUSTER=3 adds the clustered engines (3 etcd members, 3 RabbitMQ
  # nodes) for the clustered fault tests
  # (crates/commissaire-faults/tests/clustered.rs).
  # TESTBED_KUBE=1 adds a real kube-apiserver (built once per machine; see
  # scripts/testbed-kube.sh) for the container manager's tests.
  TESTBED_CLUSTER=${TESTBED_CLUSTER:-3} TESTBED_KUBE=${TESTBED_KUBE:-1} \
    "$TESTBED" up "$STATE" "${N_SSH:-10}" >/dev/null ||
    { echo "test.sh: test bed failed to start" >&2; exit 1; }
  # shellcheck disable=SC1091
  . "$STATE/env"
fi

cargo build --workspace --all-targets
rc=$?
if [ $rc -ne 0 ]; then
  echo "test.sh: cargo build failed (rc=$rc)" >&2
  exit $rc
fi

cargo test --workspace ${cargo_args[@]+"${cargo_args[@]}"} -- \
  ${threads[@]+"${threads[@]}"} ${bin_args[@]+"${bin_args[@]}"}
rc=$?
echo "test.sh: cargo test exited with $rc" >&2
# The whole suite also runs the Gherkin features over the Redis bus.
if [ $rc -eq 0 ] && [ ${#cargo_args[@]} -eq 0 ]; then
  COMMISSAIRE_TEST_BUS=redis cargo test -p commissaire-acceptance --test features
  rc=$?
  echo "test.sh: features over Redis exited with $rc" >&2
fi
# The playbooks are clean under ansible-lint.
if [ $rc -eq 0 ] && [ ${#cargo_args[@]} -eq 0 ]; then
  bash "$ROOT/scripts/lint-playbooks.sh"
  rc=$?
  echo "test.sh: ansible-lint of the playbooks exited with $rc" >&2
fi
# The API description is valid, and schemathesis finds no server error.
if [ $rc -eq 0 ] && [ ${#cargo_args[@]} -eq 0 ]; then
  bash "$ROOT/scripts/check-openapi.sh"
  rc=$?
  echo "test.sh: OpenAPI validation and schemathesis run exited with $rc" >&2
fi
# And the README's first command builds with nothing but Rust (no protoc).
if [ $rc -eq 0 ] && [ ${#cargo_args[@]} -eq 0 ]; then
  bash "$ROOT/scripts/check-first-run.sh"
  rc=$?
  echo "test.sh: first-run build check exited with $rc" >&2
fi
exit $rc
