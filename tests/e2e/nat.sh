# shellcheck shell=bash
# A network-namespace internet for wice's end-to-end tests: a "wan" with public documentation
# addresses, a STUN/TURN relay (coturn) on it, NAT routers of several kinds with a LAN each, and
# hosts on those LANs. docs/testing.md describes the topology and each NAT kind.
#
# Source it after lib.sh, call e2e_init, then:
#
#   nat_wan                          the internet (once)
#   nat_relay                        coturn on 203.0.113.2 and .3 (optional)
#   nat_router eim r1                a router r1 doing KIND (none eim symmetric udp-blocked)
#   nat_host a r1                    a host a on r1's LAN, default route via r1
#   nat_lan r3 eim c d               a router and two hosts on its LAN
#   ip netns exec "$(nat_ns a)" ...  run something on host a
#   nat_flush r1                     drop r1's NAT mappings (all of its conntrack entries)
#
# NAME arguments are short names of the caller's choosing; the namespaces and interfaces made
# from them carry E2E_ID, and every namespace is recorded by ns_add for deletion at exit.
# Background processes (turnserver, nat_bg) are recorded in E2E_BG and stopped by PID.
#
# Addresses (N is the router's number, 1 for the first nat_router, up to 15):
#   wan                 203.0.113.1/24, 2001:db8:ffff::1/64 (routes to the `none` LANs)
#   relay               203.0.113.2 and .3, 2001:db8:ffff::2 and ::3
#   wan hosts           203.0.113.4 .. 9 (nat_wan_host)
#   router N, wan side  203.0.113.(10+N), 2001:db8:ffff::(10+N)
#   router N, LAN       NAT kinds: 10.N.0.1/24, fd00:0:0:N::1/64
#                       none: 198.18.N.1/24, 2001:db8:N::1/64 (public, routed)
#   hosts on LAN N      the next addresses of the LAN, from .2 / ::2 on

# shellcheck disable=SC2034 # the NAT_* globals are read by the scripts that source this file
: "${PYTHON:=python3}"
NAT_WAN_NS=""
NAT_WAN_BR=""
NAT_WAN4=203.0.113.1
NAT_WAN6=2001:db8:ffff::1
NAT_ROUTER_N=0
NAT_ROUTERS_MAX=200 # 203.0.113.(10+N) on the wan; 10.N.0.0/24 or 198.18.N.0/24 behind
NAT_WAN_HOST_N=3
declare -A NAT_NS       # NAME -> namespace (wan hosts, routers and hosts)
declare -A NAT_KIND     # router NAME -> none | eim | symmetric | udp-blocked
declare -A NAT_IDX      # router NAME -> N
declare -A NAT_PUB4     # router NAME -> its wan address; host NAME -> its router's (or own)
declare -A NAT_PUB6
declare -A NAT_ADDR4    # NAME -> the address on its own side (LAN for hosts and routers)
declare -A NAT_ADDR6
declare -A NAT_ROUTER   # host NAME -> router NAME
declare -A NAT_NHOSTS   # router NAME -> hosts attached so far
declare -A NAT_IF       # NAME -> its interface name toward the wan or the LAN

# Relay (nat_relay): addresses, ports, credentials.
NAT_RELAY_NS=""
NAT_RELAY4=203.0.113.2
NAT_RELAY4B=203.0.113.3
NAT_RELAY6=2001:db8:ffff::2
NAT_RELAY6B=2001:db8:ffff::3
NAT_STUN_PORT=3478
NAT_STUN_ALT_PORT=3479
NAT_TLS_PORT=5349
NAT_TURN_USER=user
NAT_TURN_PASS=pass
NAT_TURN_REALM=wice.test
NAT_TURN_SECRET=""
NAT_TURN_PID=""
NAT_REST_PID=""
NAT_REST_PORT=3488
NAT_REST_TLS_PORT=5359
NAT_TURN_DIR=""

# nat_ns NAME: the namespace of a wan host, router or host made here.
nat_ns() {
	echo "${NAT_NS[$1]:?no namespace called $1}"
}

