#!/bin/bash
# Interoperability of wice's userspace WireGuard with wireguard-go, driven only through `wg`.
#
# For each pairing (a=wice b=wireguard-go, a=wireguard-go b=wice, a=wice b=wice), in two
# network namespaces joined by a veth:
#   basic      IPv4 and IPv6 inner ping both ways, TCP transfers (SHA-256 checked) both ways;
#              `wg showconf` reflects what `wg set` configured
#   rehandshake  remove and re-add the peer on a: new handshake (latest-handshakes moves on b),
#              ping and TCP again
#   restart    restart b's process and reconfigure it: traffic flows again, and b's first
#              packet after each of E2E_RESTARTS (10) restarts is answered
#   wrongkey   a knows b by a wrong public key: nothing gets through, no handshake
#   psk        preshared keys differ: nothing gets through, no handshake
#   outer6     outer transport over IPv6, matching preshared keys, b learns a's endpoint
#
# Usage: tests/e2e/test_interop.sh        (as root)
# Env:   WICE=path (default build/wice), IMPL_A / IMPL_B (run one pairing: wice,
#        wireguard-go or a command taking `-f IFACE`), E2E_BYTES (TCP transfer size, default
#        20000000), E2E_REQUIRE_WICE=1 (fail instead of falling back when wice is missing),
#        E2E_RESTARTS (default 10), E2E_KEEP=1 (keep logs), LOG_LEVEL=verbose (wireguard-go's own logging).
# Output: one "ok - ..." / "not ok - ..." line per check; exit status 1 if any failed.
set -eu

WICE=${WICE:-"$(dirname "$0")/../../build/wice"}
WICE=$(realpath -m "$WICE")
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

PORT_A=51820
PORT_B=51821
OUT4_A=192.0.2.1
OUT4_B=192.0.2.2
OUT6_A=fdaa::1
OUT6_B=fdaa::2
IN4_A=10.99.0.1
IN4_B=10.99.0.2
IN6_A=fd00::1
IN6_B=fd00::2

# tunnel_up TAG EP_A EP_B PUB_OF_B [PSK_A [PSK_B [B_HAS_ENDPOINT]]]
# Start both ends, configure them with wg only, address and bring up their links. EP_* are
# the outer hosts as they appear in an endpoint ("192.0.2.1", "[fdaa::1]"); PUB_OF_B is the
# public key a uses for its peer (normally b's). Sets IF_A and IF_B.
tunnel_up() {
	local tag=$1 ep_a=$2 ep_b=$3 pub_of_b=$4 psk_a=${5:-} psk_b=${6:-} b_ep=${7:-yes}
	IF_A="wa$E2E_ID$PAIR_N$tag"
	IF_B="wb$E2E_ID$PAIR_N$tag"
	wg_start "$IMPL_A" "$NS_A" "$IF_A" &&
		wg_start "$IMPL_B" "$NS_B" "$IF_B" &&
		a_conf "$ep_b" "$pub_of_b" "$psk_a" &&
		b_conf "$ep_a" "$psk_b" "$b_ep"
}

a_conf() {
	wg_conf "$NS_A" "$IF_A" "$(key_file a)" "$PORT_A" "$2" "$IN4_B/32,$IN6_B/128" \
		"$1:$PORT_B" "$3" &&
		link_up "$NS_A" "$IF_A" "$IN4_A/24" "$IN6_A/64"
}

b_conf() {
	local ep=""
	[ "${3:-yes}" != yes ] || ep="$1:$PORT_A"
	wg_conf "$NS_B" "$IF_B" "$(key_file b)" "$PORT_B" "$(key_pub a)" "$IN4_A/32,$IN6_A/128" \
		"$ep" "$2" &&
		link_up "$NS_B" "$IF_B" "$IN4_B/24" "$IN6_B/64"
}

tunnel_down() {
	wg_stop "$IF_A"
	wg_stop "$IF_B"
}

# showconf_matches: a's `wg showconf` holds exactly what was set.
showconf_matches() {
	local conf line
	conf=$(wg_in "$NS_A" showconf "$IF_A") || return 1
	for line in "PrivateKey = $(cat "$(key_file a)")" "ListenPort = $PORT_A" \
		"PublicKey = $(key_pub b)" "AllowedIPs = $IN4_B/32, $IN6_B/128" \
		"Endpoint = $OUT4_B:$PORT_B"; do
		printf '%s\n' "$conf" | grep -qxF "$line" && continue
		note "wg showconf $IF_A lacks \"${line%% = *} = ...\"; it shows:"
		printf '%s\n' "$conf" | sed 's/^PrivateKey = .*/PrivateKey = (hidden)/; s/^/#   /'
		return 1
	done
}

# no_handshake NS IFACE PUB...: no handshake ever completed with these peers.
no_handshake() {
	local ns=$1 iface=$2 pub hs
	shift 2
	for pub; do
		hs=$(wg_latest_handshake "$ns" "$iface" "$pub")
		if [ "${hs:-0}" != 0 ]; then
			note "$iface: handshake with $pub at $hs, expected none"
			return 1
		fi
	done
}

