#!/bin/bash
# `wice daemon` end to end (issue 4): two userspace WireGuard interfaces configured with keys,
# listen ports, peers and allowed IPs but no endpoint; a daemon beside each, the real
# `wice signal` and coturn on the wan. Nobody configures an endpoint: the daemons trade ICE
# candidates through the signal server and point WireGuard at their proxies. Cases:
#   lan        both hosts on one LAN (router kind none): host candidates
#   lan6       both hosts on one LAN (behind eim) with IPv6 only (their IPv4 addresses removed):
#              signal server and STUN over IPv6, the pair host/host between the fd00:: addresses,
#              the direct path's nftables rules on ip6
#   symmetric6 both behind symmetric NATs with IPv6 only, TURN over UDP to coturn's IPv6
#              address: relayed through the proxy (coturn hands out IPv4 relayed addresses, the
#              RFC 6156 default: libnice does not ask for an IPv6 one)
#   multi      one LAN; the first host has a second IPv4 address and the second host drops UDP
#              from the first one's other addresses: the only working pair starts at the second
#              address, which routing would not choose as WireGuard's source (the direct path
#              sets it)
#   eim        each host behind its own endpoint-independent NAT: srflx / prflx, direct
#   symmetric  both behind symmetric NATs, TURN over UDP: relayed
#   udpblocked one host behind a router that drops outgoing UDP, the other behind eim: the
#              blocked one reaches coturn over TCP (TURN-TCP), so the pair is relayed
#   turns      like udpblocked, with only a turns: server: both daemons reach coturn over TLS
#              (port 5349) through their local TLS relay, trusting the test's self-signed
#              certificate through WICE_TURNS_CA_FILE
#   icetcp     both hosts on one LAN, the first drops every UDP datagram but loopback's, TURN
#              over TCP given: relayed at first, then ICE-TCP (restart with TCP candidates)
#              finds the direct TCP pair host to host, which WireGuard uses through the proxy
#   create     one LAN; each daemon is named an interface that does not exist: it creates it
#              (userspace WireGuard in its own process where the kernel module is missing),
#              wg configures it, the tunnel works, SIGTERM removes it
#   wggo       like lan, on wireguard-go interfaces (the daemon adopts any UAPI socket)
#   alone      one LAN, three interfaces per host and daemons filtered (--interfaces) to two:
#              the managed one works, the peer with a hand-set endpoint keeps it, the
#              filtered-out interface is neither touched nor listed
#   kernel     like lan, on kernel WireGuard interfaces (ip link add type wireguard); skipped,
#              with a note and no count, where the module is missing
#   names      symmetric NATs, STUN and TURN given by name (relay.wice.test: the relay's IPv4 and
#              IPv6 addresses in each host's /etc/netns/NS/hosts): still relayed; and a daemon
#              whose TURN server's name does not resolve exits with an error
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

daemon_require test_daemon
: "${E2E_BYTES:=4000000}"
: "${E2E_RELAY_BYTES:=16000000}"
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] ||
	CASES=(lan multi lan6 eim symmetric symmetric6 names udpblocked turns icetcp create wggo alone kernel)

e2e_init
wice_snapshot
SIG_PORT=8088
BACKEND="ws://$NAT_RELAY4:$SIG_PORT/"
STUN="stun:$NAT_RELAY4:$NAT_STUN_PORT"
TURN_UDP="turn:$NAT_TURN_USER:$NAT_TURN_PASS@$NAT_RELAY4:$NAT_STUN_PORT?transport=udp"
TURN_TCP="turn:$NAT_TURN_USER:$NAT_TURN_PASS@$NAT_RELAY4:$NAT_STUN_PORT?transport=tcp"
TURNS="turns:$NAT_TURN_USER:$NAT_TURN_PASS@$NAT_RELAY4:$NAT_TLS_PORT"
BACKEND6="ws://[$NAT_RELAY6]:$SIG_PORT/"
STUN6="stun:[$NAT_RELAY6]:$NAT_STUN_PORT"

