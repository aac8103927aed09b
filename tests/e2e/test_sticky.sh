#!/bin/bash
# The userspace WireGuard answers from the local address a peer sent to ("sticky" source, as
# the kernel module does). A server on the wan with two addresses, a client behind an eim NAT
# (whose filtering passes only replies from the address and port it sent to) that knows the
# server by its second address, for IPv4 and for IPv6 (its own interface and peer each).
# Without the sticky source the server's handshake responses leave from its first address,
# routing's choice, and the NAT drops them: no tunnel. Checks, per family: a handshake, a
# ping and a TCP transfer through the tunnel, and the client's endpoint still the second
# address (it never had to roam); then the server's IPv4 second address is removed and the
# client pointed at the first: the tunnel works again from there (a source that is gone is
# forgotten, not retried for ever).
#
# Usage: tests/e2e/test_sticky.sh   (as root; about 10 s)
# Env:   WICE (binary), E2E_KEEP=1
set -eu

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/nat.sh
. "$(dirname "$0")/nat.sh"

e2e_init
wice_snapshot
nat_wan
nat_wan_host srv
nat_router eim rcl
nat_host cl4 rcl
nat_host cl6 rcl
NS_S=$(nat_ns srv)
S4=$(nat_addr srv)
S6=$(nat_addr srv 6)
S4B=203.0.113.40
S6B=2001:db8:ffff::40
# The second addresses come after the first: routing keeps choosing the first as the source.
ip -n "$NS_S" addr add "$S4B/24" dev "${NAT_IF[srv]}"
ip -n "$NS_S" addr add "$S6B/64" dev "${NAT_IF[srv]}" nodad

IS="s$E2E_ID"
I4="c4$E2E_ID"
I6="c6$E2E_ID"
key_new srv
key_new cl4
key_new cl6
if ! wg_start wice "$NS_S" "$IS" || ! wg_start wice "$(nat_ns cl4)" "$I4" ||
	! wg_start wice "$(nat_ns cl6)" "$I6"; then
	fail "userspace WireGuard interfaces start"
	e2e_summary
	exit 1
fi
wg_conf "$NS_S" "$IS" "$(key_file srv)" 51820 "$(key_pub cl4)" 10.96.0.2/32
wg_set_peer "$NS_S" "$IS" "$(key_pub cl6)" 10.96.0.3/32
link_up "$NS_S" "$IS" 10.96.0.1/24
wg_conf "$(nat_ns cl4)" "$I4" "$(key_file cl4)" 0 "$(key_pub srv)" 10.96.0.1/32 "$S4B:51820"
link_up "$(nat_ns cl4)" "$I4" 10.96.0.2/24
wg_conf "$(nat_ns cl6)" "$I6" "$(key_file cl6)" 0 "$(key_pub srv)" 10.96.0.1/32 \
	"[$S6B]:51820"
link_up "$(nat_ns cl6)" "$I6" 10.96.0.3/24

# endpoint_is NS IFACE PUB WANT
endpoint_is() {
	local ep
	ep=$(wg_endpoint "$1" "$2" "$3")
	note "$2: endpoint $ep"
	[ "$ep" = "$4" ]
}

for fam in 4 6; do
	if [ $fam = 4 ]; then c=cl4 i=$I4 a=10.96.0.2 want="$S4B:51820"; else
		c=cl6 i=$I6 a=10.96.0.3 want="[$S6B]:51820"
	fi
	check "IPv$fam: ping through the tunnel to the server's second address" \
		assert_ping "$(nat_ns $c)" 10.96.0.1 10
	check "IPv$fam: TCP transfer through the tunnel" assert_tcp "$NS_S" 10.96.0.1 "$(nat_ns $c)"
	check "IPv$fam: the server reaches the client (ping back)" assert_ping "$NS_S" "$a" 5
	check "IPv$fam: the client's endpoint is still the second address" \
		endpoint_is "$(nat_ns $c)" "$i" "$(key_pub srv)" "$want"
done

# The second IPv4 address goes; the client moves to the first. The server's endpoint for the
# client still names the gone address as its source until the client's packets arrive.
ip -n "$NS_S" addr del "$S4B/24" dev "${NAT_IF[srv]}"
wg_set_peer "$(nat_ns cl4)" "$I4" "$(key_pub srv)" 10.96.0.1/32 "$S4:51820"
check "IPv4: after the second address went, ping through the tunnel to the first" \
	assert_ping "$(nat_ns cl4)" 10.96.0.1 10
check "IPv4: and from the server to the client" assert_ping "$NS_S" 10.96.0.2 5
check "IPv4: TCP transfer from the server to the client" \
	assert_tcp "$(nat_ns cl4)" 10.96.0.2 "$NS_S"

wg_stop "$IS"
wg_stop "$I4"
wg_stop "$I6"
e2e_summary
