#!/bin/bash
# Vagrant provisioning of the "servers" machine: etcd (store), RabbitMQ (bus)
# and Redis (the other bus), reachable from the other machines.
#   servers.sh IP
set -euo pipefail
IP=${1:?usage: servers.sh IP}
say() { echo "===> $*"; }

say "Installing etcd, RabbitMQ and Redis"
dnf install -y --setopt=install_weak_deps=False etcd rabbitmq-server

say "Configuring etcd to listen on $IP"
conf=/etc/etcd/etcd.conf
mkdir -p /etc/etcd
touch "$conf"
setvar() {   # NAME VALUE: set (or uncomment and set) NAME in $conf
  if grep -q "^#\?$1=" "$conf"; then
    sed -i "s|^#\?$1=.*|$1=\"$2\"|" "$conf"
  else
    echo "$1=\"$2\"" >> "$conf"
  fi
}
setvar ETCD_LISTEN_CLIENT_URLS "http://0.0.0.0:2379"
setvar ETCD_ADVERTISE_CLIENT_URLS "http://$IP:2379"
systemctl enable --now etcd
systemctl restart etcd

say "Storing a flannel network configuration (flannel_etcd networks)"
for _ in $(seq 1 30); do
  etcdctl --endpoints "http://$IP:2379" endpoint health >/dev/null 2>&1 && break
  sleep 1
done
etcdctl --endpoints "http://$IP:2379" put /atomic.io/network/config \
  '{"Network": "172.16.0.0/12", "SubnetLen": 24, "Backend": {"Type": "vxlan"}}' >/dev/null

say "Starting RabbitMQ with a user 'commissaire' (guest only works from localhost)"
systemctl enable --now rabbitmq-server
for _ in $(seq 1 60); do
  rabbitmqctl await_startup >/dev/null 2>&1 && break
  sleep 2
done
if ! rabbitmqctl list_users | grep -q '^commissaire\b'; then
  rabbitmqctl add_user commissaire commissaire
fi
rabbitmqctl set_permissions -p / commissaire '.*' '.*' '.*'

say "Starting Redis (or Valkey) on $IP (development only: no password)"
svc=
if dnf install -y redis; then svc=redis
elif dnf install -y valkey; then svc=valkey
else echo "WARNING: neither redis nor valkey could be installed; no redis:// bus" >&2
fi
if [ -n "$svc" ]; then
  for rconf in /etc/redis/redis.conf /etc/redis.conf /etc/valkey/valkey.conf; do
    [ -f "$rconf" ] || continue
    sed -i 's/^bind .*/bind 0.0.0.0/; s/^protected-mode .*/protected-mode no/' "$rconf"
  done
  systemctl enable --now "$svc"
  systemctl restart "$svc"
fi

say "servers ready: etcd http://$IP:2379, amqp://commissaire:commissaire@$IP:5672/%2f, redis://$IP:6379/"