# nat_addr NAME [6]: NAME's own address (LAN side for hosts and routers).
# nat_pub NAME [6]: the public address NAME's traffic leaves with (the router's wan address
# behind a NAT; the host's own behind `none`).
nat_addr() {
	if [ "${2:-}" = 6 ]; then echo "${NAT_ADDR6[$1]}"; else echo "${NAT_ADDR4[$1]}"; fi
}
nat_pub() {
	if [ "${2:-}" = 6 ]; then echo "${NAT_PUB6[$1]}"; else echo "${NAT_PUB4[$1]}"; fi
}

# nat_sysctl NS KEY=VALUE...
nat_sysctl() {
	local ns=$1
	shift
	ip netns exec "$ns" sysctl -q -w "$@" >/dev/null
}

# ---- the internet ----------------------------------------------------------------------------

# nat_wan: the "wan" namespace (wan-E2E_ID): a bridge addressed 203.0.113.1/24 and
# 2001:db8:ffff::1/64 that every wan host and router joins with a veth, forwarding on (it is the
# next hop to the `none` LANs, whose routes nat_router adds).
nat_wan() {
	NAT_WAN_NS="wan-$E2E_ID"
	NAT_WAN_BR="wbr$E2E_ID"
	ns_add "$NAT_WAN_NS" || return 1
	# A bridge takes the smallest MAC address of its ports unless given one: each router or
	# host added later could change it, and everyone's ARP entry for the bridge's address
	# would then point nowhere until it expired (tens of seconds of lost packets, seen).
	ip -n "$NAT_WAN_NS" link add "$NAT_WAN_BR" address 02:00:cb:00:71:01 type bridge
	ip -n "$NAT_WAN_NS" addr add "$NAT_WAN4/24" dev "$NAT_WAN_BR"
	ip -n "$NAT_WAN_NS" addr add "$NAT_WAN6/64" dev "$NAT_WAN_BR" nodad
	ip -n "$NAT_WAN_NS" link set "$NAT_WAN_BR" up
	nat_sysctl "$NAT_WAN_NS" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
	NAT_NS[wan]=$NAT_WAN_NS
	NAT_ADDR4[wan]=$NAT_WAN4
	NAT_ADDR6[wan]=$NAT_WAN6
	NAT_PUB4[wan]=$NAT_WAN4
	NAT_PUB6[wan]=$NAT_WAN6
}

# nat_wan_link NS IFACE TAG ADDR4 ADDR6: a veth from NS (as IFACE) to the wan bridge (as
# wTAG-E2E_ID), addressed, with default routes via the wan namespace.
nat_wan_link() {
	local ns=$1 ifc=$2 tag=$3 a4=$4 a6=$5 peer="w$3-$E2E_ID"
	[ -n "$NAT_WAN_NS" ] || { note "nat_wan first"; return 1; }
	ip link add "$ifc" netns "$ns" type veth peer name "$peer" netns "$NAT_WAN_NS"
	ip -n "$NAT_WAN_NS" link set "$peer" master "$NAT_WAN_BR" up
	ip -n "$ns" addr add "$a4/24" dev "$ifc"
	ip -n "$ns" addr add "$a6/64" dev "$ifc" nodad
	ip -n "$ns" link set "$ifc" up
	ip -n "$ns" route add default via "$NAT_WAN4"
	ip -n "$ns" -6 route add default via "$NAT_WAN6"
}

