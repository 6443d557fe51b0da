#!/bin/bash
# The API description holds: the all-in-one's /api/v0/openapi.json is a valid
# OpenAPI document (openapi-spec-validator), and a property-based run of
# schemathesis against the all-in-one it describes finds no server error, no
# status its description does not list and no answer that is not JSON.
#
#   scripts/check-openapi.sh [BINARY]
#
# BINARY: the all-in-one (default target/debug/commissaire, built if missing).
# Installs both tools (pinned, from PyPI) into a virtual environment under
# ${XDG_CACHE_HOME:-~/.cache}/commissaire/ once per machine. The run's seed is
# fixed (SCHEMATHESIS_SEED, default 1) so that a failure reproduces; set
# another to explore. Exit status: 0 when both pass. Run by scripts/test.sh.
set -uo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT" || exit 1
VALIDATOR=0.9.0
SCHEMATHESIS=4.32.5
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/commissaire/openapi-tools-$VALIDATOR-$SCHEMATHESIS
if [ ! -x "$VENV/bin/schemathesis" ] || [ ! -x "$VENV/bin/openapi-spec-validator" ]; then
  echo "check-openapi: installing openapi-spec-validator $VALIDATOR and schemathesis $SCHEMATHESIS into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV" || { echo "check-openapi: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
  "$VENV/bin/pip" install -q "openapi-spec-validator==$VALIDATOR" "schemathesis==$SCHEMATHESIS" ||
    { echo "check-openapi: pip install failed" >&2; rm -rf "$VENV"; exit 1; }
fi

BIN=${1:-$ROOT/target/debug/commissaire}
if [ ! -x "$BIN" ]; then
  cargo build -p commissaire || exit 1
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-openapi.XXXXXX") || exit 1
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" --no-config-file --listen-interface 127.0.0.1 --listen-port "$PORT" \
  --data-dir "$WORK/data" \
  --authentication-plugin "httpbasicauth:filepath=$ROOT/conf/users.json" \
  >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
BASE=http://127.0.0.1:$PORT
for _ in $(seq 1 300); do
  curl -fs "$BASE/readyz" >/dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { echo "check-openapi: the all-in-one exited:" >&2; cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.2
done
curl -fs "$BASE/api/v0/openapi.json" -o "$WORK/openapi.json" ||
  { echo "check-openapi: GET /api/v0/openapi.json failed" >&2; exit 1; }

"$VENV/bin/openapi-spec-validator" "$WORK/openapi.json" || exit 1

# One worker: schemathesis' threads race in hypothesis' own bookkeeping
# ("AST constructor recursion depth mismatch", a runtime error of the tool,
# not an answer of the server).
# From $WORK: schemathesis keeps its cache (.schemathesis/) in the current
# directory.
(cd "$WORK" && "$VENV/bin/schemathesis" run "$WORK/openapi.json" --url "$BASE" --auth a:a \
  --checks not_a_server_error,status_code_conformance,content_type_conformance \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-30}" --seed "${SCHEMATHESIS_SEED:-1}" \
  --workers 1 --no-color --request-timeout 30)
rc=$?
if grep -q "panicked" "$WORK/server.log"; then
  echo "check-openapi: the all-in-one panicked:" >&2
  grep -A5 "panicked" "$WORK/server.log" >&2
  rc=1
fi
kill -0 $SERVER 2>/dev/null || { echo "check-openapi: the all-in-one died during the run" >&2; rc=1; }
exit $rc
