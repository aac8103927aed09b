#!/bin/bash
# The wice demo (`make demo`): two hosts, "alice" and "bob", each behind its own NAT, with a
# userspace WireGuard interface that knows the other's public key but not its address. A relay
# on the "internet" runs coturn (STUN/TURN) and `wice signal`; a `wice daemon` on each host
# finds the path through the NATs with ICE and points WireGuard at it. Prints the daemon's
# status, `wg show`, a ping and an iperf3 figure through the tunnel, then cleans up.
#
# Usage: scripts/demo.sh          (as root, after `make build`; `make demo` does both)
# Env:   DEMO_NAT=eim        endpoint-independent NATs: a direct path (the default)
#        DEMO_NAT=symmetric  symmetric NATs: no direct path, relayed through TURN
#        WICE (default build/wice), E2E_KEEP=1 keeps logs and keys
#
# Everything lives in network namespaces named like h-alice-demoXXXX (random XXXX), removed
# on exit, INT and TERM; processes are stopped by PID. The topology comes from
# tests/e2e/nat.sh (docs/testing.md).
set -eu

DIR=$(cd "$(dirname "$0")" && pwd)
WICE=${WICE:-"$DIR/../build/wice"}
WICE=$(realpath -m "$WICE")
# shellcheck source=SCRIPTDIR/../tests/e2e/lib.sh
. "$DIR/../tests/e2e/lib.sh"
# shellcheck source=SCRIPTDIR/../tests/e2e/nat.sh
. "$DIR/../tests/e2e/nat.sh"

KIND=${DEMO_NAT:-eim}
case $KIND in
eim | symmetric) ;;
*) echo "demo: DEMO_NAT must be eim or symmetric, not '$KIND'" >&2; exit 2 ;;
esac

heading() {
	printf '\n== %s ==\n' "$*"
}

# say HOST CMD...: show a command as typed on HOST.
say() {
	local host=$1
	shift
	printf '%-5s $ %s\n' "$host" "$*"
}

# on HOST CMD...: run CMD in HOST's namespace.
on() {
	local host=$1
	shift
	ip netns exec "$(nat_ns "$host")" "$@"
}

# logtail TITLE FILE: the last lines of a log, indented.
logtail() {
	[ -s "$2" ] || return 0
	echo "--- $1 (last 15 lines of $2) ---"
	tail -n 15 "$2" | sed 's/^/  | /'
}

# die MESSAGE: say what failed, show the logs that matter, exit non-zero (cleanup follows).
die() {
	echo
	echo "demo FAILED: $*"
	logtail "wice daemon on alice" "$E2E_TMP/daemon-alice.log"
	logtail "wice daemon on bob" "$E2E_TMP/daemon-bob.log"
	logtail "wice signal" "$E2E_TMP/signal.log"
	logtail "wg-userspace on alice" "$E2E_TMP/$IF_A.log"
	logtail "wg-userspace on bob" "$E2E_TMP/$IF_B.log"
	logtail "coturn" "${NAT_TURN_DIR:-/nonexistent}/main.log"
	exit 1
}

