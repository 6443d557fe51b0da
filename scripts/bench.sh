#!/bin/bash
# The bench command: brings the test bed up (or reuses one, like scripts/test.sh),
# builds in release mode and runs commissaire-bench, which prints req/s and
# p50/p99 latency. Arguments go to commissaire-bench (see --help).
set -uo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT" || exit 1
[ -n "${PROTOC:-}" ] || { [ -x /usr/bin/protoc ] && export PROTOC=/usr/bin/protoc; }
if [ -n "${COMMISSAIRE_TEST_STATE:-}" ] && [ -f "$COMMISSAIRE_TEST_STATE/env" ]; then
  . "$COMMISSAIRE_TEST_STATE/env"
else
  STATE=$(mktemp -d "${TMPDIR:-/tmp}/commissaire-bench.XXXXXX") || exit 1
  trap '"$ROOT/scripts/testbed.sh" down "$STATE"' EXIT
  "$ROOT/scripts/testbed.sh" up "$STATE" 1 >/dev/null || exit 1
  . "$STATE/env"
fi
cargo run --release -q -p commissaire-bench -- "$@"
