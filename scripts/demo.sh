#!/bin/bash
# The interim demo: two hosts, "alice" and "bob" (network namespaces joined by a veth), each
# with a wice userspace WireGuard interface configured with the stock `wg` tool; shows
# `wg show` on both, a ping and a 5-second iperf3 figure through the tunnel, then cleans up.
#
# Usage: scripts/demo.sh        (as root; scripts/deps.sh installs what it needs)
# Env:   WICE (default build/wice). DEMO_IMPL=wireguard-go runs the same demo on wireguard-go;
#        that is also what happens, said loudly, while build/wice does not exist yet.
set -eu

WICE=${WICE:-"$(dirname "$0")/../build/wice"}
WICE=$(realpath -m "$WICE")
# shellcheck source=SCRIPTDIR/../tests/e2e/lib.sh
. "$(dirname "$0")/../tests/e2e/lib.sh"

IMPL=${DEMO_IMPL:-wice}

heading() {
	printf '\n== %s ==\n' "$*"
}

# run CMD...: show a command, then run it.
run() {
	printf '$ %s\n' "$*"
	"$@"
}

e2e_init
heading "wice demo: alice and bob, one WireGuard tunnel"
if ! impl_available "$IMPL"; then
	echo "NOTE: wice is not built yet ($WICE missing; build it with: ninja -C build)."
	echo "      Running the same demo with wireguard-go in its place."
	IMPL=wireguard-go
fi
impl_argv "$IMPL"
echo "implementation: ${IMPL_ARGV[*]} -f IFACE"

heading "network: alice 192.0.2.1 <-veth-> bob 192.0.2.2"
ns_add alice
ns_add bob
veth_add alice eth0 bob eth0 192.0.2.1/24 192.0.2.2/24
echo "namespaces alice and bob created"

heading "start one userspace WireGuard interface on each host"
wg_start "$IMPL" alice wg-alice
wg_start "$IMPL" bob wg-bob
echo "alice: wg-alice (pid $(wg_pid wg-alice)), bob: wg-bob (pid $(wg_pid wg-bob))"
echo "UAPI sockets: $WG_RUN_DIR/wg-alice.sock, $WG_RUN_DIR/wg-bob.sock"

heading "keys (wg genkey; private keys stay in 0600 files)"
key_new alice
key_new bob
echo "alice public key: $(key_pub alice)"
echo "bob   public key: $(key_pub bob)"

heading "configure with wg only"
run ip netns exec alice wg set wg-alice private-key "$(key_file alice)" listen-port 51820 \
	peer "$(key_pub bob)" allowed-ips 10.0.0.2/32 endpoint 192.0.2.2:51820
run ip netns exec bob wg set wg-bob private-key "$(key_file bob)" listen-port 51820 \
	peer "$(key_pub alice)" allowed-ips 10.0.0.1/32 endpoint 192.0.2.1:51820
run ip -n alice addr add 10.0.0.1/24 dev wg-alice
run ip -n alice link set wg-alice up
run ip -n bob addr add 10.0.0.2/24 dev wg-bob
run ip -n bob link set wg-bob up

heading "ping bob (10.0.0.2) from alice through the tunnel"
assert_ping alice 10.0.0.2 >/dev/null || true # first packet triggers the handshake
run ip netns exec alice ping -c 3 -i 0.3 10.0.0.2

heading "wg show (alice)"
ip netns exec alice wg show wg-alice
heading "wg show (bob)"
ip netns exec bob wg show wg-bob

heading "iperf3 through the tunnel, alice -> bob, 5 seconds"
ip netns exec bob iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
E2E_BG[$!]=1
wait_listen bob 5201
ip netns exec alice iperf3 -c 10.0.0.2 -p 5201 -t 5 -f m |
	awk '/sender|receiver/ { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec")
		printf "  %-8s %s Mbit/s\n", $NF, $(i - 1) }'

heading "clean up"
wg_stop wg-alice
wg_stop wg-bob
ns_del alice
ns_del bob
echo "interfaces stopped, namespaces alice and bob deleted"
