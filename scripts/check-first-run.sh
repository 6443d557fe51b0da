#!/bin/bash
# The README's first command needs nothing but a Rust toolchain.
#
#   scripts/check-first-run.sh
#
# Builds the all-in-one (`cargo build -p commissaire`, the crate the README's
# `cargo run --release -p commissaire` runs) in a fresh target directory,
# inside a private mount namespace where `protoc` (and `cmake`) are out of
# reach: each one found is covered by a script that fails saying so, and
# PROTOC is unset. A fresh target directory, because a build script that ran
# once is not run again: a reused one would hide a dependency on protoc.
# Exits 0 when the build succeeds; the debug profile builds the same
# dependency graph (and build scripts) as the README's release one.
#
# Needs `unshare` (util-linux) and root, or unprivileged user namespaces.
# Run by scripts/test.sh (the whole suite); about 4-6 minutes on 2 cores.
set -uo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT" || exit 1

if [ "${1:-}" = "--inside" ]; then
  # In the namespace: cover the tools, prove they are gone, build.
  blocker=$(mktemp "${TMPDIR:-/tmp}/no-such-tool.XXXXXX") || exit 1
  printf '#!/bin/sh\necho "check-first-run: $(basename "$0") is out of reach on purpose" >&2\nexit 127\n' > "$blocker"
  chmod 755 "$blocker"
  hidden=()
  for tool in protoc cmake; do
    while read -r path; do
      [ -n "$path" ] || continue
      mount --bind "$blocker" "$path" || { echo "check-first-run: cannot hide $path" >&2; exit 1; }
      hidden+=("$path")
    done < <(type -ap "$tool" | sort -u)
  done
  unset PROTOC PROTOC_INCLUDE
  if protoc --version >/dev/null 2>&1; then
    echo "check-first-run: protoc still answers; the check would prove nothing" >&2
    exit 1
  fi
  echo "check-first-run: hidden: ${hidden[*]:-nothing (none installed)}" >&2
  target=$(mktemp -d "${TMPDIR:-/tmp}/commissaire-first-run.XXXXXX") || exit 1
  start=$(date +%s)
  CARGO_TARGET_DIR=$target cargo build --locked -p commissaire 2>&1 | tail -n 20
  rc=${PIPESTATUS[0]}
  for path in ${hidden[@]+"${hidden[@]}"}; do umount "$path" 2>/dev/null; done
  rm -rf "$target" "$blocker"
  if [ "$rc" -ne 0 ]; then
    echo "check-first-run: the all-in-one does not build without protoc (rc=$rc)" >&2
    exit "$rc"
  fi
  echo "check-first-run: the all-in-one builds without protoc ($(( $(date +%s) - start )) s, fresh target directory)" >&2
  exit 0
fi

command -v unshare >/dev/null 2>&1 || { echo "check-first-run: unshare (util-linux) is missing" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then
  exec unshare --mount --propagation private bash "$0" --inside
else
  exec unshare --mount --propagation private --map-root-user bash "$0" --inside
fi
