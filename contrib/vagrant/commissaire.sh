#!/bin/bash
# Vagrant provisioning of the "commissaire" machine: builds the checkout synced
# to /vagrant, installs the binaries, playbooks, configuration
# (contrib/vagrant/*.conf) and systemd units (conf/systemd/), starts
# commissaire.target, and sets up commctl for the vagrant user.
# Re-running it (vagrant rsync commissaire && vagrant provision commissaire)
# rebuilds and restarts.
#   commissaire.sh COMMISSAIRE_IP SERVERS_IP
set -euo pipefail
IP=${1:?usage: commissaire.sh COMMISSAIRE_IP SERVERS_IP}
SERVERS=${2:?usage: commissaire.sh COMMISSAIRE_IP SERVERS_IP}
SRC=/vagrant
TARGET=/home/vagrant/target
say() { echo "===> $*"; }
warn() { echo "WARNING: $*" >&2; }

say "Installing build and runtime packages"
dnf install -y --setopt=install_weak_deps=False \
  gcc rust cargo protobuf-compiler git curl python3 \
  ansible-core ansible-collection-ansible-posix openssh-clients

# The workspace uses edition 2024 (Rust >= 1.85).
CARGO=cargo
have=$(rustc --version 2>/dev/null | awk '{print $2}')
if ! printf '%s\n%s\n' 1.85.0 "${have:-0}" | sort -C -V; then
  say "Fedora's Rust ($have) is too old; installing a toolchain with rustup"
  dnf install -y rustup
  sudo -u vagrant -H rustup-init -y --profile minimal
  CARGO=/home/vagrant/.cargo/bin/cargo
fi

say "Building the workspace (release); this takes a while the first time"
sudo -u vagrant -H env CARGO_TARGET_DIR="$TARGET" PROTOC=/usr/bin/protoc \
  "$CARGO" build --release --locked --workspace --bins --manifest-path "$SRC/Cargo.toml"

say "Creating the commissaire user"
getent group commissaire >/dev/null || groupadd -r commissaire
getent passwd commissaire >/dev/null ||
  useradd -r -g commissaire -d /var/lib/commissaire -s /usr/sbin/nologin -c "Commissaire daemons" commissaire
install -d -o commissaire -g commissaire -m 0750 /var/lib/commissaire

say "Installing binaries"
installed=()
for bin in commissaire-server commissaire-storage-service commissaire-investigator-service \
           commissaire-watcher-service commissaire-clusterexec-service \
           commissaire-containermgr-service commissaire commctl; do
  if [ -x "$TARGET/release/$bin" ]; then
    install -m 0755 "$TARGET/release/$bin" /usr/bin/$bin
    installed+=("$bin")
  else
    warn "$bin was not built (not in the workspace yet?); skipping it"
  fi
done
has() { printf '%s\n' "${installed[@]}" | grep -qx "$1"; }

say "Installing playbooks and configuration"
rm -rf /usr/share/commissaire/playbooks
install -d /usr/share/commissaire
cp -r "$SRC/playbooks" /usr/share/commissaire/playbooks
install -d -o root -g commissaire -m 0750 /etc/commissaire
for conf in commissaire storage investigator watcher clusterexec containermgr; do
  sed "s/192\.168\.152\.101/$SERVERS/g" "$SRC/contrib/vagrant/$conf.conf" > /etc/commissaire/$conf.conf
done
# The development user "a", password "a".
install -m 0640 "$SRC/conf/users.json" /etc/commissaire/users.json
chown root:commissaire /etc/commissaire/*.conf /etc/commissaire/users.json
chmod 0640 /etc/commissaire/*.conf
[ -f /etc/sysconfig/commissaire ] ||
  install -m 0600 "$SRC/conf/systemd/commissaire.sysconfig" /etc/sysconfig/commissaire

say "Installing systemd units"
unit_binary() {
  case $1 in
    commissaire-server.service) echo commissaire-server ;;
    commissaire.service) echo commissaire ;;
    commissaire-storage.service) echo commissaire-storage-service ;;
    commissaire-*.service) b=${1%.service}; echo "$b-service" ;;
  esac
}
install -m 0644 "$SRC/conf/systemd/commissaire.target" /etc/systemd/system/commissaire.target
for unit in "$SRC"/conf/systemd/*.service; do
  name=$(basename "$unit")
  if has "$(unit_binary "$name")"; then
    install -m 0644 "$unit" "/etc/systemd/system/$name"
  fi
done
restorecon -R /usr/bin /etc/commissaire /etc/systemd/system /var/lib/commissaire 2>/dev/null || true
systemctl daemon-reload

say "Starting commissaire.target"
systemctl enable commissaire.target
systemctl restart commissaire.target

say "Setting up commctl for the vagrant user"
install -d -o vagrant -g vagrant -m 0700 /home/vagrant/.ssh
install -o vagrant -g vagrant -m 0600 /tmp/commissaire_id_ed25519 /home/vagrant/.ssh/commissaire_id_ed25519
rm -f /tmp/commissaire_id_ed25519
cat > /home/vagrant/.commissaire.json <<JSON
{
  "endpoint": "http://$IP:8000",
  "username": "a",
  "password": "a"
}
JSON
chown vagrant:vagrant /home/vagrant/.commissaire.json
chmod 0600 /home/vagrant/.commissaire.json

say "Waiting for the REST server"
for _ in $(seq 1 60); do
  if curl -fsS -u a:a "http://$IP:8000/api/v0/clusters" >/dev/null 2>&1; then
    break
  fi
  sleep 2
done
curl -fsS -u a:a "http://$IP:8000/api/v0/networks" && echo

cat <<MSG
===> Commissaire is up on http://$IP:8000 (user a, password a). Try:
  vagrant ssh commissaire
  commctl cluster create mycluster
  commctl host create --cluster mycluster 192.168.152.110 ~/.ssh/commissaire_id_ed25519
  commctl host list
  systemctl status 'commissaire-*'
MSG
