#!/bin/bash
# Vagrant provisioning of a node: a plain Fedora host for Commissaire to
# bootstrap. Commissaire logs in as root with the key uploaded to
# /tmp/commissaire.pub and needs sshd and python3 there.
set -euo pipefail
say() { echo "===> $*"; }

say "Installing python3 (Ansible needs it on the hosts)"
dnf install -y --setopt=install_weak_deps=False python3 openssh-server
systemctl enable --now sshd

say "Authorizing the Commissaire key for root"
install -d -m 0700 /root/.ssh
touch /root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys
key=$(cat /tmp/commissaire.pub)
grep -qxF "$key" /root/.ssh/authorized_keys || echo "$key" >> /root/.ssh/authorized_keys
rm -f /tmp/commissaire.pub
restorecon -R /root/.ssh 2>/dev/null || true

say "$(hostname) ready to be added: commctl host create --cluster CLUSTER $(hostname -I | awk '{print $NF}') ~/.ssh/commissaire_id_ed25519"
