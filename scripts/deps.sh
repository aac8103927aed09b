#!/bin/sh
# Installs the Debian packages wice needs to build, demo and test. Idempotent and quiet:
# a no-op when everything is present.
set -eu
PKGS="gcc make meson ninja-build pkg-config libssl-dev libsodium-dev libcmocka-dev
clang libclang-rt-14-dev llvm wireguard-tools wireguard-go iperf3 iproute2 nftables procps
iputils-ping netcat-openbsd libprotobuf-c-dev protobuf-c-compiler libgrpc-dev
libwebsockets-dev libmnl-dev openssl
coturn libnice-dev libglib2.0-dev libyaml-dev libjson-glib-dev tcpdump python3
libnftables-dev libcap-ng-dev libseccomp-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# --no-install-recommends: wireguard-tools recommends the kernel module packages, which we
# neither need nor want pulled onto a host.
apt-get install -y -qq --no-install-recommends $missing >/dev/null
