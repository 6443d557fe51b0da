#!/bin/bash
# Installs the Debian packages the test bed and the tests need (etcd, RabbitMQ,
# Redis, sshd, Ansible, protoc, openssl, curl, Prometheus, python3-venv for
# ansible-lint; Go, rsync and dpkg-dev to build the test bed's kube-apiserver
# with scripts/build-kube-apiserver.sh), without letting apt start the
# packages' own services. Does nothing when everything is installed.
# Writes the list of packages it installed to /tmp/commissaire-installed-pkgs.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
say() { echo "install-deps: $*" >&2; }
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
: > /tmp/commissaire-installed-pkgs
PKGS=(etcd-server etcd-client rabbitmq-server redis-server openssh-server openssh-client
      ansible-core ansible protobuf-compiler curl openssl python3 python3-venv iproute2 procps
      prometheus systemd
      golang-go rsync dpkg-dev)   # the last three build the test bed's kube-apiserver
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  say "installing: ${missing[*]}"
  # Keep apt from starting the packages' own services (invoke-rc.d and
  # deb-systemd-invoke both honour policy-rc.d; 101 = action forbidden).
  policy_created=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    policy_created=1
  fi
  rc=0
  {
    $SUDO apt-get update -q &&
    $SUDO apt-get install -y -q "${missing[@]}"
  } || rc=$?
  [ -z "$policy_created" ] || $SUDO rm -f /usr/sbin/policy-rc.d
  [ $rc -eq 0 ] || { say "apt-get failed (rc=$rc)"; exit $rc; }
  printf '%s\n' "${missing[@]}" > /tmp/commissaire-installed-pkgs
  say "packages installed"
else
  say "all packages already installed"
fi

