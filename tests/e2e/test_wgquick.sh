#!/bin/bash
# wg-quick with wice as its userspace implementation, as a user without the kernel module
# would run it: `WG_QUICK_USERSPACE_IMPLEMENTATION=wice-wg-userspace wg-quick up CONF` in two
# network namespaces, then ping and a TCP transfer through the tunnel, an idle interface that
# uses no CPU, ICMP "unreachable" for addresses the tunnel cannot reach (no peer, or a peer
# without an endpoint) as the kernel module answers them, and `wg-quick down` that removes the
# interface, ends the process and its socket.
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
key_new c

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

# Least privilege: every thread keeps CAP_NET_ADMIN (12) and CAP_NET_BIND_SERVICE (10) alone,
# nothing inheritable or ambient, no_new_privs, under the seccomp filter.
privs_of() {
	local t n=0 bad=0 line want
	want="CapInh:0000000000000000 CapPrm:0000000000001400 CapEff:0000000000001400"
	want+=" CapBnd:0000000000001400 CapAmb:0000000000000000 NoNewPrivs:1 Seccomp:2"
	want+=" Seccomp_filters:1 "
	for t in /proc/"$1"/task/*/status; do
		n=$((n + 1))
		line=$(awk '/^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):/ { printf "%s%s ", $1, $2 }' "$t")
		[ "$n" -gt 1 ] || note "$line"
		[ "$line" = "$want" ] || { note "$t: $line"; bad=1; }
	done
	note "$n thread(s) checked"
	[ "$bad" = 0 ] && [ "$n" -ge 4 ]
}
check "every thread: CAP_NET_ADMIN and CAP_NET_BIND_SERVICE alone, seccomp" privs_of "$PID_A"
# What they are kept for: a fwmark and a listen port below 1024, set at run time.
check "wg set fwmark and a listen port below 1024 still work" \
	bash -c "ip netns exec $NS_B wg set $IF_B fwmark 0x51 listen-port 999 &&
		ip netns exec $NS_B wg show $IF_B | grep -q 'listening port: 999' &&
		ip netns exec $NS_B wg show $IF_B | grep -q 'fwmark: 0x51'"
check "ping b -> a from b's new port 999 (a learns it)" assert_ping "$NS_B" 10.98.0.1
check "ping a -> b after that" assert_ping "$NS_A" 10.98.0.2

# What a user sees for an address routed into the tunnel that no packet can reach, as with the
# kernel module: ping reports the ICMP error at once, and a TCP connect fails with "No route
# to host" well within a second instead of hanging. 10.98.0.3 / fd98::3 are in wg-quick's /24
# and /64 but in no peer's allowed IPs; 10.98.0.4 / fd98::4 belong to peer c, with no endpoint.
unreachable_ping() { # unreachable_ping ADDR WANT
	local out
	out=$(ip netns exec "$NS_A" ping -c 1 -W 1 "$1" 2>&1)
	grep -q "$2" <<<"$out" && return 0
	note "ping $1: $(tr '\n' ' ' <<<"$out")"
	return 1
}
unreachable_tcp() { # unreachable_tcp ADDR
	local t0 t1 out
	t0=$(now_ms)
	out=$(ip netns exec "$NS_A" timeout 3 bash -c "exec 3<>/dev/tcp/$1/80" 2>&1)
	t1=$(now_ms)
	note "TCP connect to $1: $((t1 - t0)) ms: $(tail -n 1 <<<"$out")"
	grep -q "No route to host" <<<"$out" && [ $((t1 - t0)) -lt 1000 ]
}
V4_UNREACH="Destination Host Unreachable"
V6_UNREACH="Destination unreachable: Address unreachable"
check "ping to an address of no peer: $V4_UNREACH" unreachable_ping 10.98.0.3 "$V4_UNREACH"
check "TCP to an address of no peer: No route to host, at once" unreachable_tcp 10.98.0.3
check "ping6 to an address of no peer: $V6_UNREACH" unreachable_ping fd98::3 "$V6_UNREACH"
check "TCP over IPv6 to an address of no peer: No route to host, at once" unreachable_tcp fd98::3
add_no_endpoint_peer() {
	ip netns exec "$NS_A" wg set "$IF_A" peer "$(key_pub c)" allowed-ips 10.98.0.4/32,fd98::4/128 &&
		ip netns exec "$NS_A" wg show "$IF_A" endpoints |
		grep -q "^$(key_pub c)[[:space:]]*(none)"
}
check "peer c added, without an endpoint" add_no_endpoint_peer
check "ping to a peer without endpoint: $V4_UNREACH" unreachable_ping 10.98.0.4 "$V4_UNREACH"
check "TCP to a peer without endpoint: No route to host, at once" unreachable_tcp 10.98.0.4
check "ping6 to a peer without endpoint: $V6_UNREACH" unreachable_ping fd98::4 "$V6_UNREACH"
check "TCP over IPv6 to a peer without endpoint: No route to host, at once" unreachable_tcp fd98::4

# A local flood gets a bounded number of errors back (icmp.h: 10/s after a burst of 20): of
# 200 pings sent 2 ms apart, at most 20 + 10/s of ping's running time (and one of slack).
flood_limited() {
	local out errs ms
	out=$(ip netns exec "$NS_A" ping -q -c 200 -i 0.002 -W 1 10.98.0.3 2>&1)
	errs=$(sed -n 's/.*+\([0-9]*\) errors.*/\1/p' <<<"$out")
	ms=$(sed -n 's/.* time \([0-9]*\)ms.*/\1/p' <<<"$out")
	note "flood: $(grep transmitted <<<"$out")"
	[ -n "$errs" ] && [ -n "$ms" ] && [ "$errs" -ge 1 ] &&
		[ "$errs" -le $((20 + 10 * ms / 1000 + 1)) ] && [ "$errs" -lt 100 ]
}
check "a ping flood to an unreachable address gets rate-limited errors" flood_limited
check "the tunnel still works: ping a -> b" assert_ping "$NS_A" 10.98.0.2

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