# nat_wan_host NAME [ADDR4 ADDR6]: a host with a public address on the wan (wh-NAME-E2E_ID),
# by default the next of 203.0.113.4 .. 9 (and the same last number in 2001:db8:ffff::/64).
nat_wan_host() {
	local name=$1 a4=${2:-} a6=${3:-} ns
	if [ -z "$a4" ]; then
		NAT_WAN_HOST_N=$((NAT_WAN_HOST_N + 1))
		[ "$NAT_WAN_HOST_N" -le 9 ] || { note "too many wan hosts"; return 1; }
		a4=203.0.113.$NAT_WAN_HOST_N
		a6=2001:db8:ffff::$NAT_WAN_HOST_N
	fi
	ns="wh-$name-$E2E_ID"
	ns_add "$ns" || return 1
	nat_wan_link "$ns" "eth-$E2E_ID" "h${a4##*.}" "$a4" "$a6" || return 1
	NAT_NS[$name]=$ns
	NAT_IF[$name]="eth-$E2E_ID"
	NAT_ADDR4[$name]=$a4
	NAT_ADDR6[$name]=$a6
	NAT_PUB4[$name]=$a4
	NAT_PUB6[$name]=$a6
}

# ---- routers and hosts -----------------------------------------------------------------------

# nat_router KIND NAME: a router namespace (rt-NAME-E2E_ID) with a wan side (wan interface
# wan-E2E_ID, 203.0.113.(10+N)) and a LAN bridge (lan-E2E_ID) that nat_host attaches hosts to.
# KIND:
#   none         plain routing: the LAN has public addresses (198.18.N.0/24, RFC 2544's
#                benchmarking range, 2001:db8:N::/64) that the wan routes to this router; no filtering
#   eim          masquerade: Linux keeps the host's source port when it is free, so the mapping
#                is endpoint-independent and port-preserving (the common home NAT); inbound
#                only for established flows (address-and-port-dependent filtering)
#   symmetric    masquerade random: a random external port for every new flow, so a
#                different mapping for every destination (endpoint-dependent); same filtering
#   udp-blocked  eim, plus a drop of every UDP packet from the LAN except to port 53
# IPv6 goes through the same rules (an inet table): the LAN has ULA addresses masqueraded to
# the router's 2001:db8:ffff:: address, except for `none`.
nat_router() {
	local kind=$1 name=$2 n ns wan lan a4 a6 l4 l6 len4 masq=""
	case $kind in
	none | eim | udp-blocked) ;;
	symmetric) masq=" random" ;;
	*) note "nat_router: unknown kind $kind"; return 1 ;;
	esac
	[ -z "${NAT_NS[$name]:-}" ] || { note "nat_router: $name exists"; return 1; }
	n=$((NAT_ROUTER_N + 1))
	[ "$n" -le "$NAT_ROUTERS_MAX" ] || { note "nat_router: $NAT_ROUTERS_MAX routers at most"; return 1; }
	NAT_ROUTER_N=$n
	ns="rt-$name-$E2E_ID"
	wan="wan-$E2E_ID"
	lan="lan-$E2E_ID"
	a4=203.0.113.$((10 + n))
	a6=2001:db8:ffff::$((10 + n))
	ns_add "$ns" || return 1
	nat_wan_link "$ns" "$wan" "r$n" "$a4" "$a6" || return 1
	if [ "$kind" = none ]; then
		l4=198.18.$n.1
		len4=24
		l6=2001:db8:$n::1
		ip -n "$NAT_WAN_NS" route add "198.18.$n.0/24" via "$a4"
		ip -n "$NAT_WAN_NS" -6 route add "2001:db8:$n::/64" via "$a6"
	else
		l4=10.$n.0.1
		len4=24
		l6=fd00:0:0:$n::1
	fi
	ip -n "$ns" link add "$lan" address "$(printf '02:00:c6:12:%02x:01' "$n")" type bridge
	ip -n "$ns" addr add "$l4/$len4" dev "$lan"
	ip -n "$ns" addr add "$l6/64" dev "$lan" nodad
	ip -n "$ns" link set "$lan" up
	nat_sysctl "$ns" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	if [ "$kind" != none ]; then
		nat_nft "$ns" "$kind" "$wan" "$lan" "$masq" || return 1
	fi
	NAT_NS[$name]=$ns
	NAT_KIND[$name]=$kind
	NAT_IDX[$name]=$n
	NAT_IF[$name]=$wan
	NAT_PUB4[$name]=$a4
	NAT_PUB6[$name]=$a6
	NAT_ADDR4[$name]=$l4
	NAT_ADDR6[$name]=$l6
	NAT_NHOSTS[$name]=0
}

