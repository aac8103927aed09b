#!/bin/bash
# The NAT topology of tests/e2e/nat.sh behaves as each NAT kind should, shown with real
# traffic (docs/testing.md describes the topology):
#   topology     every host reaches the relay; two hosts on one LAN talk on their own
#                addresses; a `none` host is reachable from the wan unsolicited
#   eim          STUN: mapped address = router's wan address and the host's own port, the same
#                for three destinations (two relay addresses, the alternate port), IPv4 and IPv6
#   symmetric    STUN: a different mapped port for each destination
#   udp-blocked  no STUN answer over UDP, the same request over TCP is answered
#   turn         allocations through coturn, relayed data echoed back by a peer on the wan:
#                behind symmetric over UDP with the fixed user and with TURN REST credentials
#                (a wrong REST password and an expired REST username are refused), behind
#                udp-blocked over TCP and TLS, and not over UDP
#   punch        UDP hole punching by hand between two eim hosts works, between two
#                symmetric hosts it does not
#   flush        nat_flush: symmetric gets a new mapped port (and keeps the old one without
#                a flush); eim keeps its port but the punched hole is closed until the host
#                behind it sends again
#
# Usage: tests/e2e/test_nat.sh        (as root; about 20 s)
# Env:   E2E_KEEP=1 (keep coturn's configs and logs in the temporary directory)
# Output: one "ok - ..." / "not ok - ..." line per check; exit status 1 if any failed.
set -eu

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/nat.sh
. "$(dirname "$0")/nat.sh"

for cmd in turnserver turnutils_uclient turnutils_peer openssl nft "$PYTHON"; do
	if ! command -v "$cmd" >/dev/null 2>&1; then
		echo "not ok - test_nat: $cmd not installed (scripts/deps.sh)"
		exit 1
	fi
done

e2e_init
T0=$(now_ms)

# ---- helpers ---------------------------------------------------------------------------------

# stun_line NAME ARGS...: nat_stun's output on one line (failure is not fatal here).
stun_line() {
	nat_stun "$@" 2>/dev/null | tr '\n' ' ' | sed 's/ $//' || true
}

