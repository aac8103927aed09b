#!/bin/bash
# `wice daemon` end to end: what a daemon leaves when killed, and what it keeps of root's
# privileges. Two hosts on one LAN (test_daemon.sh's case lan: host candidates, the direct
# path), userspace WireGuard with keys and allowed IPs but no endpoint, a daemon beside each,
# the real `wice signal` and coturn on the wan. In order:
#   privileges  each daemon (every thread) keeps CAP_NET_ADMIN alone in its effective,
#               permitted and bounding sets, nothing inheritable or ambient, no_new_privs;
#               the tunnel works (ping, TCP, the direct path's rules and endpoints)
#   kill -9     one daemon is killed: its chains in `inet wice` and its direct endpoint stay
#   restart     a new daemon deletes those chains, takes the peer over (the endpoint is its
#               predecessor's, not a hand-set one), sets up its own path: ping, TCP; the
#               other daemon's pair change (a new session from the peer) updates its rules
#               and endpoint, with its capabilities dropped
#   SIGTERM     both stop: no chain left, endpoints back at the (now dead) proxies
#   stale proxy a daemon started again takes over a peer whose endpoint is a dead proxy port
#   hand-set    ... but not one pointed at a 127.0.0.1 port something listens on
#
# Usage: tests/e2e/test_daemon_restart.sh   (as root, about 8 s)
# Env:   WICE (binary), E2E_KEEP=1, E2E_BYTES (TCP transfer size, default 4 MB here)
set -eu

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/nat.sh
. "$(dirname "$0")/nat.sh"
# shellcheck source=SCRIPTDIR/daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"

daemon_require test_daemon_restart
: "${E2E_BYTES:=4000000}"

e2e_init
wice_snapshot
daemon_world

declare -A DAEMON_PID IFACE PEER # host -> daemon PID, interface, the other host
A=rsta
B=rstb
IFACE[$A]="r1a$E2E_ID"
IFACE[$B]="r1b$E2E_ID"
PEER[$A]=$B
PEER[$B]=$A

# daemon_start HOST: `wice daemon` in HOST's namespace for its interface (log appended).
daemon_start() {
	nat_bg "$1" "$WICE" daemon --backend "$BACKEND" --ice-server "$STUN" \
		--socket "$E2E_TMP/$1.sock" --log-level debug "${IFACE[$1]}" \
		>>"$E2E_TMP/daemon-$1.log" 2>&1
	DAEMON_PID[$1]=$NAT_BG_PID
}

# in_ns HOST CMD...: CMD in HOST's namespace.
in_ns() {
	local ns
	ns=$(nat_ns "$1")
	shift
	ip netns exec "$ns" "$@"
}

# endpoint HOST: HOST's WireGuard endpoint for its peer.
endpoint() { wg_endpoint "$(nat_ns "$1")" "${IFACE[$1]}" "$(key_pub "${PEER[$1]}")"; }

# pair HOST: "LOCAL_PORT REMOTE_ADDRESS:REMOTE_PORT STATE" of HOST's one peer (from status).
pair() {
	local json
	json=$(in_ns "$1" "$WICE" status --socket "$E2E_TMP/$1.sock" --json 2>/dev/null) ||
		return 1
	STATUS_JSON=$json "$PYTHON" -c '
import json, os
p = [p for i in json.loads(os.environ["STATUS_JSON"])["interfaces"] for p in i["peers"]][0]
sp = p.get("selected_pair") or {}
l, r = sp.get("local") or {}, sp.get("remote") or {}
print("%s %s:%s %s" % (l.get("port"), r.get("address"), r.get("port"), p["state"]))'
}

# direct HOST: within 10 s HOST's endpoint is its selected pair's remote R:rp (not the proxy)
# and its table inet wice holds one peer's two chains, for that pair's ports: the ICE port L
# takes R:rp's packets for WireGuard (51820), whose replies leave from L.
direct() {
	local deadline ep rules lport remote
	deadline=$(($(now_ms) + 10000))
	while :; do
		ep=$(endpoint "$1")
		read -r lport remote _ <<<"$(pair "$1" || echo "- - -")"
		rules=$(in_ns "$1" nft list table inet wice 2>/dev/null || true)
		if [[ $ep != 127.0.0.1:* && $ep == "$remote" ]] &&
			[ "$(grep -c '^\s*chain ' <<<"$rules")" -eq 2 ] &&
			grep -q "udp sport ${remote##*:} udp dport $lport @th,96,32 != 0x2112a442 udp dport set 51820" \
				<<<"$rules" &&
			grep -q "udp sport 51820 udp dport ${remote##*:} notrack udp sport set $lport" \
				<<<"$rules"; then
			note "$1: endpoint $ep, rules for ICE port $lport"
			return 0
		fi
		[ "$(now_ms)" -lt "$deadline" ] || break
		sleep 0.1
	done
	note "$1: endpoint $ep, selected pair: local port $lport, remote $remote; rules:"
	sed 's/^/#   /' <<<"$rules"
	return 1
}

# chains HOST: how many chains HOST's table inet wice holds (0 without the table).
chains() {
	{ in_ns "$1" nft list table inet wice 2>/dev/null || true; } | grep -c '^\s*chain ' || true
}

