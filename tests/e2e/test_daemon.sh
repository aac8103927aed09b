#!/bin/bash
# `wice daemon` end to end (issue 4): two userspace WireGuard interfaces configured with keys,
# listen ports, peers and allowed IPs but no endpoint; a daemon beside each, the real
# `wice signal` and coturn on the wan. Nobody configures an endpoint: the daemons trade ICE
# candidates through the signal server and point WireGuard at their proxies. Cases:
#   lan        both hosts on one LAN (router kind none): host candidates
#   eim        each host behind its own endpoint-independent NAT: srflx / prflx, direct
#   symmetric  both behind symmetric NATs, TURN over UDP: relayed
#   udpblocked one host behind a router that drops outgoing UDP, the other behind eim: the
#              blocked one reaches coturn over TCP (TURN-TCP), so the pair is relayed
#   turns      like udpblocked, with only a turns: server: both daemons reach coturn over TLS
#              (port 5349) through their local TLS relay, trusting the test's self-signed
#              certificate through WICE_TURNS_CA_FILE
#   renew      (not in the default list: ~60 s) symmetric NATs, a TURN REST server with
#              lifetime=60: at 45 s each daemon replaces its ICE session; the tunnel works after
# Each case asserts a ping and a TCP transfer through the tunnel (relayed ones also 16 MB each
# way through the daemon's proxy), the selected pair that `wice status --json` reports, and
# that both daemons stop cleanly on SIGTERM.
#
# Usage: tests/e2e/test_daemon.sh [CASE...]   (as root; default all cases)
# Env:   WICE (binary), E2E_KEEP=1, E2E_BYTES (TCP transfer size, default 4 MB here),
#        E2E_RELAY_BYTES (the relayed cases' further transfer each way, default 16 MB)
set -eu

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/nat.sh
. "$(dirname "$0")/nat.sh"
# shellcheck source=SCRIPTDIR/daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"

for cmd in turnserver openssl nft wg nc "$PYTHON"; do
	if ! command -v "$cmd" >/dev/null 2>&1; then
		echo "not ok - test_daemon: $cmd not installed (scripts/deps.sh)"
		exit 1
	fi
done
: "${E2E_BYTES:=4000000}"
: "${E2E_RELAY_BYTES:=16000000}"
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(lan eim symmetric udpblocked turns)

e2e_init
wice_snapshot
SIG_PORT=8088
BACKEND="ws://$NAT_RELAY4:$SIG_PORT/"
STUN="stun:$NAT_RELAY4:$NAT_STUN_PORT"
TURN_UDP="turn:$NAT_TURN_USER:$NAT_TURN_PASS@$NAT_RELAY4:$NAT_STUN_PORT?transport=udp"
TURN_TCP="turn:$NAT_TURN_USER:$NAT_TURN_PASS@$NAT_RELAY4:$NAT_STUN_PORT?transport=tcp"
TURNS="turns:$NAT_TURN_USER:$NAT_TURN_PASS@$NAT_RELAY4:$NAT_TLS_PORT"

nat_wan
if ! nat_relay; then
	fail "coturn on the relay"
	exit 1
fi
# coturn's self-signed certificate (subjectAltName IP:$NAT_RELAY4) for the turns: case.
export WICE_TURNS_CA_FILE="$NAT_TURN_DIR/cert.pem"
nat_bg relay "$WICE" signal --ws "0.0.0.0:$SIG_PORT" >"$E2E_TMP/signal.log" 2>&1
wait_listen "$(nat_ns relay)" "$SIG_PORT" || { fail "wice signal listens"; exit 1; }

declare -A DAEMON_PID # host -> daemon PID

# daemon_start HOST IFACE ICE_SERVER...: `wice daemon` in HOST's namespace for IFACE.
daemon_start() {
	local host=$1 iface=$2 args=()
	shift 2
	for s in "$@"; do args+=(--ice-server "$s"); done
	nat_bg "$host" "$WICE" daemon --backend "$BACKEND" "${args[@]}" \
		--socket "$E2E_TMP/$host.sock" --log-level debug "$iface" \
		>"$E2E_TMP/daemon-$host.log" 2>&1
	DAEMON_PID[$host]=$NAT_BG_PID
}


# status_json HOST: the daemon's status document.
status_json() {
	ip netns exec "$(nat_ns "$1")" "$WICE" status --socket "$E2E_TMP/$1.sock" --json
}

