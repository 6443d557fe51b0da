#!/bin/bash
# Vagrant provisioning of the optional "kubernetes" machine: a single-server
# k3s whose API Commissaire's container manager service registers nodes with.
# Leaves a service account token for Commissaire in ~vagrant/commissaire.token.
#   kubernetes.sh IP
set -euo pipefail
IP=${1:?usage: kubernetes.sh IP}
say() { echo "===> $*"; }

if ! command -v k3s >/dev/null; then
  say "Installing k3s"
  curl -sfL https://get.k3s.io | INSTALL_K3S_EXEC="server --node-ip $IP --advertise-address $IP --tls-san $IP --write-kubeconfig-mode 0644" sh -
fi
for _ in $(seq 1 60); do
  k3s kubectl get --raw /readyz >/dev/null 2>&1 && break
  sleep 2
done

say "Creating the service account 'commissaire' (cluster-admin, development only)"
k3s kubectl -n kube-system get serviceaccount commissaire >/dev/null 2>&1 ||
  k3s kubectl -n kube-system create serviceaccount commissaire
k3s kubectl get clusterrolebinding commissaire >/dev/null 2>&1 ||
  k3s kubectl create clusterrolebinding commissaire --clusterrole=cluster-admin \
    --serviceaccount=kube-system:commissaire
k3s kubectl -n kube-system create token commissaire --duration=8760h > /home/vagrant/commissaire.token
chown vagrant: /home/vagrant/commissaire.token
chmod 0600 /home/vagrant/commissaire.token

say "kubernetes ready. On the commissaire machine:"
echo "  commctl container_manager create --type kubernetes \\"
echo "      -o server_url=https://$IP:6443 -o token=\$TOKEN k3s"
echo "  (TOKEN: vagrant ssh kubernetes -c 'cat commissaire.token')"