# proxies: both endpoints are on 127.0.0.1 within 5 s.
proxies() {
	local deadline
	deadline=$(($(now_ms) + 5000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		[[ $(endpoint $A) == 127.0.0.1:* && $(endpoint $B) == 127.0.0.1:* ]] && return 0
		sleep 0.02
	done
	note "endpoints: $(endpoint $A), $(endpoint $B)"
	return 1
}

# wait_log HOST TEXT [SECONDS]: until HOST's daemon log holds TEXT (default 10 s).
wait_log() {
	local deadline=$(($(now_ms) + ${3:-10} * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		grep -qF "$2" "$E2E_TMP/daemon-$1.log" && return 0
		sleep 0.1
	done
	note "$1: no \"$2\" in the log"
	return 1
}

# traffic WHAT: a ping (20 s to the first reply) and a TCP transfer through the tunnel.
traffic() {
	check "$1: ping through the tunnel" assert_ping "$(nat_ns $A)" 10.99.1.2 20
	check "$1: TCP transfer through the tunnel" \
		assert_tcp "$(nat_ns $B)" 10.99.1.2 "$(nat_ns $A)"
}

nat_lan "r$A" none "$A" "$B"
key_new "$A"
key_new "$B"
if ! wg_start wice "$(nat_ns $A)" "${IFACE[$A]}" || ! wg_start wice "$(nat_ns $B)" "${IFACE[$B]}"; then
	fail "userspace WireGuard interfaces start"
	exit 1
fi
wg_conf "$(nat_ns $A)" "${IFACE[$A]}" "$(key_file $A)" 51820 "$(key_pub $B)" 10.99.1.2/32
wg_conf "$(nat_ns $B)" "${IFACE[$B]}" "$(key_file $B)" 51820 "$(key_pub $A)" 10.99.1.1/32
link_up "$(nat_ns $A)" "${IFACE[$A]}" 10.99.1.1/24
link_up "$(nat_ns $B)" "${IFACE[$B]}" 10.99.1.2/24

# ---- privileges ----
daemon_start $A
daemon_start $B
check "both daemons point WireGuard at their proxies" proxies
traffic "first daemons"
check "$A is on the direct path (endpoint, rules)" direct $A
check "$B is on the direct path (endpoint, rules)" direct $B
check "$A's daemon keeps CAP_NET_ADMIN alone, no_new_privs, seccomp" caps $A
check "$B's daemon keeps CAP_NET_ADMIN alone, no_new_privs, seccomp" caps $B

# ---- kill -9 and restart ----
read -r old_port _ <<<"$(pair $B)"
kill -KILL "${DAEMON_PID[$A]}"
nat_wait "${DAEMON_PID[$A]}" || true
check "a killed daemon leaves its 2 chains in inet wice" test "$(chains $A)" -eq 2
ep=$(endpoint $A)
note "$A: endpoint $ep after kill -9"
check "a killed daemon leaves its direct endpoint" test "${ep%%:*}" != 127.0.0.1
daemon_start $A
check "the new daemon deletes the chains its predecessor left" \
	wait_log $A "deleted the direct path's chains of 1 peer(s) an earlier daemon left"
check "the new daemon takes the peer over (its endpoint is its predecessor's, not hand-set)" \
	wait_log $A "its endpoint is an earlier daemon's direct path"
traffic "after the restart"
check "$A is on the direct path again, only its new chains in inet wice" direct $A
check "$B's rules and endpoint follow the pair change (capabilities dropped)" direct $B
read -r new_port _ <<<"$(pair $B)"
note "$B: ICE port $old_port before, $new_port after"
check "$B's daemon still keeps CAP_NET_ADMIN alone after the pair change" caps $B
check "the new daemon keeps CAP_NET_ADMIN alone, no_new_privs, seccomp" caps $A

# ---- SIGTERM ----
check "daemon on $A stops on SIGTERM" daemon_stop $A
check "daemon on $B stops on SIGTERM" daemon_stop $B
check "no chain left on $A" test "$(chains $A)" -eq 0
check "no chain left on $B" test "$(chains $B)" -eq 0
check "endpoints back at the proxies" proxies

# ---- a dead proxy's endpoint is the daemon's; a live one on 127.0.0.1 is someone's ----
ep=$(endpoint $A)
daemon_start $A
check "a daemon takes over a peer whose endpoint is a dead proxy ($ep)" \
	wait_log $A "nothing listens on its endpoint $ep"
check "daemon on $A stops on SIGTERM" daemon_stop $A

port_file="$E2E_TMP/listener.port"
nat_bg $A "$PYTHON" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(sys.argv[1], "w").write("%d\n" % s.getsockname()[1])
time.sleep(60)' "$port_file"
listener=$NAT_BG_PID
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.05; done
hand="127.0.0.1:$(cat "$port_file")"
wg_in "$(nat_ns $A)" set "${IFACE[$A]}" peer "$(key_pub $B)" endpoint "$hand"
mv "$E2E_TMP/daemon-$A.log" "$E2E_TMP/daemon-$A.1.log"
daemon_start $A
check "a daemon started again reaches the signal server" wait_log $A "signaling $BACKEND connected"
read -r _ _ state <<<"$(pair $A)"
note "$A: endpoint $(endpoint $A), peer $state"
check "a 127.0.0.1 endpoint something listens on is hand-set: left alone" \
	test "$(endpoint $A)" = "$hand" -a "$state" = unmanaged
check "daemon on $A stops on SIGTERM" daemon_stop $A
stop_pid "$listener"
unset "E2E_BG[$listener]"
wg_stop "${IFACE[$A]}"
wg_stop "${IFACE[$B]}"

e2e_summary
