#!/bin/bash
# turns: is really TLS, seen from the wire (issue 4). In a network namespace of its own, tcpdump
# records every TCP packet on the loopback while test_tls_relay's coturn case runs: a STUN
# Binding and an authenticated TURN Allocate (USERNAME wice-secret-user) go from a plain TCP
# client through wice's TLS relay to coturn's TLS port. The packets on the TLS port must hold
# neither the username nor the STUN magic cookie 21 12 a4 42; the same capture's plaintext
# leg (client to relay, which libnice uses) must hold both, so the search is shown to work.
#
# Usage: tests/e2e/test_turns_capture.sh   (as root; TEST_TLS_RELAY=path to test_tls_relay)
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TEST_TLS_RELAY=$(realpath -m "${TEST_TLS_RELAY:-$ROOT/build/tests/ice/test_tls_relay}")
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

e2e_init
for need in tcpdump turnserver "$TEST_TLS_RELAY"; do
	if ! command -v "$need" >/dev/null; then
		note "skipped: $need not found"
		exit 0
	fi
done

NS="tcap$E2E_ID"
TLS_PORT=5349 # the namespace is ours: the standard turns: port is free in it
USER=wice-secret-user
ns_add "$NS"

# Packets handed over and written one by one, so stopping tcpdump loses nothing. A capture
# that dropped packets proves nothing about what it missed: on a busy machine, try again
# (a large buffer makes that rare).
capture() {
	local deadline
	rm -f "$E2E_TMP/all.pcap"
	ip netns exec "$NS" tcpdump -i lo -B 32768 --immediate-mode -U -n -s 0 \
		-w "$E2E_TMP/all.pcap" tcp 2>"$E2E_TMP/tcpdump.log" &
	TCPDUMP=$!
	E2E_BG[$TCPDUMP]=1
	deadline=$(($(now_ms) + 10000))
	until grep -q 'listening on' "$E2E_TMP/tcpdump.log"; do
		[ "$(now_ms)" -lt "$deadline" ] || break
		sleep 0.05
	done
	grep -q 'listening on' "$E2E_TMP/tcpdump.log" || return 1
	ip netns exec "$NS" env WICE_TEST_TURNS_PORT=$TLS_PORT WICE_TEST_ONLY=test_coturn \
		"$TEST_TLS_RELAY" >"$E2E_TMP/test.log" 2>&1 || RUN_FAILED=1
	stop_pid "$TCPDUMP"
	unset "E2E_BG[$TCPDUMP]"
	grep -q '^0 packets dropped by kernel' "$E2E_TMP/tcpdump.log"
}
RUN_FAILED=0
complete=0
for attempt in 1 2 3; do
	RUN_FAILED=0
	if capture; then
		complete=1
		break
	fi
	note "capture attempt $attempt incomplete: $(grep dropped "$E2E_TMP/tcpdump.log")"
done
check "tcpdump captured every packet on the namespace's loopback" test "$complete" = 1
check "Binding and authenticated Allocate through the TLS relay to coturn" test "$RUN_FAILED" = 0

tcpdump -r "$E2E_TMP/all.pcap" -w "$E2E_TMP/tls.pcap" "tcp port $TLS_PORT" 2>/dev/null
tcpdump -r "$E2E_TMP/all.pcap" -w "$E2E_TMP/plain.pcap" "tcp and not port $TLS_PORT" 2>/dev/null
tls_bytes=$(tcpdump -r "$E2E_TMP/tls.pcap" -n -q 2>/dev/null |
	awk '{ s += $NF } END { print s + 0 }')
note "TLS port carried $tls_bytes payload bytes"

has() { # has FILE PERL-REGEX: the raw bytes of FILE match
	LC_ALL=C grep -qaP "$2" "$1"
}
lacks() {
	! has "$@"
}
check "the TLS port carried data" test "$tls_bytes" -gt 1000
check "the TLS port carried a TLS handshake" has "$E2E_TMP/tls.pcap" '\x16\x03[\x01-\x03]'
check "no username on the TLS port" lacks "$E2E_TMP/tls.pcap" "$USER"
check "no STUN magic cookie on the TLS port" lacks "$E2E_TMP/tls.pcap" '\x21\x12\xa4\x42'
check "the plaintext leg shows the username (the search works)" has "$E2E_TMP/plain.pcap" "$USER"
check "the plaintext leg shows the magic cookie (the search works)" \
	has "$E2E_TMP/plain.pcap" '\x21\x12\xa4\x42'
e2e_summary