# no_handshake_both PUB_OF_B: neither a (with its peer PUB_OF_B) nor b completed a handshake.
no_handshake_both() {
	no_handshake "$NS_A" "$IF_A" "$1" && no_handshake "$NS_B" "$IF_B" "$(key_pub a)"
}

# peer_readd: remove b from a and add it back; the fresh peer must have no handshake.
peer_readd() {
	wg_in "$NS_A" set "$IF_A" peer "$(key_pub b)" remove || return 1
	if wg_in "$NS_A" show "$IF_A" peers | grep -qxF "$(key_pub b)"; then
		note "peer still listed after remove"
		return 1
	fi
	wg_set_peer "$NS_A" "$IF_A" "$(key_pub b)" "$IN4_B/32,$IN6_B/128" "$OUT4_B:$PORT_B" &&
		no_handshake "$NS_A" "$IF_A" "$(key_pub b)"
}

# handshake_after NS IFACE PUB T: the peer's latest handshake is later than T.
handshake_after() {
	local hs
	hs=$(wg_latest_handshake "$1" "$2" "$3")
	[ "${hs:-0}" -gt "$4" ] || {
		note "$2: latest handshake ${hs:-none}, not after $4"
		return 1
	}
}

endpoint_is() {
	local ep
	ep=$(wg_endpoint "$1" "$2" "$3")
	[ "$ep" = "$4" ] || {
		note "$2: endpoint $ep, expected $4"
		return 1
	}
}

scenario_basic() {
	local t="$PAIR basic"
	if ! tunnel_up 1 "$OUT4_A" "$OUT4_B" "$(key_pub b)"; then
		fail "$t: set up with wg"
		tunnel_down
		return
	fi
	pass "$t: set up with wg"
	check "$t: wg showconf reflects wg set" showconf_matches
	check "$t: ping $IN4_B a->b" assert_ping "$NS_A" "$IN4_B"
	check "$t: ping $IN4_A b->a" assert_ping "$NS_B" "$IN4_A"
	check "$t: ping $IN6_B a->b" assert_ping "$NS_A" "$IN6_B"
	check "$t: ping $IN6_A b->a" assert_ping "$NS_B" "$IN6_A"
	check "$t: tcp a->b over $IN4_B" assert_tcp "$NS_B" "$IN4_B" "$NS_A"
	check "$t: tcp b->a over $IN4_A" assert_tcp "$NS_A" "$IN4_A" "$NS_B"
	check "$t: tcp a->b over $IN6_B" assert_tcp "$NS_B" "$IN6_B" "$NS_A"

	# A new handshake: a forgets b and must initiate again. Handshake times have a
	# resolution of one second, so let the clock pass the current one first.
	t="$PAIR rehandshake"
	local before deadline
	before=$(wg_latest_handshake "$NS_B" "$IF_B" "$(key_pub a)")
	deadline=$(($(now_ms) + 3000))
	while [ "$(date +%s)" -le "${before:-0}" ] && [ "$(now_ms)" -lt "$deadline" ]; do
		sleep 0.1
	done
	check "$t: peer removed and re-added on a" peer_readd
	check "$t: ping $IN4_B a->b" assert_ping "$NS_A" "$IN4_B"
	check "$t: ping $IN4_A b->a" assert_ping "$NS_B" "$IN4_A"
	check "$t: b's latest-handshake moved on" \
		handshake_after "$NS_B" "$IF_B" "$(key_pub a)" "${before:-0}"
	check "$t: a's latest-handshake set" \
		handshake_after "$NS_A" "$IF_A" "$(key_pub b)" 0
	check "$t: tcp a->b" assert_tcp "$NS_B" "$IN4_B" "$NS_A"
	check "$t: tcp b->a" assert_tcp "$NS_A" "$IN4_A" "$NS_B"

	# Restart b: it comes back with no session; a still holds the old one, so b speaks first
	# (a would only notice the dead session after its keepalive + rekey timeouts, ~15 s).
	t="$PAIR restart"
	wg_stop "$IF_B"
	if wg_start "$IMPL_B" "$NS_B" "$IF_B" && b_conf "$OUT4_A" ""; then
		pass "$t: b restarted and reconfigured"
		check "$t: ping $IN4_A b->a" assert_ping "$NS_B" "$IN4_A"
		check "$t: ping $IN4_B a->b" assert_ping "$NS_A" "$IN4_B"
		check "$t: tcp a->b" assert_tcp "$NS_B" "$IN4_B" "$NS_A"
		check "$t: b's first ping answered after each of ${E2E_RESTARTS:-10} restarts" \
			first_ping_after_restarts "${E2E_RESTARTS:-10}"
	else
		fail "$t: b restarted and reconfigured"
	fi
	tunnel_down
}