# status_check HOST TYPES RELAYED: the one peer's selected pair has a remote candidate type in
# TYPES (comma-separated) and relayed is RELAYED (true/false). Prints the pair.
status_check() {
	local json
	json=$(status_json "$1") || { note "wice status on $1 failed"; return 1; }
	echo "$json" >"$E2E_TMP/status-$1.json"
	STATUS_JSON=$json "$PYTHON" -c "$STATUS_PY" "$2" "$3"
}
STATUS_PY=$(
	cat <<'PY'
import json, os, sys
types, relayed = sys.argv[1].split(","), sys.argv[2] == "true"
doc = json.loads(os.environ["STATUS_JSON"])
peers = [p for i in doc["interfaces"] for p in i["peers"]]
if len(peers) != 1:
    sys.exit("# expected one peer, got %d" % len(peers))
p = peers[0]
sp = p.get("selected_pair")
if not sp:
    sys.exit("# no selected pair, state %s" % p.get("state"))
l, r = sp["local"], sp["remote"]
print("# %s: %s %s:%s/%s -> %s %s:%s/%s, relayed %s, handshake %s, rx %s tx %s" % (
    p["state"], l["type"], l["address"], l["port"], l["transport"], r["type"], r["address"],
    r["port"], r["transport"], p["relayed"], p["last_handshake"], p["rx_bytes"], p["tx_bytes"]))
ok = (l["type"] in types or r["type"] in types) and p["relayed"] == relayed
if relayed:
    ok = ok and "relay" in (l["type"], r["type"])
else:
    ok = ok and "relay" not in (l["type"], r["type"])
sys.exit(0 if ok else 1)
PY
)

# endpoint_is_proxy HOST IFACE PEER_PUB: WireGuard's endpoint for the peer is the
# daemon's proxy on 127.0.0.1 (set by the daemon, nobody else).
endpoint_is_proxy() {
	local ep
	ep=$(wg_endpoint "$(nat_ns "$1")" "$2" "$3")
	note "$1 $2: endpoint $ep"
	[[ $ep == 127.0.0.1:* ]]
}

