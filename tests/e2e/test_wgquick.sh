#!/bin/bash
# wg-quick with wice as its userspace implementation, as a user without the kernel module
# would run it: `WG_QUICK_USERSPACE_IMPLEMENTATION=wice-wg-userspace wg-quick up CONF` in two
# network namespaces, then ping and a TCP transfer through the tunnel, an idle interface that
# uses no CPU, and `wg-quick down` that removes the interface, ends the process and its socket.
#
# Usage: tests/e2e/test_wgquick.sh        (as root; WICE=path to the wice binary)
set -eu

WICE=${WICE:-"$(dirname "$0")/../../build/wice"}
WICE=$(realpath -m "$WICE")
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

e2e_init
export WG_QUICK_USERSPACE_IMPLEMENTATION="$(dirname "$WICE")/wice-wg-userspace"
if [ ! -x "$WG_QUICK_USERSPACE_IMPLEMENTATION" ]; then
	fail "wice-wg-userspace next to $WICE"
	exit 1
fi

NS_A="wqa$E2E_ID"
NS_B="wqb$E2E_ID"
IF_A="wqa$E2E_ID"
IF_B="wqb$E2E_ID"
ns_add "$NS_A"
ns_add "$NS_B"
veth_add "$NS_A" veth0 "$NS_B" veth0 192.0.2.1/24 192.0.2.2/24
key_new a
key_new b

conf() { # conf IFACE KEY ADDRESS PORT PEER_PUB PEER_ALLOWED [ENDPOINT]
	(
		umask 077
		printf '[Interface]\nPrivateKey = %s\nAddress = %s\nListenPort = %s\n' \
			"$(cat "$(key_file "$2")")" "$3" "$4"
		printf '[Peer]\nPublicKey = %s\nAllowedIPs = %s\n' "$5" "$6"
		[ -z "${7:-}" ] || printf 'Endpoint = %s\n' "$7"
	) >"$E2E_TMP/$1.conf"
	echo "$E2E_TMP/$1.conf"
}

# The process behind an interface: the one listening on its UAPI socket (unix sockets belong
# to a network namespace, so ask inside it).
uapi_pid() {
	ip netns exec "$2" ss -xlpn 2>/dev/null | awk -v s="$WG_RUN_DIR/$1.sock" '$5 == s' |
		sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1
}

CONF_A=$(conf "$IF_A" a "10.98.0.1/24, fd98::1/64" 41001 "$(key_pub b)" "10.98.0.2/32, fd98::2/128" 192.0.2.2:41002)
CONF_B=$(conf "$IF_B" b "10.98.0.2/24, fd98::2/64" 41002 "$(key_pub a)" "10.98.0.1/32, fd98::1/128")

up() {
	ip netns exec "$1" wg-quick up "$2" >"$E2E_TMP/up.$1.log" 2>&1 ||
		{ sed 's/^/#   | /' "$E2E_TMP/up.$1.log"; return 1; }
}
check "wg-quick up $IF_A with wice" up "$NS_A" "$CONF_A"
check "wg-quick up $IF_B with wice" up "$NS_B" "$CONF_B"
PID_A=$(uapi_pid "$IF_A" "$NS_A")
PID_B=$(uapi_pid "$IF_B" "$NS_B")
both_found() { [ -n "$PID_A" ] && [ -n "$PID_B" ]; }
check "found the processes serving both interfaces" both_found
[ -z "$PID_A" ] || E2E_BG[$PID_A]=1
[ -z "$PID_B" ] || E2E_BG[$PID_B]=1
check "wg-quick's interface has MTU 1420 and is up" \
	bash -c "ip -n $NS_A link show $IF_A | grep -q 'mtu 1420.*state UNKNOWN\|UP.*mtu 1420'"
check "ping a -> b through the tunnel" assert_ping "$NS_A" 10.98.0.2
check "ping b -> a (IPv6 inside)" assert_ping "$NS_B" fd98::1
check "TCP b -> a through the tunnel" assert_tcp "$NS_A" 10.98.0.1 "$NS_B" 8000000

# Idle: right after traffic no timer is due for 10 s; both processes must sleep.
idle_ticks() {
	local p t0 t1
	t0=0
	for p in "$PID_A" "$PID_B"; do
		t0=$((t0 + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
	done
	sleep 4
	t1=0
	for p in "$PID_A" "$PID_B"; do
		t1=$((t1 + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
	done
	note "idle: $((t1 - t0)) clock ticks over 4 s for both processes"
	[ $((t1 - t0)) -le 1 ]
}
check "an idle interface uses no CPU" idle_ticks

down() {
	local ns=$1 conf=$2 iface=$3 pid=$4 i
	ip netns exec "$ns" wg-quick down "$conf" >/dev/null 2>&1 || return 1
	for i in $(seq 50); do
		alive "$pid" || break
		sleep 0.1
	done
	! alive "$pid" && [ ! -e "$WG_RUN_DIR/$iface.sock" ] &&
		! ip -n "$ns" link show "$iface" >/dev/null 2>&1
}
check "wg-quick down ends the process, socket and interface" down "$NS_A" "$CONF_A" "$IF_A" "$PID_A"
check "wg-quick down on the other side too" down "$NS_B" "$CONF_B" "$IF_B" "$PID_B"
e2e_summary
