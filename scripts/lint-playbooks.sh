#!/bin/bash
# The playbooks are clean under ansible-lint.
#
#   scripts/lint-playbooks.sh
#
# Installs ansible-lint (pinned, from PyPI) into a virtual environment under
# ${XDG_CACHE_HOME:-~/.cache}/commissaire/ once per machine, then lints
# playbooks/ (profile: production, the strictest). Exit status: ansible-lint's
# (0 when clean). Run by scripts/test.sh (the whole suite).
set -uo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT" || exit 1
VERSION=26.10.1
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/commissaire/ansible-lint-$VERSION
if [ ! -x "$VENV/bin/ansible-lint" ]; then
  echo "lint-playbooks: installing ansible-lint $VERSION into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV" || { echo "lint-playbooks: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
  "$VENV/bin/pip" install -q "ansible-lint==$VERSION" ||
    { echo "lint-playbooks: pip install ansible-lint==$VERSION failed" >&2; rm -rf "$VENV"; exit 1; }
fi
# Its own ansible-core, from the venv; no colour, no Galaxy downloads.
PATH="$VENV/bin:$PATH" NO_COLOR=1 ANSIBLE_LINT_NODEPS=1 \
  "$VENV/bin/ansible-lint" --offline --profile production playbooks
