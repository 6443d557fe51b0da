#!/bin/bash
# Builds a real kube-apiserver (Kubernetes v1.20.2) for the test bed from
# Debian bookworm's `kubernetes` source package (the full upstream tree with
# vendor/) with Debian's Go, once per machine: the binary is cached under
# OUT_DIR (default: $KUBE_CACHE/kube-apiserver-$VERSION/bin, KUBE_CACHE being
# ${XDG_CACHE_HOME:-$HOME/.cache}/commissaire-testbed) and a second call does
# nothing. Prints the binary's path on stdout.
#
#   scripts/build-kube-apiserver.sh            build if missing, print the path
#   scripts/build-kube-apiserver.sh --path     print where the binary is (built or not)
#
# Needs apt (as root, or sudo) for golang-go and rsync (k8s' Makefile uses
# rsync), and the source package from Debian's archive (a deb-src list of
# its own, derived from the machine's /etc/apt sources; /etc/apt is left
# untouched). About 3-4 minutes and 1.3 GB of memory on 2 cores.
#
# v1.20.2's vendored github.com/modern-go/reflect2 v1.0.1 crashes under
# Go >= 1.18 on the first node POST; Debian's 1.0.2 is swapped in.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
say() { echo "build-kube-apiserver: $*" >&2; }

VERSION=1.20.2
DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
REFLECT2=1.0.2-2
KUBE_CACHE=${KUBE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/commissaire-testbed}
W=$KUBE_CACHE/kube-apiserver-$VERSION
OUT=$W/bin
BIN=$OUT/kube-apiserver

if [ "${1:-}" = --path ]; then echo "$BIN"; exit 0; fi
if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "v$VERSION"; then
  echo "$BIN"; exit 0
fi

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
t0=$(date +%s)
need=()
command -v go >/dev/null || need+=(golang-go)
command -v rsync >/dev/null || need+=(rsync)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q "${need[@]}" >/dev/null
fi

mkdir -p "$W"/apt/{lists/partial,cache/archives/partial,parts} "$W"/src "$OUT"
# A private deb-src list from the machine's own sources.
src=/etc/apt/sources.list.d/debian.sources
if [ -f "$src" ]; then
  sed 's/^Types: deb$/Types: deb-src/' "$src" > "$W"/apt/parts/src.sources
  : > "$W"/apt/parts/src.list
else
  sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > "$W"/apt/parts/src.list
  rm -f "$W"/apt/parts/src.sources
fi
APTO=(-o APT::Sandbox::User=root -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$W"/apt/parts
      -o Dir::State::Lists="$W"/apt/lists -o Dir::Cache="$W"/apt/cache)
cd "$W"/src
if [ ! -f kubernetes_1.20.5+really1.20.2.orig.tar.gz ]; then
  say "downloading the kubernetes $DEB_VERSION source package"
  apt-get "${APTO[@]}" update -q >/dev/null
  apt-get "${APTO[@]}" source --download-only -q "kubernetes=$DEB_VERSION" >/dev/null
fi
[ -f "golang-github-modern-go-reflect2-dev_${REFLECT2}_all.deb" ] ||
  apt-get -o APT::Sandbox::User=root download -q "golang-github-modern-go-reflect2-dev=$REFLECT2" >/dev/null
rm -rf "kubernetes-$VERSION" r2
tar xzf kubernetes_1.20.5+really1.20.2.orig.tar.gz
dpkg-deb -x "golang-github-modern-go-reflect2-dev_${REFLECT2}_all.deb" r2
V=kubernetes-$VERSION/vendor/github.com/modern-go/reflect2
rm -f "$V"/*
cp r2/usr/share/gocode/src/github.com/modern-go/reflect2/*.go r2/usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$V"/
cd "kubernetes-$VERSION"
mkdir -p .go/src/k8s.io && ln -sfn ../../.. .go/src/k8s.io/kubernetes   # as Debian's rules do
say "building kube-apiserver v$VERSION with $(go version | cut -d' ' -f3)"
GOPATH=$PWD/.go GOCACHE=$W/gocache CGO_ENABLED=0 GOMAXPROCS=${GOMAXPROCS:-2} HOME=$W \
  make WHAT=cmd/kube-apiserver >"$W/build.log" 2>&1 || { tail -30 "$W/build.log" >&2; exit 1; }
cp _output/local/bin/linux/amd64/kube-apiserver "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
cd "$W"/src && rm -rf "kubernetes-$VERSION" r2 "$W/gocache"   # the tree is 1 GB; the tarball stays
"$BIN" --version >&2
say "built in $(( $(date +%s) - t0 )) s: $BIN"
echo "$BIN"