nat_wan
if ! nat_relay; then
	fail "coturn on the relay"
	exit 1
fi
# coturn's self-signed certificate (subjectAltName IP:$NAT_RELAY4) for the turns: case.
export WICE_TURNS_CA_FILE="$NAT_TURN_DIR/cert.pem"
# [::]: one listener for both families (the lan6 case's hosts have no IPv4).
nat_bg relay "$WICE" signal --ws "[::]:$SIG_PORT" >"$E2E_TMP/signal.log" 2>&1
wait_listen "$(nat_ns relay)" "$SIG_PORT" || { fail "wice signal listens"; exit 1; }

declare -A DAEMON_PID # host -> daemon PID

# daemon_start HOST IFACE ICE_SERVER...: `wice daemon` in HOST's namespace for IFACE.
daemon_start() {
	local host=$1 iface=$2 args=()
	shift 2
	for s in "$@"; do args+=(--ice-server "$s"); done
	nat_bg "$host" "$WICE" daemon --backend "${CASE_BACKEND:-$BACKEND}" "${args[@]}" \
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
a = r.get("address") or ""
print(("[%s]:%s" if ":" in a else "%s:%s") % (a, r.get("port")))' 2>/dev/null)
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

# pair_v6_host HOST PEER: HOST's selected pair is host/host from HOST's IPv6 address to PEER's,
# and its table inet wice matches the peer on ip6 (the direct path's rules).
pair_v6_host() {
	local json rules
	json=$(status_json "$1") || return 1
	STATUS_JSON=$json "$PYTHON" -c '
import json, os, sys
p = [p for i in json.loads(os.environ["STATUS_JSON"])["interfaces"] for p in i["peers"]][0]
l, r = p["selected_pair"]["local"], p["selected_pair"]["remote"]
print("# %s [%s]:%s -> %s [%s]:%s" % (l["type"], l["address"], l["port"], r["type"],
      r["address"], r["port"]))
sys.exit(0 if (l["type"], r["type"], l["address"], r["address"]) ==
         ("host", "host", sys.argv[1], sys.argv[2]) else 1)' "$(nat_addr "$1" 6)" \
		"$(nat_addr "$2" 6)" || return 1
	rules=$(ip netns exec "$(nat_ns "$1")" nft list table inet wice 2>/dev/null |
		grep -c "ip6 saddr $(nat_addr "$2" 6) .*udp dport set") || true
	note "$1: $rules ip6 port rewrite rule(s) for $(nat_addr "$2" 6)"
	[ "$rules" -ge 1 ]
}

# netns_hosts HOST LINE...: an /etc/hosts for what runs in HOST's namespace (`ip netns exec`
# bind-mounts /etc/netns/NS/hosts over /etc/hosts); netns_hosts_rm HOST removes it (and
# lib.sh's cleanup, at exit).
netns_hosts() {
	local ns
	ns=$(nat_ns "$1")
	shift
	mkdir -p "/etc/netns/$ns"
	printf '%s\n' "127.0.0.1 localhost" "$@" >"/etc/netns/$ns/hosts"
}
netns_hosts_rm() {
	rm -rf "/etc/netns/$(nat_ns "$1")"
	rmdir /etc/netns 2>/dev/null || true # only if no one else uses it
}

# probe_count HOST: the counter of HOST's table ip6 wice_probe moved (prints it).
probe_count() {
	local n
	n=$(ip netns exec "$(nat_ns "$1")" nft list table ip6 wice_probe |
		sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
	note "$1: ${n:-?} packet(s) to [$NAT_RELAY6]:$NAT_STUN_PORT"
	[ "${n:-0}" -gt 0 ]
}

# bad_name: a daemon whose TURN server's name does not resolve (RFC 6761 .invalid) exits by
# itself, with an error status and the name in its log (it manages only a missing interface).
# Its DNS server is 127.0.0.1, where nothing listens: an answer at once, whatever the machine's
# own resolver would do from a namespace (the query can be dropped: 10 s of retries).
bad_name() {
	local rc=0 log=$E2E_TMP/daemon-badname.log ns
	ns=$(nat_ns relay)
	mkdir -p "/etc/netns/$ns"
	printf '%s\n' "nameserver 127.0.0.1" "options timeout:1 attempts:1" \
		>"/etc/netns/$ns/resolv.conf"
	ip netns exec "$ns" timeout 10 "$WICE" daemon --backend "$BACKEND" \
		--ice-server "turn:u:p@wice-test.invalid:$NAT_STUN_PORT" \
		--socket "$E2E_TMP/badname.sock" "nx$E2E_ID" >"$log" 2>&1 || rc=$?
	netns_hosts_rm relay
	note "exit status $rc: $(grep -m1 'wice-test.invalid' "$log")"
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "wice-test.invalid: cannot resolve" "$log"
}

# no_ipv4 HOST...: no IPv4 address on any HOST but 127.0.0.1 (everything goes over IPv6).
no_ipv4() {
	local h a
	for h in "$@"; do
		a=$(ip -n "$(nat_ns "$h")" -4 -o addr show | awk '$4 != "127.0.0.1/8" { print $4 }')
		[ -z "$a" ] || { note "$h has IPv4 $a"; return 1; }
	done
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

# wait_tcp_pair HOST SECONDS: until HOST's selected pair is a direct ICE-TCP one.
wait_tcp_pair() {
	local deadline=$(($(now_ms) + $2 * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		if STATUS_JSON=$(status_json "$1") "$PYTHON" -c '
import json, os, sys
p = [p for i in json.loads(os.environ["STATUS_JSON"])["interfaces"] for p in i["peers"]][0]
sp = p.get("selected_pair") or {}
l, r = sp.get("local", {}), sp.get("remote", {})
# An active TCP candidate connects from a port nobody announced: learnt as peer-reflexive.
direct = ("host", "prflx")
sys.exit(0 if l.get("transport") == r.get("transport") == "tcp" and l.get("type") in direct and
         r.get("type") in direct else 1)' 2>/dev/null; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# ping_loss NS ADDR COUNT MAXLOST: COUNT echo requests 100 ms apart, at most MAXLOST unanswered.
ping_loss() {
	local got
	got=$(ip netns exec "$1" ping -c "$3" -i 0.1 -W 1 -q "$2" 2>/dev/null |
		sed -n 's/.* \([0-9]*\) received.*/\1/p')
	note "ping $2: ${got:-0} of $3 answered"
	[ "${got:-0}" -ge $(($3 - $4)) ]
}

# drop_udp HOST: HOST's namespace drops every UDP datagram in or out but loopback's.
drop_udp() {
	ip netns exec "$(nat_ns "$1")" nft -f - <<-EOF
		table inet e2e_noudp {
			chain in { type filter hook input priority 0; iifname != "lo" meta l4proto udp drop; }
			chain out { type filter hook output priority 0; oifname != "lo" meta l4proto udp drop; }
		}
	EOF
}

# second_address HOST PEER: HOST gets a second IPv4 address on its LAN (MULTI_ADDR, .250 of its
# /24, after the first in routing's choice of source), and PEER drops UDP from HOST's other
# addresses.
second_address() {
	local a4 a6
	a4=$(nat_addr "$1")
	a6=$(nat_addr "$1" 6)
	MULTI_ADDR=${a4%.*}.250
	ip -n "$(nat_ns "$1")" addr add "$MULTI_ADDR/24" dev "${NAT_IF[$1]}" || return 1
	ip netns exec "$(nat_ns "$2")" nft -f - <<-EOF
		table inet e2e_multi {
			chain in {
				type filter hook input priority 0;
				ip saddr $a4 meta l4proto udp drop
				ip6 saddr $a6 meta l4proto udp drop
			}
		}
	EOF
}

# pair_local_is HOST ADDR: HOST's one peer's selected pair starts at ADDR.
pair_local_is() {
	STATUS_JSON=$(status_json "$1") "$PYTHON" -c '
import json, os, sys
p = [p for i in json.loads(os.environ["STATUS_JSON"])["interfaces"] for p in i["peers"]][0]
l = (p.get("selected_pair") or {}).get("local") or {}
print("# %s %s:%s" % (l.get("type"), l.get("address"), l.get("port")))
sys.exit(0 if l.get("address") == sys.argv[1] else 1)' "$2"
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
CASE_IMPL=wice
run_case() {
	local name=$1 kind=$2 types=$3 relayed=$4 h1 h2 i1 i2 t0 ms k1 k2
	shift 4
	CASE_N=$((CASE_N + 1))
	h1="${name:0:3}a"
	h2="${name:0:3}b"
	[ -z "${CASE_V6:-}" ] || { h1="${name:0:2}6a"; h2="${name:0:2}6b"; }
	if [ "$kind" = none ]; then
		nat_lan "r$h1" none "$h1" "$h2"
	elif [ "$kind" = lan6 ]; then
		nat_lan "r$h1" eim "$h1" "$h2" # one LAN, private (fd00:0:0:N::) addresses
	else
		k1=${kind%%/*}
		k2=${kind##*/}
		nat_router "$k1" "r$h1" && nat_host "$h1" "r$h1"
		nat_router "$k2" "r$h2" && nat_host "$h2" "r$h2"
	fi
	[ "$name" != icetcp ] || drop_udp "$h1" || fail "$name: $h1 drops UDP"
	[ "$name" != multi ] || second_address "$h1" "$h2" || fail "$name: $h1's second address"
	if [ -n "${CASE_V6:-}" ]; then # IPv6 only: no IPv4 address (nor route) on either host
		ip -n "$(nat_ns "$h1")" -4 addr flush dev "${NAT_IF[$h1]}"
		ip -n "$(nat_ns "$h2")" -4 addr flush dev "${NAT_IF[$h2]}"
		check "$name: no IPv4 address on $h1 and $h2 but loopback's" no_ipv4 "$h1" "$h2"
	fi
	if [ -n "${CASE_HOSTS:-}" ]; then
		netns_hosts "$h1" "$CASE_HOSTS"
		netns_hosts "$h2" "$CASE_HOSTS"
		# counts what h1 sends to the relay's IPv6 address (the name's AAAA record)
		ip netns exec "$(nat_ns "$h1")" nft -f - <<-EOF
			table ip6 wice_probe {
				chain out {
					type filter hook output priority 0;
					ip6 daddr $NAT_RELAY6 udp dport $NAT_STUN_PORT counter
				}
			}
		EOF
	fi
	i1="d${CASE_N}a$E2E_ID"
	i2="d${CASE_N}b$E2E_ID"
	key_new "$h1"
	key_new "$h2"
	if ! wg_start "$CASE_IMPL" "$(nat_ns "$h1")" "$i1" ||
		! wg_start "$CASE_IMPL" "$(nat_ns "$h2")" "$i2"; then
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
	if [ "$name" = icetcp ]; then
		if wait_tcp_pair "$h1" 30; then
			ms=$(($(now_ms) - t0))
			pass "$name: $h1 moves to a direct ICE-TCP pair (${ms} ms after the start)"
		else
			fail "$name: $h1 moves to a direct ICE-TCP pair"
		fi
		check "$name: ping through the ICE-TCP pair" \
			assert_ping "$(nat_ns "$h1")" "10.99.$CASE_N.2" 5
		check "$name: TCP transfer through the ICE-TCP pair" \
			assert_tcp "$(nat_ns "$h2")" "10.99.$CASE_N.2" "$(nat_ns "$h1")"
		check "$name: $h1's WireGuard endpoint is the daemon's proxy (TCP pairs use it)" \
			endpoint_is_proxy "$h1" "$i1" "$(key_pub "$h2")"
		check "$name: $h1 logged the restart with ICE-TCP" \
			grep -q "trying ICE-TCP\|the peer uses ICE-TCP" "$E2E_TMP/daemon-$h1.log"
	elif [ "$relayed" = true ]; then
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
	if [ "$name" = symmetric ]; then
		# Relayed 2 s after the checks began: the controlling daemon restarts ICE with TCP
		# candidates; none works behind symmetric NATs, and the relayed pair carries on.
		check "$name: a daemon tries ICE-TCP once relayed" wait_log "$E2E_TMP/daemon-$h1.log" \
			"ICE-TCP" 10
		check "$name: the relay carries on meanwhile (at most 1 of 80 pings lost)" \
			ping_loss "$(nat_ns "$h1")" "10.99.$CASE_N.2" 80 1
		check "$name: status on $h1: still relayed after the ICE-TCP attempt" \
			status_check "$h1" "$types" "$relayed"
	fi
	if [ "$kind" = lan6 ]; then
		check "$name: $h1's pair is host/host over IPv6, ip6 direct rules" \
			pair_v6_host "$h1" "$h2"
		check "$name: $h2's pair is host/host over IPv6, ip6 direct rules" \
			pair_v6_host "$h2" "$h1"
	fi
	if [ -n "${CASE_HOSTS:-}" ]; then
		check "$name: $h1's daemon resolved relay.wice.test to IPv4 and IPv6" \
			grep -qF "ICE server relay.wice.test: $NAT_RELAY4 $NAT_RELAY6" \
			"$E2E_TMP/daemon-$h1.log"
		check "$name: $h1 sent STUN/TURN to the name's IPv6 address too" probe_count "$h1"
	fi
	if [ "$name" = multi ]; then
		check "$name: $h1's pair starts at its second address ${MULTI_ADDR:-}" \
			pair_local_is "$h1" "${MULTI_ADDR:-}"
	fi
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
	if [ -n "${CASE_HOSTS:-}" ]; then
		netns_hosts_rm "$h1"
		netns_hosts_rm "$h2"
	fi
}

# wait_iface NS IFACE: until IFACE exists in NS and its UAPI socket answers (5 s).
wait_iface() {
	local deadline=$(($(now_ms) + 5000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		ip -n "$1" link show "$2" >/dev/null 2>&1 && ip netns exec "$1" wg show "$2" \
			>/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

# iface_gone NS IFACE: IFACE and its UAPI socket are gone.
iface_gone() {
	! ip -n "$1" link show "$2" >/dev/null 2>&1 && [ ! -e "$WG_RUN_DIR/$2.sock" ]
}

# lan_case NAME PREFIX: the next case's two hosts NAMEa and NAMEb on one LAN, with fresh keys;
# sets h1 h2 (hosts), n1 n2 (namespaces), i1 i2 (interface names PREFIX<n>a/b) of the caller.
lan_case() {
	CASE_N=$((CASE_N + 1))
	h1="${1}a"
	h2="${1}b"
	nat_lan "r$h1" none "$h1" "$h2"
	n1=$(nat_ns "$h1")
	n2=$(nat_ns "$h2")
	i1="$2${CASE_N}a$E2E_ID"
	i2="$2${CASE_N}b$E2E_ID"
	key_new "$h1"
	key_new "$h2"
}

# run_create_case: `wice daemon IFACE` for an IFACE that does not exist creates it.
run_create_case() {
	local h1 h2 i1 i2 n1 n2
	lan_case cre d
	daemon_start "$h1" "$i1" "$STUN"
	daemon_start "$h2" "$i2" "$STUN"
	check "create: the daemon on $h1 creates $i1" wait_iface "$n1" "$i1"
	check "create: the daemon on $h2 creates $i2" wait_iface "$n2" "$i2"
	check "create: wg configures $i1" wg_conf "$n1" "$i1" "$(key_file "$h1")" 51820 \
		"$(key_pub "$h2")" "10.99.$CASE_N.2/32"
	check "create: wg configures $i2" wg_conf "$n2" "$i2" "$(key_file "$h2")" 51820 \
		"$(key_pub "$h1")" "10.99.$CASE_N.1/32"
	link_up "$n1" "$i1" "10.99.$CASE_N.1/24"
	link_up "$n2" "$i2" "10.99.$CASE_N.2/24"
	check "create: ping through the created interfaces" assert_ping "$n1" "10.99.$CASE_N.2" 20
	check "create: TCP transfer through the created interfaces" \
		assert_tcp "$n2" "10.99.$CASE_N.2" "$n1"
	check "create: status on $h1: selected pair host, relayed false" \
		status_check "$h1" host false
	check "create: $h1 logged the creation" grep -q "$i1: created (" "$E2E_TMP/daemon-$h1.log"
	check "create: every thread of $h1's daemon, WireGuard's too, holds CAP_NET_ADMIN alone" \
		caps "$h1"
	check "create: daemon on $h1 stops on SIGTERM" daemon_stop "$h1"
	check "create: daemon on $h2 stops on SIGTERM" daemon_stop "$h2"
	check "create: $i1 is gone with its daemon" iface_gone "$n1" "$i1"
	check "create: $i2 is gone with its daemon" iface_gone "$n2" "$i2"
}

# endpoint_stays NS IFACE PUB WANT SECONDS: the peer's endpoint is WANT the whole time.
endpoint_stays() {
	local deadline=$(($(now_ms) + $5 * 1000)) ep
	while :; do
		ep=$(wg_endpoint "$1" "$2" "$3")
		[ "$ep" = "$4" ] || { note "$2: endpoint $ep, want $4"; return 1; }
		[ "$(now_ms)" -lt "$deadline" ] || return 0
		sleep 0.1
	done
}

# pair_remote_is HOST IFACE ADDR: IFACE's one peer's selected pair is host to host, to ADDR.
pair_remote_is() {
	STATUS_JSON=$(status_json "$1") "$PYTHON" -c '
import json, os, sys
doc = json.loads(os.environ["STATUS_JSON"])
p = [i for i in doc["interfaces"] if i["name"] == sys.argv[1]][0]["peers"][0]
sp = p.get("selected_pair") or {}
l, r = sp.get("local", {}), sp.get("remote", {})
print("# %s: %s %s -> %s %s" % (sys.argv[1], l.get("type"), l.get("address"), r.get("type"),
                                r.get("address")))
sys.exit(0 if (l.get("type"), r.get("type"), r.get("address")) == ("host", "host", sys.argv[2])
         else 1)' "$2" "$3"
}

# run_alone_case: what the daemon must leave alone.
run_alone_case() {
	local h1 h2 n1 n2 i1 i2 a b t
	lan_case aln x
	# m: managed (no endpoint); h: hand-set endpoints; x: outside the filter (no endpoint).
	for t in m h x; do
		a="${t}${CASE_N}a$E2E_ID"
		b="${t}${CASE_N}b$E2E_ID"
		wg_start wice "$n1" "$a" && wg_start wice "$n2" "$b" ||
			{ fail "alone: interfaces start"; return; }
	done
	wg_conf "$n1" "m${CASE_N}a$E2E_ID" "$(key_file "$h1")" 51820 "$(key_pub "$h2")" 10.98.1.2/32
	wg_conf "$n2" "m${CASE_N}b$E2E_ID" "$(key_file "$h2")" 51820 "$(key_pub "$h1")" 10.98.1.1/32
	wg_conf "$n1" "h${CASE_N}a$E2E_ID" "$(key_file "$h1")" 51821 "$(key_pub "$h2")" \
		10.98.2.2/32 "$(nat_addr "$h2"):51821"
	wg_conf "$n2" "h${CASE_N}b$E2E_ID" "$(key_file "$h2")" 51821 "$(key_pub "$h1")" \
		10.98.2.1/32 "$(nat_addr "$h1"):51821"
	# x works by itself (hand-set endpoints): a tunnel ICE must not gather on, nor restart for.
	wg_conf "$n1" "x${CASE_N}a$E2E_ID" "$(key_file "$h1")" 51822 "$(key_pub "$h2")" 10.98.3.2/32 \
		"$(nat_addr "$h2"):51822"
	wg_conf "$n2" "x${CASE_N}b$E2E_ID" "$(key_file "$h2")" 51822 "$(key_pub "$h1")" 10.98.3.1/32 \
		"$(nat_addr "$h1"):51822"
	for t in 1 2 3; do
		a=$(printf 'm h x' | cut -d' ' -f"$t")
		link_up "$n1" "${a}${CASE_N}a$E2E_ID" "10.98.$t.1/24"
		link_up "$n2" "${a}${CASE_N}b$E2E_ID" "10.98.$t.2/24"
	done
	# The namespaces share /var/run/wireguard, so each daemon's globs match the other host's
	# interfaces' sockets too: those have no link in its namespace and are not its to manage.
	for a in "$h1" "$h2"; do
		nat_bg "$a" "$WICE" daemon --backend "$BACKEND" --ice-server "$STUN" \
			--interfaces "m${CASE_N}*" --interfaces "h${CASE_N}*" \
			--socket "$E2E_TMP/$a.sock" --log-level debug >"$E2E_TMP/daemon-$a.log" 2>&1
		DAEMON_PID[$a]=$NAT_BG_PID
	done
	check "alone: ping through the managed interface" assert_ping "$n1" 10.98.1.2 20
	check "alone: the hand-set endpoint stays as set (3 s)" endpoint_stays "$n1" \
		"h${CASE_N}a$E2E_ID" "$(key_pub "$h2")" "$(nat_addr "$h2"):51821" 3
	check "alone: ping through the interface with hand-set endpoints" \
		assert_ping "$n1" 10.98.2.2 10
	check "alone: the filtered-out interface's endpoint stays as set" endpoint_stays \
		"$n1" "x${CASE_N}a$E2E_ID" "$(key_pub "$h2")" "$(nat_addr "$h2"):51822" 1
	check "alone: the filtered-out interface works by itself" assert_ping "$n1" 10.98.3.2 10
	# Another WireGuard tunnel's address appears mid-session: not a path, no restart.
	ip -n "$n1" addr add 10.98.4.1/24 dev "x${CASE_N}a$E2E_ID"
	ip -n "$n2" addr add 10.98.4.2/24 dev "x${CASE_N}b$E2E_ID"
	sleep 1.5
	check "alone: no host candidate on another WireGuard tunnel's addresses" \
		eval "! grep -E 'local candidate .* 10\.98\.' $E2E_TMP/daemon-$h1.log"
	check "alone: no ICE restart for another WireGuard tunnel's new address" \
		eval "! grep -q 'local addresses changed' $E2E_TMP/daemon-$h1.log"
	check "alone: the managed pair is host to host, to $h2's LAN address" \
		pair_remote_is "$h1" "m${CASE_N}a$E2E_ID" "$(nat_addr "$h2")"
	check "alone: $h1's daemon manages no interface of $h2's namespace" \
		eval "! grep -q 'm${CASE_N}b$E2E_ID: managed' $E2E_TMP/daemon-$h1.log"
	check "alone: status lists the managed and hand-set interfaces only" \
		eval "status_json $h1 | grep -q 'm${CASE_N}a$E2E_ID' && status_json $h1 |
			grep -q 'h${CASE_N}a$E2E_ID' && ! status_json $h1 | grep -q 'x${CASE_N}a$E2E_ID'"
	check "alone: daemon on $h1 stops on SIGTERM" daemon_stop "$h1"
	check "alone: daemon on $h2 stops on SIGTERM" daemon_stop "$h2"
	check "alone: the hand-set endpoint is still as set after the daemon stopped" \
		endpoint_stays "$n1" "h${CASE_N}a$E2E_ID" "$(key_pub "$h2")" "$(nat_addr "$h2"):51821" 0
	for t in m h x; do
		wg_stop "${t}${CASE_N}a$E2E_ID"
		wg_stop "${t}${CASE_N}b$E2E_ID"
	done
}

# run_kernel_case: the lan case on kernel WireGuard, where the module exists.
run_kernel_case() {
	local h1 h2 n1 n2 i1 i2
	lan_case ker k
	if ! ip -n "$n1" link add "$i1" type wireguard 2>/dev/null; then
		note "kernel: skipped: no WireGuard kernel module (ip link add type wireguard fails)"
		return 0
	fi
	check "kernel: second kernel interface" ip -n "$n2" link add "$i2" type wireguard
	wg_conf "$n1" "$i1" "$(key_file "$h1")" 51820 "$(key_pub "$h2")" "10.99.$CASE_N.2/32"
	wg_conf "$n2" "$i2" "$(key_file "$h2")" 51820 "$(key_pub "$h1")" "10.99.$CASE_N.1/32"
	link_up "$n1" "$i1" "10.99.$CASE_N.1/24"
	link_up "$n2" "$i2" "10.99.$CASE_N.2/24"
	daemon_start "$h1" "$i1" "$STUN"
	daemon_start "$h2" "$i2" "$STUN"
	check "kernel: ping through the tunnel" assert_ping "$n1" "10.99.$CASE_N.2" 20
	check "kernel: TCP transfer through the tunnel" assert_tcp "$n2" "10.99.$CASE_N.2" "$n1"
	check "kernel: $h1's WireGuard endpoint is the peer itself (direct path)" \
		endpoint_is_direct "$h1" "$i1" "$(key_pub "$h2")"
	check "kernel: status on $h1: selected pair host, relayed false" \
		status_check "$h1" host false
	check "kernel: daemon on $h1 stops on SIGTERM" daemon_stop "$h1"
	check "kernel: daemon on $h2 stops on SIGTERM" daemon_stop "$h2"
	check "kernel: no nftables rules left on $h1" no_direct_rules "$h1"
	ip -n "$n1" link del "$i1"
	ip -n "$n2" link del "$i2"
}

for c in "${CASES[@]}"; do
	case $c in
	lan) run_case lan none host false "$STUN" ;;
	multi) run_case multi none host false "$STUN" ;;
	lan6) CASE_V6=1 CASE_BACKEND=$BACKEND6 run_case lan6 lan6 host false "$STUN6" ;;
	symmetric6)
		CASE_V6=1 CASE_BACKEND=$BACKEND6 run_case symmetric6 symmetric relay true \
			"turn:$NAT_TURN_USER:$NAT_TURN_PASS@[$NAT_RELAY6]:$NAT_STUN_PORT?transport=udp"
		;;
	names)
		CASE_HOSTS=$(printf '%s relay.wice.test\n' "$NAT_RELAY4" "$NAT_RELAY6") \
			run_case names symmetric relay true "stun:relay.wice.test:$NAT_STUN_PORT" \
			"turn:$NAT_TURN_USER:$NAT_TURN_PASS@relay.wice.test:$NAT_STUN_PORT?transport=udp"
		check "names: a daemon whose TURN server's name does not resolve exits" bad_name
		;;
	eim) run_case eim eim srflx,prflx false "$STUN" ;;
	symmetric) run_case symmetric symmetric relay true "$TURN_UDP" ;;
	udpblocked)
		run_case udpblocked udp-blocked/eim relay true "$STUN" "$TURN_UDP" "$TURN_TCP"
		;;
	turns) run_case turns udp-blocked/eim relay true "$TURNS" ;;
	create) run_create_case ;;
	wggo) CASE_IMPL=wireguard-go run_case wggo none host false "$STUN" ;;
	alone) run_alone_case ;;
	kernel) run_kernel_case ;;
	icetcp) run_case icetcp none host,prflx false "$STUN" "$TURN_TCP" ;;
	renew)
		run_case renew symmetric relay true \
			"turn:$NAT_RELAY4:$NAT_REST_PORT?secret=$NAT_TURN_SECRET&lifetime=60&transport=udp"
		;;
	*) fail "unknown case $c" ;;
	esac
done

e2e_summary