# first_ping_after_restarts N: restart b N times; each time b's very first echo request must
# be answered. a still holds the session with b's previous run: its reply has to go out on
# the session b's new handshake just made (as the kernel and wireguard-go do), not the old one.
first_ping_after_restarts() {
	local i lost=0
	for i in $(seq "$1"); do
		wg_stop "$IF_B"
		wg_start "$IMPL_B" "$NS_B" "$IF_B" && b_conf "$OUT4_A" "" || return 1
		if ! ip netns exec "$NS_B" ping -c 1 -W 2 -q "$IN4_A" >/dev/null 2>&1; then
			lost=$((lost + 1))
			assert_ping "$NS_B" "$IN4_A" || return 1
		fi
	done
	[ "$lost" -eq 0 ] || {
		note "first ping after a restart of b lost $lost times out of $1"
		return 1
	}
}

scenario_wrongkey() {
	local t="$PAIR wrongkey"
	if ! tunnel_up 2 "$OUT4_A" "$OUT4_B" "$(key_pub x)"; then
		fail "$t: set up with wg"
		tunnel_down
		return
	fi
	pass "$t: set up with wg (a knows b by a wrong public key)"
	check "$t: nothing through a->b" assert_no_traffic "$NS_A" "$IN4_B"
	check "$t: nothing through b->a" assert_no_traffic "$NS_B" "$IN4_A"
	check "$t: no handshake on either side" no_handshake_both "$(key_pub x)"
	tunnel_down
}

scenario_psk() {
	local t="$PAIR psk"
	if ! tunnel_up 3 "$OUT4_A" "$OUT4_B" "$(key_pub b)" "$(psk_file p1)" "$(psk_file p2)"; then
		fail "$t: set up with wg"
		tunnel_down
		return
	fi
	pass "$t: set up with wg (different preshared keys)"
	check "$t: nothing through a->b" assert_no_traffic "$NS_A" "$IN4_B"
	check "$t: nothing through b->a" assert_no_traffic "$NS_B" "$IN4_A"
	check "$t: no handshake on either side" no_handshake_both "$(key_pub b)"
	tunnel_down
}

scenario_outer6() {
	local t="$PAIR outer6"
	# b has no endpoint for a: it must learn [fdaa::1]:PORT_A from a's handshake.
	if ! tunnel_up 4 "[$OUT6_A]" "[$OUT6_B]" "$(key_pub b)" "$(psk_file p1)" \
		"$(psk_file p1)" no; then
		fail "$t: set up with wg"
		tunnel_down
		return
	fi
	pass "$t: set up with wg (endpoint [$OUT6_B]:$PORT_B, same preshared key)"
	check "$t: ping $IN4_B a->b" assert_ping "$NS_A" "$IN4_B"
	check "$t: ping $IN6_A b->a" assert_ping "$NS_B" "$IN6_A"
	check "$t: b learnt a's endpoint [$OUT6_A]:$PORT_A" \
		endpoint_is "$NS_B" "$IF_B" "$(key_pub a)" "[$OUT6_A]:$PORT_A"
	check "$t: tcp a->b over $IN6_B" assert_tcp "$NS_B" "$IN6_B" "$NS_A"
	check "$t: tcp b->a over $IN4_A" assert_tcp "$NS_A" "$IN4_A" "$NS_B"
	tunnel_down
}

run_pairing() {
	PAIR_N=$1
	IMPL_A=$2
	IMPL_B=$3
	PAIR="[a=$IMPL_A b=$IMPL_B]"
	NS_A="e2e-$E2E_ID-$PAIR_N-a"
	NS_B="e2e-$E2E_ID-$PAIR_N-b"
	local impl
	for impl in "$IMPL_A" "$IMPL_B"; do
		if ! impl_available "$impl"; then
			fail "$PAIR: implementation $impl runnable (${IMPL_ARGV[0]})"
			return
		fi
	done
	ns_add "$NS_A"
	ns_add "$NS_B"
	veth_add "$NS_A" veth0 "$NS_B" veth0 "$OUT4_A/24" "$OUT4_B/24" "$OUT6_A/64" "$OUT6_B/64"
	scenario_basic
	scenario_wrongkey
	scenario_psk
	scenario_outer6
	ns_del "$NS_A"
	ns_del "$NS_B"
}

e2e_init
T0=$(now_ms)
wice_snapshot
for k in a b x; do key_new "$k"; done
psk_new p1
psk_new p2

if [ -n "${IMPL_A:-}${IMPL_B:-}" ]; then
	PAIRINGS=("${IMPL_A:-wireguard-go}|${IMPL_B:-wireguard-go}")
elif impl_available wice; then
	PAIRINGS=("wice|wireguard-go" "wireguard-go|wice" "wice|wice")
elif [ -n "${E2E_REQUIRE_WICE:-}" ]; then
	fail "wice binary present at $WICE_ORIG"
	PAIRINGS=()
else
	note "wice not found at $WICE_ORIG: running wireguard-go with itself to validate the harness"
	PAIRINGS=("wireguard-go|wireguard-go")
fi

n=0
for p in "${PAIRINGS[@]}"; do
	n=$((n + 1))
	run_pairing "$n" "${p%%|*}" "${p#*|}"
done

note "test_interop took $((($(now_ms) - T0) / 1000)) s"
e2e_summary