# endpoint_is_direct HOST IFACE PEER_PUB: within 5 s WireGuard's endpoint for the peer is the
# remote address and port of HOST's selected pair (the zero-copy direct path: nftables rules
# carry WireGuard's packets on the ICE socket's port), not the proxy.
endpoint_is_direct() {
	local deadline ep want
	deadline=$(($(now_ms) + 5000))
	while :; do
		ep=$(wg_endpoint "$(nat_ns "$1")" "$2" "$3")
		want=$(STATUS_JSON=$(status_json "$1") "$PYTHON" -c '
import json, os
p = [p for i in json.loads(os.environ["STATUS_JSON"])["interfaces"] for p in i["peers"]][0]
r = (p.get("selected_pair") or {}).get("remote") or {}
print("%s:%s" % (r.get("address"), r.get("port")))' 2>/dev/null)
		if [[ $ep != 127.0.0.1:* && $ep == "$want" ]]; then
			note "$1 $2: endpoint $ep (direct)"
			return 0
		fi
		[ "$(now_ms)" -lt "$deadline" ] || break
		sleep 0.05
	done
	note "$1 $2: endpoint $ep, selected pair's remote $want"
	return 1
}

# direct_rules HOST: HOST's table inet wice has the direct path's chains (one per peer).
direct_rules() {
	local n
	n=$(ip netns exec "$(nat_ns "$1")" nft list table inet wice 2>/dev/null |
		grep -c 'udp dport set\|udp sport set')
	note "$1: $n port rewrite rule(s) in inet wice"
	[ "$n" -ge 2 ]
}

# no_direct_rules HOST: no chain left in HOST's table inet wice (or no table).
no_direct_rules() {
	! ip netns exec "$(nat_ns "$1")" nft list table inet wice 2>/dev/null | grep -q chain
}

# turn_over_tcp HOST: HOST has an established TCP connection to coturn's port 3478, and its
# status's selected pair has a local relayed candidate (allocated through that connection:
# the relayed address itself is UDP, on the relay, whatever carries client to server).
# turn_over_tcp HOST [PORT]: the same with coturn's PORT (3478; 5349 for TURN over TLS).
turn_over_tcp() {
	local conns port=${2:-$NAT_STUN_PORT}
	conns=$(ip netns exec "$(nat_ns "$1")" ss -Htn state established \
		dst "$NAT_RELAY4:$port" | wc -l)
	note "$1: $conns TCP connection(s) to $NAT_RELAY4:$port"
	[ "$conns" -ge 1 ] || return 1
	STATUS_JSON=$(status_json "$1") "$PYTHON" -c '
import json, os, sys
p = [p for i in json.loads(os.environ["STATUS_JSON"])["interfaces"] for p in i["peers"]][0]
sys.exit(0 if p["selected_pair"]["local"]["type"] == "relay" else 1)'
}

# wait_log FILE TEXT SECONDS: until FILE holds TEXT.
wait_log() {
	local deadline=$(($(now_ms) + $3 * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		grep -qF "$2" "$1" && return 0
		sleep 0.2
	done
	return 1
}

# wait_proxy HOST1 IFACE1 PUB1 HOST2 IFACE2 PUB2: until both endpoints are proxies (5 s).
wait_proxy() {
	local deadline e1 e2
	deadline=$(($(now_ms) + 5000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		e1=$(wg_endpoint "$(nat_ns "$1")" "$2" "$3")
		e2=$(wg_endpoint "$(nat_ns "$4")" "$5" "$6")
		[[ $e1 == 127.0.0.1:* && $e2 == 127.0.0.1:* ]] && return 0
		sleep 0.02
	done
	note "endpoints: $e1, $e2"
	return 1
}

# run_case NAME ROUTER_KIND TYPES RELAYED ICE_SERVER...: two hosts (each behind its own router
# of ROUTER_KIND, or both on one LAN for `none`; KIND1/KIND2: the first host behind KIND1, the
# second behind KIND2), tunnel, daemons, checks.
CASE_N=0
run_case() {
	local name=$1 kind=$2 types=$3 relayed=$4 h1 h2 i1 i2 t0 ms k1 k2
	shift 4
	CASE_N=$((CASE_N + 1))
	h1="${name:0:3}a"
	h2="${name:0:3}b"
	if [ "$kind" = none ]; then
		nat_lan "r$h1" none "$h1" "$h2"
	else
		k1=${kind%%/*}
		k2=${kind##*/}
		nat_router "$k1" "r$h1" && nat_host "$h1" "r$h1"
		nat_router "$k2" "r$h2" && nat_host "$h2" "r$h2"
	fi
	i1="d${CASE_N}a$E2E_ID"
	i2="d${CASE_N}b$E2E_ID"
	key_new "$h1"
	key_new "$h2"
	if ! wg_start wice "$(nat_ns "$h1")" "$i1" || ! wg_start wice "$(nat_ns "$h2")" "$i2"; then
		fail "$name: userspace WireGuard interfaces start"
		return
	fi
	wg_conf "$(nat_ns "$h1")" "$i1" "$(key_file "$h1")" 51820 "$(key_pub "$h2")" \
		"10.99.$CASE_N.2/32"
	wg_conf "$(nat_ns "$h2")" "$i2" "$(key_file "$h2")" 51820 "$(key_pub "$h1")" \
		"10.99.$CASE_N.1/32"
	link_up "$(nat_ns "$h1")" "$i1" "10.99.$CASE_N.1/24"
	link_up "$(nat_ns "$h2")" "$i2" "10.99.$CASE_N.2/24"

	t0=$(now_ms)
	daemon_start "$h1" "$i1" "$@"
	daemon_start "$h2" "$i2" "$@"
	# A packet sent before the daemon points WireGuard at its proxy starts a handshake that
	# goes nowhere, and WireGuard waits REKEY_TIMEOUT (5 s) before the next: wait for both
	# endpoints first so the figure below measures ICE, not that timer.
	check "$name: both daemons point WireGuard at their proxies" \
		wait_proxy "$h1" "$i1" "$(key_pub "$h2")" "$h2" "$i2" "$(key_pub "$h1")"
	if assert_ping "$(nat_ns "$h1")" "10.99.$CASE_N.2" 20; then
		ms=$(($(now_ms) - t0))
		pass "$name: ping through the tunnel (first reply ${ms} ms after the daemons started)"
	else
		fail "$name: ping through the tunnel"
	fi
	check "$name: TCP transfer through the tunnel" \
		assert_tcp "$(nat_ns "$h2")" "10.99.$CASE_N.2" "$(nat_ns "$h1")"
	if [ "$relayed" = true ]; then
		check "$name: $h1's WireGuard endpoint is the daemon's proxy" \
			endpoint_is_proxy "$h1" "$i1" "$(key_pub "$h2")"
		# Bursts of a TCP window each way through the batched proxy (recvmmsg and one
		# libnice call per burst one way, a sendmmsg per main-loop pass the other).
		check "$name: $E2E_RELAY_BYTES bytes $h1 -> $h2 through the relayed path intact" \
			assert_tcp "$(nat_ns "$h2")" "10.99.$CASE_N.2" "$(nat_ns "$h1")" \
			"$E2E_RELAY_BYTES"
		check "$name: $E2E_RELAY_BYTES bytes $h2 -> $h1 through the relayed path intact" \
			assert_tcp "$(nat_ns "$h1")" "10.99.$CASE_N.1" "$(nat_ns "$h2")" \
			"$E2E_RELAY_BYTES"
	else
		check "$name: $h1's WireGuard endpoint is the peer itself (direct path)" \
			endpoint_is_direct "$h1" "$i1" "$(key_pub "$h2")"
		check "$name: $h2's WireGuard endpoint is the peer itself (direct path)" \
			endpoint_is_direct "$h2" "$i2" "$(key_pub "$h1")"
		check "$name: $h1 has the direct path's nftables rules" direct_rules "$h1"
		check "$name: ping through the direct path" \
			assert_ping "$(nat_ns "$h1")" "10.99.$CASE_N.2" 5
		check "$name: TCP transfer through the direct path" \
			assert_tcp "$(nat_ns "$h2")" "10.99.$CASE_N.2" "$(nat_ns "$h1")"
		check "$name: $h1's WireGuard endpoint is still the peer itself" \
			endpoint_is_direct "$h1" "$i1" "$(key_pub "$h2")"
	fi
	check "$name: status on $h1: selected pair $types, relayed $relayed" \
		status_check "$h1" "$types" "$relayed"
	check "$name: status on $h2: selected pair $types, relayed $relayed" \
		status_check "$h2" "$types" "$relayed"
	if [ "$name" = udpblocked ]; then
		check "$name: $h1 holds TURN over TCP to the relay (no UDP leaves its LAN)" \
			turn_over_tcp "$h1"
	fi
	if [ "$name" = turns ]; then
		check "$name: $h1 holds TURN over TLS to the relay's port $NAT_TLS_PORT" \
			turn_over_tcp "$h1" "$NAT_TLS_PORT"
	fi
	if [ "$name" = renew ]; then
		check "$name: $h1 replaced its ICE session for fresh TURN credentials" \
			wait_log "$E2E_TMP/daemon-$h1.log" "new ICE session (renewal 1)" 60
		check "$name: $h2 replaced its ICE session for fresh TURN credentials" \
			wait_log "$E2E_TMP/daemon-$h2.log" "new ICE session (renewal 1)" 10
		check "$name: ping through the tunnel after the renewal" \
			assert_ping "$(nat_ns "$h1")" "10.99.$CASE_N.2" 20
		check "$name: TCP transfer through the tunnel after the renewal" \
			assert_tcp "$(nat_ns "$h2")" "10.99.$CASE_N.2" "$(nat_ns "$h1")"
	fi
	check "$name: daemon on $h1 stops on SIGTERM" daemon_stop "$h1"
	check "$name: daemon on $h2 stops on SIGTERM" daemon_stop "$h2"
	check "$name: no nftables rules left on $h1" no_direct_rules "$h1"
	check "$name: $h1's WireGuard endpoint is the proxy again after the daemon stopped" \
		endpoint_is_proxy "$h1" "$i1" "$(key_pub "$h2")"
	wg_stop "$i1"
	wg_stop "$i2"
}

for c in "${CASES[@]}"; do
	case $c in
	lan) run_case lan none host false "$STUN" ;;
	eim) run_case eim eim srflx,prflx false "$STUN" ;;
	symmetric) run_case symmetric symmetric relay true "$TURN_UDP" ;;
	udpblocked)
		run_case udpblocked udp-blocked/eim relay true "$STUN" "$TURN_UDP" "$TURN_TCP"
		;;
	turns) run_case turns udp-blocked/eim relay true "$TURNS" ;;
	renew)
		run_case renew symmetric relay true \
			"turn:$NAT_RELAY4:$NAT_REST_PORT?secret=$NAT_TURN_SECRET&lifetime=60&transport=udp"
		;;
	*) fail "unknown case $c" ;;
	esac
done

e2e_summary