# all_equal WANT WORD...: every WORD is WANT.
all_equal() {
	local want=$1 w
	shift
	[ $# -gt 0 ] || return 1
	for w in "$@"; do
		[ "$w" = "$want" ] || { note "expected $want, got: $*"; return 1; }
	done
}

# ports_distinct ADDR ENDPOINT...: every ENDPOINT is on ADDR and no two ports are equal.
ports_distinct() {
	local addr=$1 e
	shift
	[ $# -gt 1 ] || return 1
	for e in "$@"; do
		[ "${e%:*}" = "$addr" ] || { note "expected address $addr, got: $*"; return 1; }
	done
	[ "$(printf '%s\n' "$@" | sed 's/.*://' | sort -u | wc -l)" -eq $# ] ||
		{ note "ports repeat: $*"; return 1; }
}

# same_mapping M1 M2, new_mapping M1 M2: two STUN answers are (not) the same mapping.
same_mapping() { [ "$1" != - ] && [ "$1" = "$2" ]; }
new_mapping() { [ "$1" != - ] && [ "$2" != - ] && [ "$1" != "$2" ]; }

# uclient_bg TAG NAME ARGS...: turnutils_uclient in NAME's namespace, in the background (at
# most UC_TIMEOUT s, default 15), 10 messages to the echo server on the wan host "peer" through
# a relayed address; output in $E2E_TMP/uc-TAG.log. UC_PID[TAG] is its PID.
declare -A UC_PID
uclient_bg() {
	local tag=$1 name=$2
	shift 2
	nat_bg "$name" timeout "${UC_TIMEOUT:-15}" turnutils_uclient -n 10 -c -e "$(nat_addr peer)" \
		"$@" "$NAT_RELAY4" >"$E2E_TMP/uc-$tag.log" 2>&1 </dev/null
	UC_PID[$tag]=$NAT_BG_PID
}

# uclient_echoed TAG: how many messages came back, from turnutils_uclient's last tally.
uclient_echoed() {
	sed -n 's/.*start_mclient: tot_send_msgs=[0-9]*, tot_recv_msgs=\([0-9]*\)$/\1/p' \
		"$E2E_TMP/uc-$1.log" | tail -n 1
}

# uclient_ok TAG: the allocation worked and messages came back through the relay (all of them
# over UDP and TCP; turnutils_uclient's TLS mode has been seen to miss one).
uclient_ok() {
	local tag=$1 rc=0 n
	nat_wait "${UC_PID[$tag]}" || rc=$?
	n=$(uclient_echoed "$tag")
	if [ "$rc" -eq 0 ] && [ "${n:-0}" -gt 0 ]; then
		[ "$n" -eq 10 ] || note "turnutils_uclient ($tag): $n of 10 messages echoed"
		return 0
	fi
	note "turnutils_uclient ($tag) exited $rc, ${n:-no} messages echoed; its last lines:"
	tail -n 4 "$E2E_TMP/uc-$tag.log" | sed 's/^/#   | /'
	return 1
}

# uclient_refused TAG: no allocation, nothing relayed.
uclient_refused() {
	local tag=$1 rc=0 n
	nat_wait "${UC_PID[$tag]}" || rc=$?
	n=$(uclient_echoed "$tag")
	if [ "$rc" -ne 0 ] && [ "${n:-0}" -eq 0 ]; then
		return 0
	fi
	note "turnutils_uclient ($tag) exited $rc, ${n:-no} messages echoed; its last lines:"
	tail -n 4 "$E2E_TMP/uc-$tag.log" | sed 's/^/#   | /'
	return 1
}

# punch_pair A B PORT SECONDS: both learn their mapped address from the relay from PORT, then
# punch towards each other's at once. Sets PUNCH_A / PUNCH_B to the results (0: heard the
# other), and MAP_A / MAP_B to the mapped addresses.
punch_pair() {
	local a=$1 b=$2 port=$3 secs=$4 pa pb
	MAP_A=$(stun_line "$a" -b "$port" "$NAT_RELAY4" "$NAT_STUN_PORT")
	MAP_B=$(stun_line "$b" -b "$port" "$NAT_RELAY4" "$NAT_STUN_PORT")
	# shellcheck disable=SC2046 # nat_split prints "ADDR PORT"
	nat_udp_bg "$a" punch "$port" $(nat_split "$MAP_B") "$secs" >"$E2E_TMP/punch-$a.log"
	pa=$NAT_BG_PID
	# shellcheck disable=SC2046
	nat_udp_bg "$b" punch "$port" $(nat_split "$MAP_A") "$secs" >"$E2E_TMP/punch-$b.log"
	pb=$NAT_BG_PID
	PUNCH_A=0
	PUNCH_B=0
	nat_wait "$pa" || PUNCH_A=$?
	nat_wait "$pb" || PUNCH_B=$?
	note "punch $a ($MAP_A): $(cat "$E2E_TMP/punch-$a.log"); $b ($MAP_B): $(cat "$E2E_TMP/punch-$b.log")"
}

# ---- the topology ----------------------------------------------------------------------------

nat_wan
nat_relay
nat_wan_host peer
nat_turn_peer peer
nat_lan home eim a1 a2 # two hosts on one eim LAN
nat_router eim r2
nat_host b r2
nat_router symmetric s1
nat_host c s1
nat_router symmetric s2
nat_host d s2
nat_router udp-blocked u1
nat_host u u1
nat_router none p1
nat_host p p1
note "topology up in $(($(now_ms) - T0)) ms (E2E_ID $E2E_ID)"

# TURN allocations take about 5 s each (turnutils_uclient waits before sending): all of them
# run in the background while the rest goes on.
read -r REST_USER REST_PASS < <(nat_turn_rest_cred c)
uclient_bg sym-udp c -u "$NAT_TURN_USER" -w "$NAT_TURN_PASS"
uclient_bg sym-rest c -p "$NAT_REST_PORT" -u "$REST_USER" -w "$REST_PASS"
UC_TIMEOUT=6 uclient_bg sym-rest-bad c -p "$NAT_REST_PORT" -u "$REST_USER" -w "x$REST_PASS"
read -r OLD_USER OLD_PASS < <(nat_turn_rest_cred c -10)
UC_TIMEOUT=6 uclient_bg sym-rest-old c -p "$NAT_REST_PORT" -u "$OLD_USER" -w "$OLD_PASS"
uclient_bg blk-tcp u -t -u "$NAT_TURN_USER" -w "$NAT_TURN_PASS"
uclient_bg blk-rest-tcp u -t -p "$NAT_REST_PORT" -u "$REST_USER" -w "$REST_PASS"
uclient_bg blk-tls u -t -S -p "$NAT_TLS_PORT" -u "$NAT_TURN_USER" -w "$NAT_TURN_PASS"
UC_TIMEOUT=6 uclient_bg blk-udp u -u "$NAT_TURN_USER" -w "$NAT_TURN_PASS"

for h in a1 b c u p; do
	check "topology: $h ($(nat_addr "$h")) pings the relay" \
		assert_ping "$(nat_ns "$h")" "$NAT_RELAY4" 3
done
nat_udp_bg a1 punch 30000 "$(nat_addr a2)" 30000 2 >/dev/null
LAN_PID=$NAT_BG_PID
nat_udp a2 punch 30000 "$(nat_addr a1)" 30000 2 >/dev/null || true
check "topology: a1 and a2 on one LAN, UDP on their own addresses" nat_wait "$LAN_PID"
nat_udp_bg p recv 30001 "$(nat_addr peer)" 30001 2 >/dev/null
P_PID=$NAT_BG_PID
nat_udp peer send 30001 "$(nat_addr p)" 30001 1 >/dev/null
check "topology: the wan reaches a none host unsolicited" nat_wait "$P_PID"

# ---- STUN behind each kind -------------------------------------------------------------------

DESTS4=("$NAT_RELAY4" "$NAT_STUN_PORT" "$NAT_RELAY4B" "$NAT_STUN_PORT" "$NAT_RELAY4" "$NAT_STUN_ALT_PORT")
DESTS6=("$NAT_RELAY6" "$NAT_STUN_PORT" "$NAT_RELAY6B" "$NAT_STUN_PORT" "$NAT_RELAY6" "$NAT_STUN_ALT_PORT")

read -ra M <<<"$(stun_line a1 -b 40000 "${DESTS4[@]}")"
note "eim, from port 40000 to 3 destinations: ${M[*]}"
check "eim: mapped $(nat_pub a1):40000 (port kept) for all 3 destinations" \
	all_equal "$(nat_pub a1):40000" "${M[@]}"
read -ra M <<<"$(stun_line a1 -b 40000 "${DESTS6[@]}")"
note "eim over IPv6: ${M[*]}"
check "eim: IPv6 mapped [$(nat_pub a1 6)]:40000 for all 3 destinations" \
	all_equal "[$(nat_pub a1 6)]:40000" "${M[@]}"

read -ra M <<<"$(stun_line c -b 40000 "${DESTS4[@]}")"
note "symmetric, from port 40000 to 3 destinations: ${M[*]}"
check "symmetric: a different mapped port on $(nat_pub c) for each destination" \
	ports_distinct "$(nat_pub c)" "${M[@]}"
read -ra M <<<"$(stun_line c -b 40000 "${DESTS6[@]}")"
note "symmetric over IPv6: ${M[*]}"
check "symmetric: IPv6, a different mapped port for each destination" \
	ports_distinct "[$(nat_pub c 6)]" "${M[@]}"

read -ra M <<<"$(stun_line p -b 40000 "${DESTS4[@]}")"
check "none: mapped is the host's own $(nat_addr p):40000" all_equal "$(nat_addr p):40000" "${M[@]}"

MS=$(stun_line u -w 1 "$NAT_RELAY4" "$NAT_STUN_PORT")
check "udp-blocked: no STUN answer over UDP" [ "$MS" = - ]
MS=$(stun_line u -t "$NAT_RELAY4" "$NAT_STUN_PORT")
note "udp-blocked over TCP: $MS"
check "udp-blocked: STUN over TCP answered, mapped on $(nat_pub u)" [ "${MS%:*}" = "$(nat_pub u)" ]
DROPS=$(ip netns exec "$(nat_ns u1)" nft list chain inet wice_nat forward |
	sed -n 's/.*udp dport != 53 counter packets \([0-9]*\).*/\1/p')
check "udp-blocked: the router counted the dropped UDP packets (${DROPS:-none})" \
	[ "${DROPS:-0}" -gt 0 ]

# ---- hole punching ---------------------------------------------------------------------------

punch_pair a1 b 41000 3
check "punch: eim a1 hears eim b" [ "$PUNCH_A" -eq 0 ]
check "punch: eim b hears eim a1" [ "$PUNCH_B" -eq 0 ]
EIM_MAP_A=$MAP_A
EIM_MAP_B=$MAP_B
punch_pair c d 41000 3
check "punch: symmetric c does not hear symmetric d" [ "$PUNCH_A" -ne 0 ]
check "punch: symmetric d does not hear symmetric c" [ "$PUNCH_B" -ne 0 ]

# ---- flushing the mappings -------------------------------------------------------------------

M1=$(stun_line c -b 42000 "$NAT_RELAY4" "$NAT_STUN_PORT")
M2=$(stun_line c -b 42000 "$NAT_RELAY4" "$NAT_STUN_PORT")
nat_flush s1
N=$(nat_conntrack_count s1)
M3=$(stun_line c -b 42000 "$NAT_RELAY4" "$NAT_STUN_PORT")
note "symmetric, port 42000 to the relay: $M1, again $M2, after the flush ($N entries left) $M3"
check "flush: symmetric keeps its mapping without a flush" same_mapping "$M1" "$M2"
check "flush: conntrack of the symmetric router empty after nat_flush" [ "$N" -eq 0 ]
check "flush: symmetric gets a new mapped port after nat_flush" new_mapping "$M1" "$M3"

# The eim hole punched above: b's mapping lets a1 in while it lives, not after a flush of
# b's router, until b sends again (to the same port: eim maps it to the same one).
read -r B_ADDR B_PORT <<<"$(nat_split "$EIM_MAP_B")"
read -r A_ADDR A_PORT <<<"$(nat_split "$EIM_MAP_A")"
eim_inbound() {
	local pid rc=0
	nat_udp_bg b recv 41000 "$A_ADDR" "$A_PORT" 1.5 >/dev/null
	pid=$NAT_BG_PID
	nat_udp a1 send 41000 "$B_ADDR" "$B_PORT" 1 >/dev/null
	nat_wait "$pid" || rc=$?
	return "$rc"
}
check "flush: before, a1 reaches b through the punched hole" eim_inbound
nat_flush r2
eim_closed() { ! eim_inbound; }
check "flush: after flushing b's eim router, a1's packets no longer reach b" eim_closed
MS=$(stun_line b -b 41000 "$NAT_RELAY4" "$NAT_STUN_PORT")
check "flush: eim gives b the same mapping again ($MS)" [ "$MS" = "$EIM_MAP_B" ]
nat_udp b send 41000 "$A_ADDR" "$A_PORT" 0.3 >/dev/null
check "flush: once b has sent again, a1 reaches b" eim_inbound

# ---- TURN ------------------------------------------------------------------------------------

check "turn: behind symmetric, UDP allocation and relayed echo (user:pass)" uclient_ok sym-udp
check "turn: behind symmetric, UDP with TURN REST credentials from the secret" uclient_ok sym-rest
check "turn: a wrong TURN REST password is refused" uclient_refused sym-rest-bad
check "turn: an expired TURN REST username is refused" uclient_refused sym-rest-old
check "turn: behind udp-blocked, TCP allocation and relayed echo (user:pass)" uclient_ok blk-tcp
check "turn: behind udp-blocked, TCP with TURN REST credentials" uclient_ok blk-rest-tcp
check "turn: behind udp-blocked, TLS on $NAT_TLS_PORT" uclient_ok blk-tls
check "turn: behind udp-blocked, no allocation over UDP (nothing in 6 s)" uclient_refused blk-udp

note "test_nat took $(($(now_ms) - T0)) ms"
e2e_summary