# on_exit: stop the daemons first (they restore nothing, but should see SIGTERM before their
# interfaces vanish), then lib.sh's e2e_cleanup: interfaces, coturn, signal, namespaces.
on_exit() {
	local rc=$? pid n
	set +e
	# A signal's trap may run inside a redirected command (the iperf3 log): back to the terminal.
	exec 1>&3 2>&4
	trap - INT TERM
	heading "clean up"
	n=$((${#E2E_BG[@]} + ${#E2E_WG_PID[@]}))
	for pid in "${DAEMON_PIDS[@]}"; do
		stop_pid "$pid"
		unset "E2E_BG[$pid]"
	done
	echo "stopping $n processes by PID, deleting ${#E2E_NAMESPACES[@]} namespaces:" \
		"${E2E_NAMESPACES[*]}"
	(exit "$rc")
	e2e_cleanup
}

for cmd in turnserver openssl nft wg iperf3 ping "$PYTHON"; do
	command -v "$cmd" >/dev/null 2>&1 ||
		{ echo "demo: $cmd is not installed (run scripts/deps.sh)" >&2; exit 1; }
done
if [ ! -x "$WICE" ]; then
	echo "demo: $WICE does not exist: build it first (make build)" >&2
	exit 1
fi

exec 3>&1 4>&2
e2e_init
# Names: the namespaces are h-alice-demoXXXX, rt-alice-demoXXXX, wh-relay-demoXXXX and
# wan-demoXXXX (nat.sh's scheme with a "demo" ID), so they never collide with a test run.
HEX=${E2E_ID:0:4}
E2E_ID="demo$HEX"
IF_A="wg-alice-$HEX"
IF_B="wg-bob-$HEX"
DAEMON_PIDS=()
trap on_exit EXIT
wice_snapshot # a private copy: a rebuild during the demo cannot swap the binary under it
T_START=$(now_ms)

SIG_WS=8088
SIG_GRPC=8443
BACKEND="ws://$NAT_RELAY4:$SIG_WS/"
STUN="stun:$NAT_RELAY4:$NAT_STUN_PORT"
TURN="turn:$NAT_TURN_USER:$NAT_TURN_PASS@$NAT_RELAY4:$NAT_STUN_PORT?transport=udp"
TUN_A=10.99.0.1
TUN_B=10.99.0.2

if [ "$KIND" = eim ]; then
	NAT_TEXT="an endpoint-independent (port-preserving) NAT: expect a direct path"
	WANT=direct
else
	NAT_TEXT="a symmetric NAT (a new port per destination): expect the TURN relay"
	WANT=relayed
fi
heading "wice demo: alice and bob, each behind $NAT_TEXT"

# ---- (1) the topology ------------------------------------------------------------------------
heading "build the network (namespaces, ID demo$HEX)"
nat_wan || die "creating the wan namespace"
nat_relay || die "starting coturn on the relay"
nat_bg relay "$WICE" signal --ws "0.0.0.0:$SIG_WS" --grpc "0.0.0.0:$SIG_GRPC" \
	>"$E2E_TMP/signal.log" 2>&1 </dev/null
SIGNAL_PID=$NAT_BG_PID
wait_listen "$(nat_ns relay)" "$SIG_WS" || die "wice signal does not listen on :$SIG_WS"
{ nat_router "$KIND" nat-a && nat_host alice nat-a; } || die "creating alice and her NAT"
{ nat_router "$KIND" nat-b && nat_host bob nat-b; } || die "creating bob and his NAT"
cat <<EOF
  internet   $(nat_ns wan): 203.0.113.0/24
  relay      $(nat_ns relay): $NAT_RELAY4
               coturn (pid $NAT_TURN_PID): STUN/TURN on :$NAT_STUN_PORT, user $NAT_TURN_USER
               wice signal (pid $SIGNAL_PID): --ws :$SIG_WS --grpc :$SIG_GRPC
  alice      $(nat_ns alice): $(nat_addr alice)
               behind $(nat_ns nat-a) ($KIND NAT), seen on the internet as $(nat_pub alice)
  bob        $(nat_ns bob): $(nat_addr bob)
               behind $(nat_ns nat-b) ($KIND NAT), seen on the internet as $(nat_pub bob)
EOF

# ---- (2) WireGuard, configured with wg only, without endpoints ---------------------------------
heading "a userspace WireGuard interface on each host"
wg_start wice "$(nat_ns alice)" "$IF_A" || die "wice wg-userspace $IF_A on alice"
wg_start wice "$(nat_ns bob)" "$IF_B" || die "wice wg-userspace $IF_B on bob"
say alice "wice wg-userspace $IF_A    # pid $(wg_pid "$IF_A")"
say bob "wice wg-userspace $IF_B      # pid $(wg_pid "$IF_B")"

heading "configure them with wg: keys, listen port, peer key, allowed IPs - NO endpoint"
key_new alice
key_new bob
PUB_A=$(key_pub alice)
PUB_B=$(key_pub bob)
say alice "wg set $IF_A private-key alice.key listen-port 51820 peer $PUB_B allowed-ips $TUN_B/32"
wg_conf "$(nat_ns alice)" "$IF_A" "$(key_file alice)" 51820 "$PUB_B" "$TUN_B/32" ||
	die "wg set on alice"
say bob "wg set $IF_B private-key bob.key listen-port 51820 peer $PUB_A allowed-ips $TUN_A/32"
wg_conf "$(nat_ns bob)" "$IF_B" "$(key_file bob)" 51820 "$PUB_A" "$TUN_A/32" ||
	die "wg set on bob"
say alice "ip addr add $TUN_A/24 dev $IF_A; ip link set $IF_A up"
link_up "$(nat_ns alice)" "$IF_A" "$TUN_A/24" || die "addressing $IF_A"
say bob "ip addr add $TUN_B/24 dev $IF_B; ip link set $IF_B up"
link_up "$(nat_ns bob)" "$IF_B" "$TUN_B/24" || die "addressing $IF_B"
say alice "wg show $IF_A endpoints"
wg_in "$(nat_ns alice)" show "$IF_A" endpoints | sed 's/^/        /'
echo "Nobody told alice where bob is, or bob where alice is: neither can reach the other yet."

# ---- (3) the daemons -------------------------------------------------------------------------
heading "start wice daemon on both hosts"
start_daemon() {
	local host=$1 iface=$2
	nat_bg "$host" "$WICE" daemon --backend "$BACKEND" --ice-server "$STUN" \
		--ice-server "$TURN" --socket "$E2E_TMP/$host.sock" --log-level debug "$iface" \
		>"$E2E_TMP/daemon-$host.log" 2>&1 </dev/null
	DAEMON_PIDS+=("$NAT_BG_PID")
	say "$host" "wice daemon --backend $BACKEND --ice-server $STUN --ice-server '$TURN'" \
		"--socket $host.sock $iface    # pid $NAT_BG_PID"
}
T0=$(now_ms)
start_daemon alice "$IF_A"
start_daemon bob "$IF_B"

# ---- (4) the tunnel --------------------------------------------------------------------------
heading "wait for the tunnel"
# Both daemons point WireGuard at their local proxy once they know of the peer; a packet sent
# before that would start a handshake that goes nowhere (and WireGuard then waits 5 s).
deadline=$(($(now_ms) + 10000))
while :; do
	alive "${DAEMON_PIDS[0]}" || die "wice daemon on alice exited (pid ${DAEMON_PIDS[0]})"
	alive "${DAEMON_PIDS[1]}" || die "wice daemon on bob exited (pid ${DAEMON_PIDS[1]})"
	EP_A=$(wg_endpoint "$(nat_ns alice)" "$IF_A" "$PUB_B")
	EP_B=$(wg_endpoint "$(nat_ns bob)" "$IF_B" "$PUB_A")
	[[ $EP_A == 127.0.0.1:* && $EP_B == 127.0.0.1:* ]] && break
	[ "$(now_ms)" -lt "$deadline" ] ||
		die "the daemons did not set WireGuard's endpoints within 10 s (alice: $EP_A, bob: $EP_B)"
	sleep 0.02
done
assert_ping "$(nat_ns alice)" "$TUN_B" 20 >/dev/null ||
	die "no ping reply from bob ($TUN_B) through the tunnel within 20 s"
T_PING=$(($(now_ms) - T0))
echo "first ping reply through the tunnel $T_PING ms after the daemons started"

heading "wice status (alice)"
say alice "wice status --socket alice.sock"
on alice "$WICE" status --socket "$E2E_TMP/alice.sock" || die "wice status on alice"

heading "wg show endpoints: the daemon's proxy, set by the daemon, not by anyone"
say alice "wg show $IF_A endpoints"
wg_in "$(nat_ns alice)" show "$IF_A" endpoints | sed 's/^/        /'
say bob "wg show $IF_B endpoints"
wg_in "$(nat_ns bob)" show "$IF_B" endpoints | sed 's/^/        /'

heading "ping bob ($TUN_B) from alice through the tunnel"
say alice "ping -c 3 -i 0.3 $TUN_B"
on alice ping -c 3 -i 0.3 -W 2 "$TUN_B" || die "ping alice -> bob through the tunnel"

heading "iperf3 through the tunnel, alice -> bob, 5 seconds"
nat_bg bob timeout 20 iperf3 -s -1 -B "$TUN_B" -p 5201 >"$E2E_TMP/iperf3-server.log" 2>&1
wait_listen "$(nat_ns bob)" 5201 || die "iperf3 server on bob did not start"
say alice "iperf3 -c $TUN_B -t 5"
# In the background and waited for, so that TERM is acted on at once, not after 5 s.
nat_bg alice timeout 20 iperf3 -c "$TUN_B" -p 5201 -t 5 -f m >"$E2E_TMP/iperf3.log" 2>&1
if ! nat_wait "$NAT_BG_PID"; then
	cat "$E2E_TMP/iperf3.log"
	die "iperf3 alice -> bob"
fi
awk '/sender|receiver/ { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec")
	printf "        %-8s %s Mbit/s\n", $NF, $(i - 1) }' "$E2E_TMP/iperf3.log"

# path_of HOST: "direct (TYPE -> TYPE)" or "relayed (TYPE -> TYPE)", from `wice status --json`.
path_of() {
	on "$1" "$WICE" status --socket "$E2E_TMP/$1.sock" --json | "$PYTHON" -c '
import json, sys
for i in json.load(sys.stdin)["interfaces"]:
    for p in i["peers"]:
        sp = p.get("selected_pair") or {}
        l, r = sp.get("local", {}), sp.get("remote", {})
        print("%s (%s -> %s)" % ("relayed" if p.get("relayed") else "direct",
                                 l.get("type", "?"), r.get("type", "?")))'
}

heading "summary"
PATH_A=$(path_of alice) || PATH_A="unknown (wice status --json failed)"
echo "NATs:            $KIND (each host behind its own)"
echo "path:            $PATH_A"
echo "first ping:      ${T_PING} ms after starting the daemons"
echo "whole demo:      $(( ($(now_ms) - T_START) / 1000 )) s"
[[ $PATH_A == "$WANT "* ]] || echo "NOTE: expected a $WANT path with $KIND NATs"