# nat_nft NS KIND WAN LAN MASQ_FLAGS: the router's ruleset (one inet table, IPv4 and IPv6).
# The input chain drops new flows from the wan: besides being what home routers do, an
# unsolicited packet accepted there would leave a conntrack entry on the router's address and
# port that makes the next outgoing mapping of that port pick another port.
nat_nft() {
	local ns=$1 kind=$2 wan=$3 lan=$4 masq=$5 block=""
	[ "$kind" != udp-blocked ] ||
		block="iifname \"$lan\" meta l4proto udp udp dport != 53 counter drop"
	ip netns exec "$ns" nft -f - <<EOF
table inet wice_nat {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "$wan" ct state established,related accept
		iifname "$wan" meta l4proto { icmp, ipv6-icmp } accept
		iifname "$wan" counter drop
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		$block
		ct state established,related accept
		iifname "$wan" meta l4proto { icmp, ipv6-icmp } accept
		iifname "$wan" counter drop
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "$wan" masquerade$masq
	}
}
EOF
}

# nat_wait_gateway NS ADDR: until NS gets an echo reply from its router's ADDR (10 s), so that
# nobody starts on a LAN port that does not forward yet.
nat_wait_gateway() {
	local t0 deadline
	t0=$(now_ms)
	deadline=$((t0 + 10000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		if ip netns exec "$1" ping -c 1 -W 0.2 -q "$2" >/dev/null 2>&1; then
			[ $(($(now_ms) - t0)) -lt 1000 ] ||
				note "$1: router $2 answered after $(($(now_ms) - t0)) ms"
			return 0
		fi
	done
	return 1
}

# nat_host NAME ROUTER: a host namespace (h-NAME-E2E_ID) on ROUTER's LAN: interface
# eth-E2E_ID, the LAN's next free address, default routes via the router.
nat_host() {
	local name=$1 router=$2 rns ns k n ifc peer a4 a6
	rns=${NAT_NS[$router]:-}
	if [ -z "$rns" ] || [ -z "${NAT_KIND[$router]:-}" ]; then
		note "nat_host: no router $router"
		return 1
	fi
	[ -z "${NAT_NS[$name]:-}" ] || { note "nat_host: $name exists"; return 1; }
	n=${NAT_IDX[$router]}
	k=$((NAT_NHOSTS[$router] + 1))
	if [ "${NAT_KIND[$router]}" = none ]; then
		[ "$k" -le 200 ] || { note "nat_host: LAN of $router is full"; return 1; }
		a4=198.18.$n.$((1 + k))
		a6=2001:db8:$n::$((1 + k))
	else
		[ "$k" -le 200 ] || { note "nat_host: LAN of $router is full"; return 1; }
		a4=10.$n.0.$((1 + k))
		a6=fd00:0:0:$n::$((1 + k))
	fi
	NAT_NHOSTS[$router]=$k
	ns="h-$name-$E2E_ID"
	ifc="eth-$E2E_ID"
	peer="l${n}h$k-$E2E_ID"
	ns_add "$ns" || return 1
	ip link add "$ifc" netns "$ns" type veth peer name "$peer" netns "$rns"
	ip -n "$rns" link set "$peer" master "lan-$E2E_ID" up
	ip -n "$ns" addr add "$a4/24" dev "$ifc"
	ip -n "$ns" addr add "$a6/64" dev "$ifc" nodad
	ip -n "$ns" link set "$ifc" up
	ip -n "$ns" route add default via "${NAT_ADDR4[$router]}"
	ip -n "$ns" -6 route add default via "${NAT_ADDR6[$router]}"
	nat_wait_gateway "$ns" "${NAT_ADDR4[$router]}" || note "nat_host: $name cannot reach its router"
	NAT_NS[$name]=$ns
	NAT_IF[$name]=$ifc
	NAT_ROUTER[$name]=$router
	NAT_ADDR4[$name]=$a4
	NAT_ADDR6[$name]=$a6
	if [ "${NAT_KIND[$router]}" = none ]; then
		NAT_PUB4[$name]=$a4
		NAT_PUB6[$name]=$a6
	else
		NAT_PUB4[$name]=${NAT_PUB4[$router]}
		NAT_PUB6[$name]=${NAT_PUB6[$router]}
	fi
}

# nat_lan ROUTER KIND HOST... : a router of KIND and hosts on its LAN (they reach each other
# directly on the LAN bridge: issue 4's case 1 with two hosts).
nat_lan() {
	local router=$1 kind=$2 h
	shift 2
	nat_router "$kind" "$router" || return 1
	for h in "$@"; do
		nat_host "$h" "$router" || return 1
	done
}

# nat_flush ROUTER: delete every conntrack entry in the router's namespace, which drops its
# NAT mappings mid-session (what `conntrack -F` does, through ctnetlink, so the conntrack
# package is not needed). The next outgoing packet of a flow gets a new mapping: a new random
# port behind `symmetric`; behind `eim` the same port again if it is free, but inbound packets
# on the old mapping are dropped until the host sends again.
nat_flush() {
	ip netns exec "$(nat_ns "$1")" "$PYTHON" -c '
import socket, struct, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
s.bind((0, 0))
for seq, fam in enumerate((socket.AF_INET, socket.AF_INET6), 1):
    # nlmsghdr + nfgenmsg: IPCTNL_MSG_CT_DELETE (subsys 1, msg 2) without a tuple = flush
    s.send(struct.pack("=LHHLLBBH", 20, (1 << 8) | 2, 1 | 4, seq, 0, fam, 0, 0))
    err = struct.unpack("=i", s.recv(4096)[16:20])[0]
    if err:
        sys.exit("conntrack flush: error %d" % err)
'
}

# nat_conntrack_count NAME: how many conntrack entries NAME's namespace holds.
nat_conntrack_count() {
	ip netns exec "$(nat_ns "$1")" cat /proc/sys/net/netfilter/nf_conntrack_count
}

# nat_bg NAME CMD [ARGS...]: run CMD in NAME's namespace in the background, recorded in E2E_BG
# (stopped at exit). Sets NAT_BG_PID.
nat_bg() {
	local ns
	ns=$(nat_ns "$1")
	shift
	ip netns exec "$ns" "$@" &
	NAT_BG_PID=$!
	# shellcheck disable=SC2004 # E2E_BG is associative (lib.sh)
	E2E_BG[$NAT_BG_PID]=1
}

# nat_wait PID: wait for a process started by nat_bg, drop it from E2E_BG, return its status.
nat_wait() {
	local rc=0
	wait "$1" || rc=$?
	unset "E2E_BG[$1]"
	return "$rc"
}

# ---- STUN and UDP probes (python3, standard library) -----------------------------------------

# nat_stun NAME [-t] [-b LOCAL_PORT] [-w SECONDS] SERVER PORT [SERVER PORT...]
# A STUN binding request (RFC 5389) from NAME's namespace to each server in turn, all from one
# socket per address family bound to LOCAL_PORT (default: any), over UDP (retransmitted every 200 ms) or TCP (-t,
# a new connection per server from the same port). Prints, per server, the mapped address
# "ADDR:PORT" (IPv6 as "[ADDR]:PORT") or "-" if no answer came within SECONDS (default 2).
# Fails unless every server answered.
nat_stun() {
	local ns
	ns=$(nat_ns "$1")
	shift
	ip netns exec "$ns" "$PYTHON" -c "$NAT_PY_STUN" "$@"
}
NAT_PY_STUN=$(
	cat <<'EOF'
import os, socket, struct, sys, time
args = sys.argv[1:]
tcp, lport, wait = False, 0, 2.0
while args and args[0].startswith("-"):
    o = args.pop(0)
    if o == "-t": tcp = True
    elif o == "-b": lport = int(args.pop(0))
    elif o == "-w": wait = float(args.pop(0))
    else: sys.exit("nat_stun: unknown option " + o)
servers = [(args[i], int(args[i + 1])) for i in range(0, len(args), 2)]
COOKIE = 0x2112A442

def mapped(msg, tid):
    if len(msg) < 20: return None
    typ, ln, cookie = struct.unpack("!HHI", msg[:8])
    if typ != 0x0101 or cookie != COOKIE or msg[8:20] != tid: return None
    i, end, found = 20, 20 + ln, None
    while i + 4 <= min(end, len(msg)):
        at, al = struct.unpack("!HH", msg[i:i + 4])
        v = msg[i + 4:i + 4 + al]
        if at in (0x0020, 0x0001) and len(v) >= 8:
            fam, port = v[1], struct.unpack("!H", v[2:4])[0]
            raw = v[4:8] if fam == 1 else v[4:20]
            if at == 0x0020:
                port ^= COOKIE >> 16
                key = struct.pack("!I", COOKIE) + tid
                raw = bytes(b ^ key[j] for j, b in enumerate(raw))
            a = socket.inet_ntop(socket.AF_INET if fam == 1 else socket.AF_INET6, raw)
            r = "%s:%d" % (a, port) if fam == 1 else "[%s]:%d" % (a, port)
            if at == 0x0020 or found is None: found = r
        i += 4 + al + (-al % 4)
    return found

def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET

def ask(sock, host, port):
    tid = os.urandom(12)
    req = struct.pack("!HHI", 1, 0, COOKIE) + tid
    deadline = time.monotonic() + wait
    if tcp:
        sock.settimeout(wait)
        sock.connect((host, port))
        sock.sendall(req)
        buf = b""
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            d = sock.recv(2048)
            if not d: break
            buf += d
            if len(buf) >= 20 and len(buf) >= 20 + struct.unpack("!H", buf[2:4])[0]:
                return mapped(buf, tid)
        return None
    while time.monotonic() < deadline:
        sock.sendto(req, (host, port))
        until = min(deadline, time.monotonic() + 0.2)
        while time.monotonic() < until:
            sock.settimeout(max(0.01, until - time.monotonic()))
            try:
                d, src = sock.recvfrom(2048)
            except socket.timeout:
                break
            m = mapped(d, tid)
            if m: return m
    return None

ok, usocks = True, {}
for host, port in servers:
    fam = family(host)
    r = None
    try:
        if tcp:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", lport))
            r = ask(s, host, port)
            s.close()
        else:
            if fam not in usocks:
                usocks[fam] = socket.socket(fam, socket.SOCK_DGRAM)
                usocks[fam].bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", lport))
            r = ask(usocks[fam], host, port)
    except OSError as e:
        print("nat_stun: %s:%d: %s" % (host, port, e), file=sys.stderr)
    print(r or "-")
    ok = ok and r is not None
sys.exit(0 if ok else 1)
EOF
)

# nat_udp NAME MODE LOCAL_PORT PEER_ADDR PEER_PORT [SECONDS]: UDP between two hosts by hand,
# from LOCAL_PORT in NAME's namespace, for up to SECONDS (default 4). Prints "received from
# PEER" or "nothing from PEER"; succeeds if a datagram came from PEER_ADDR:PEER_PORT (send:
# always). MODE:
#   punch  hole punching: send to the peer every 100 ms; once the peer is heard, send five
#          more (so it hears us too) and stop. Run both ends at once (nat_bg), each aimed at
#          the other's mapped address (nat_stun from the same LOCAL_PORT just before).
#   send   send every 100 ms for SECONDS, listen to nothing
#   recv   send nothing, wait for the peer's first datagram
nat_udp() {
	local ns
	ns=$(nat_ns "$1")
	shift
	ip netns exec "$ns" "$PYTHON" -c "$NAT_PY_UDP" "$@"
}

# nat_udp_bg NAME MODE ...: nat_udp in the background (redirect its output to a file); sets
# NAT_BG_PID, to collect with nat_wait.
nat_udp_bg() {
	local name=$1
	shift
	nat_bg "$name" "$PYTHON" -c "$NAT_PY_UDP" "$@"
}
NAT_PY_UDP=$(
	cat <<'EOF'
import socket, sys, time
mode, lport, host, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
secs = float(sys.argv[5]) if len(sys.argv) > 5 else 4.0
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", lport))
peer = socket.getaddrinfo(host, port, fam, socket.SOCK_DGRAM)[0][4][:2]
deadline, got, extra = time.monotonic() + secs, False, 5
while time.monotonic() < deadline and extra > 0:
    if mode != "recv":
        try:
            s.sendto(b"wice-nat-udp", peer)
        except OSError:
            pass
    if got: extra -= 1
    until = time.monotonic() + 0.1
    while time.monotonic() < until:
        s.settimeout(max(0.005, until - time.monotonic()))
        try:
            d, src = s.recvfrom(2048)
        except (socket.timeout, OSError):
            continue
        if src[:2] == peer and d == b"wice-nat-udp" and not got:
            got = True
            if mode == "recv": extra = 0
fmt = "[%s]:%d" if fam == socket.AF_INET6 else "%s:%d"
print(("received from " if got else "nothing from ") + fmt % (host, port))
sys.exit(0 if got or mode == "send" else 1)
EOF
)

# nat_split ADDR:PORT -> "ADDR PORT" (IPv6 brackets removed).
nat_split() {
	local a=${1%:*} p=${1##*:}
	a=${a#[}
	echo "${a%]} $p"
}

# ---- the relay: coturn -----------------------------------------------------------------------

# nat_relay: a wan host "relay" (203.0.113.2 and .3, 2001:db8:ffff::2 and ::3) running two
# turnservers in the foreground, by PID (NAT_TURN_PID, NAT_REST_PID, in E2E_BG), each with a
# config file and a log in $E2E_TMP/turn/, and a self-signed certificate (cert.pem, key.pem,
# CN and subjectAltName relay.wice.test and the two .2 addresses) for TLS and DTLS. coturn
# cannot mix fixed users with the shared secret (the secret overrides them), hence two:
#   main  long-term credentials NAT_TURN_USER:NAT_TURN_PASS (user:pass), realm wice.test;
#         on all four addresses: STUN/TURN on UDP and TCP 3478, the RFC 5780 alternate port
#         3479 (STUN only), TLS (TCP) and DTLS (UDP) on 5349 (and 5350); relayed ports
#         49152-57343
#   rest  TURN REST credentials from the secret NAT_TURN_SECRET (nat_turn_rest_cred), same
#         realm; on 203.0.113.2 and 2001:db8:ffff::2: UDP and TCP 3488, TLS and DTLS 5359;
#         relayed ports 57344-65535
# Relayed addresses are the relay's own wan addresses. Returns once both answer (10 s at most).
nat_relay() {
	local d ns
	[ -z "$NAT_RELAY_NS" ] || { note "nat_relay: already running"; return 1; }
	nat_wan_host relay "$NAT_RELAY4" "$NAT_RELAY6" || return 1
	ns=$(nat_ns relay)
	ip -n "$ns" addr add "$NAT_RELAY4B/24" dev "${NAT_IF[relay]}"
	ip -n "$ns" addr add "$NAT_RELAY6B/64" dev "${NAT_IF[relay]}" nodad
	NAT_RELAY_NS=$ns
	d="$E2E_TMP/turn"
	NAT_TURN_DIR=$d
	mkdir -p "$d"
	NAT_TURN_SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	if ! openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=relay.wice.test" \
		-addext "subjectAltName=DNS:relay.wice.test,IP:$NAT_RELAY4,IP:$NAT_RELAY6" \
		-keyout "$d/key.pem" -out "$d/cert.pem" >"$d/openssl.log" 2>&1; then
		note "nat_relay: openssl failed:"
		sed 's/^/#   | /' "$d/openssl.log"
		return 1
	fi
	nat_turnserver main "$NAT_STUN_PORT" "$NAT_TLS_PORT" 49152 57343 \
		"$NAT_RELAY4" "$NAT_RELAY4B" "$NAT_RELAY6" "$NAT_RELAY6B" -- \
		lt-cred-mech "user=$NAT_TURN_USER:$NAT_TURN_PASS" || return 1
	NAT_TURN_PID=$NAT_BG_PID
	nat_turnserver rest "$NAT_REST_PORT" "$NAT_REST_TLS_PORT" 57344 65535 \
		"$NAT_RELAY4" "$NAT_RELAY6" -- \
		use-auth-secret "static-auth-secret=$NAT_TURN_SECRET" || return 1
	NAT_REST_PID=$NAT_BG_PID
}

# nat_turnserver TAG PORT TLS_PORT MIN_PORT MAX_PORT LISTEN_ADDR... -- CONFIG_LINE...
# One turnserver in the relay's namespace with $E2E_TMP/turn/TAG.conf and TAG.log; waits until
# it answers STUN on every listening address and listens on TLS_PORT. Sets NAT_BG_PID.
nat_turnserver() {
	local tag=$1 port=$2 tls=$3 pmin=$4 pmax=$5 d=$NAT_TURN_DIR a line deadline probe=()
	shift 5
	{
		while [ $# -gt 0 ] && [ "$1" != -- ]; do
			echo "listening-ip=$1"
			probe+=("$1" "$port")
			shift
		done
		[ $# -eq 0 ] || shift
		echo "relay-ip=$NAT_RELAY4"
		echo "relay-ip=$NAT_RELAY6"
		echo "listening-port=$port"
		echo "tls-listening-port=$tls"
		echo "min-port=$pmin"
		echo "max-port=$pmax"
		echo "realm=$NAT_TURN_REALM"
		echo "fingerprint"
		for line in "$@"; do
			echo "$line"
		done
		echo "cert=$d/cert.pem"
		echo "pkey=$d/key.pem"
		echo "userdb=$d/$tag.db"
		echo "pidfile=$d/$tag.pid"
		echo "log-file=$d/$tag.log"
		echo "simple-log"
		echo "no-stdout-log"
		echo "no-cli"
		echo "no-multicast-peers"
	} >"$d/$tag.conf"
	nat_bg relay turnserver -c "$d/$tag.conf" >"$d/$tag.stdout" 2>&1 </dev/null
	deadline=$(($(now_ms) + 10000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		if ! alive "$NAT_BG_PID"; then
			note "nat_relay: turnserver $tag exited; its log:"
			tail -n 20 "$d/$tag.log" 2>/dev/null | sed 's/^/#   | /'
			return 1
		fi
		if nat_stun wan -w 0.3 "${probe[@]}" >/dev/null 2>&1 &&
			[ -n "$(ip netns exec "$NAT_RELAY_NS" ss -Hltn "sport = :$tls")" ]; then
			return 0
		fi
		sleep 0.1
	done
	note "nat_relay: turnserver $tag not answering within 10 s"
	return 1
}

# nat_turn_peer NAME [PORT]: turnutils_peer (a UDP echo server, the default peer of
# turnutils_uclient) on a wan host NAME, listening on its address and PORT (default 3480).
nat_turn_peer() {
	nat_bg "$1" turnutils_peer -L "${NAT_ADDR4[$1]}" -L "${NAT_ADDR6[$1]}" -p "${2:-3480}" \
		>"$E2E_TMP/turn-peer-$1.log" 2>&1 </dev/null
}

# nat_turn_rest_cred [NAME [TTL]]: TURN REST credentials for the relay's secret (coturn's
# use-auth-secret): username "<expiry unix time>:<NAME>" (default name wice, TTL 3600 s),
# password base64(HMAC-SHA1(secret, username)). Prints "USERNAME PASSWORD".
nat_turn_rest_cred() {
	local user pass
	user="$(($(date +%s) + ${2:-3600})):${1:-wice}"
	pass=$(printf '%s' "$user" | openssl dgst -sha1 -hmac "$NAT_TURN_SECRET" -binary | base64)
	echo "$user $pass"
}
