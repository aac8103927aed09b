#!/bin/bash
# `wice daemon` end to end, issue 4 case 5: recovery. Two hosts, each behind its own NAT
# (endpoint-independent unless said), a daemon beside each, the real `wice signal` and coturn.
# Every case asserts what `wice status --json` reports, not only that traffic flows.
#   flush    the tunnel is up; both NATs forget every mapping (conntrack flush): the tunnel
#            recovers by itself (ping again within a bound), and status shows the peer
#            connected and one more recovery, with the outage's length
#   signal   the tunnel is up; `wice signal` is killed: traffic continues (it needs no
#            signaling once connected); the signal server starts again on the same port, an
#            ICE restart is forced (SIGUSR1 to one daemon): its new credentials reach the other
#            daemon through the restarted server (the backends reconnected and resubscribed),
#            the tunnel still carries traffic, and both statuses count the restart, each with
#            its reason ("manual (SIGUSR1)", "remote restart")
#   addr     the tunnel is up; one host's LAN address is replaced by another (and its route):
#            the daemon restarts ICE by itself (status: reason "local address change"), the
#            tunnel carries ping and TCP again; the time to recovery is printed
#   addradd  the tunnel is up; a second LAN address is added to one host while it pings 10 times
#            a second: a new session on the new set of addresses (status: "local address
#            change") while the old one keeps carrying the pings (make before break: at most
#            ADDRADD_LOSS_MAX of them lost; the count is printed)
#   symflush both NATs symmetric (the path is relayed, status says why); both NATs flushed:
#            the TURN clients' mapped ports change, so the allocations are lost; the daemons
#            see WireGuard sending unanswered, replace their sessions (reason "no traffic
#            received"), and the tunnel comes back; the time to recovery is printed
#   silence  one NAT drops WireGuard's data (UDP payload type 4) and passes STUN: ICE's
#            consent checks still pass, WireGuard gets nothing back; the daemon notices from
#            WireGuard's counters and starts a new session (status: "no traffic received",
#            within PEER_LINK_SILENCE_MS, 12 s, and a few seconds); the drop is lifted and the
#            tunnel carries traffic again (status: a recovery)
#   oneway   the tunnel is up; one host sends UDP through it for 13 s to a port the other
#            drops: the only answer is the receiver's WireGuard keepalive after 10 s. The
#            daemon suspects an outage after 2 s and withdraws it at the keepalive (its log
#            says so): status counts no recovery and no restart
#
# Usage: tests/e2e/test_daemon_recovery.sh [CASE...]   (as root; default all, about 60 s)
# Env:   WICE (binary), E2E_KEEP=1, E2E_BYTES (TCP transfer size, default 1 MB here),
#        RECOVERY_BOUND_S (how long the tunnel may take to recover, default 40)
set -eu

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/nat.sh
. "$(dirname "$0")/nat.sh"
# shellcheck source=SCRIPTDIR/daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"

daemon_require test_daemon_recovery
: "${E2E_BYTES:=1000000}"
: "${RECOVERY_BOUND_S:=40}"
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(flush signal addr addradd symflush silence oneway)
ADDRADD_LOSS_MAX=1

e2e_init
wice_snapshot
SIG_PORT=8088
BACKEND="ws://$NAT_RELAY4:$SIG_PORT/"
STUN="stun:$NAT_RELAY4:$NAT_STUN_PORT"
TURN_UDP="turn:$NAT_TURN_USER:$NAT_TURN_PASS@$NAT_RELAY4:$NAT_STUN_PORT?transport=udp"

nat_wan
if ! nat_relay; then
	fail "coturn on the relay"
	exit 1
fi
SIGNAL_PID=""
signal_start() {
	nat_bg relay "$WICE" signal --ws "0.0.0.0:$SIG_PORT" >>"$E2E_TMP/signal.log" 2>&1
	SIGNAL_PID=$NAT_BG_PID
	wait_listen "$(nat_ns relay)" "$SIG_PORT"
}
signal_start || { fail "wice signal listens"; exit 1; }

declare -A DAEMON_PID IFACE ADDR


# status_connected HOST: the one peer is connected with a selected pair (printed).
status_connected() {
	local json
	json=$(ip netns exec "$(nat_ns "$1")" "$WICE" status --socket "$E2E_TMP/$1.sock" --json) ||
		return 1
	STATUS_JSON=$json "$PYTHON" -c '
import json, os, sys
p = [p for i in json.loads(os.environ["STATUS_JSON"])["interfaces"] for p in i["peers"]][0]
sp = p.get("selected_pair") or {}
l, r = sp.get("local", {}), sp.get("remote", {})
print("# %s: %s %s:%s -> %s %s:%s, rx %s tx %s" % (p["state"], l.get("type"), l.get("address"),
      l.get("port"), r.get("type"), r.get("address"), r.get("port"), p["rx_bytes"], p["tx_bytes"]))
sys.exit(0 if p["state"] == "connected" and sp else 1)'
}

# status_get HOST FIELD: FIELD in HOST's `wice status --json`, Python syntax on the one
# interface's dict i and its one peer's dict p, e.g. 'p["recoveries"]'; printed as is.
status_get() {
	local json
	json=$(ip netns exec "$(nat_ns "$1")" "$WICE" status --socket "$E2E_TMP/$1.sock" --json) ||
		return 1
	STATUS_JSON=$json "$PYTHON" -c '
import json, os, sys
i = json.loads(os.environ["STATUS_JSON"])["interfaces"][0]
p = i["peers"][0]
print(eval(sys.argv[1]))' "$2"
}

# wait_status HOST FIELD WANT SECONDS: until status_get HOST FIELD prints WANT.
wait_status() {
	local deadline=$(($(now_ms) + $4 * 1000)) got=""
	while [ "$(now_ms)" -lt "$deadline" ]; do
		got=$(status_get "$1" "$2") && [ "$got" = "$3" ] && return 0
		sleep 0.2
	done
	note "$1: status $2 is \"$got\", not \"$3\" after $4 s"
	return 1
}

# status_table_has HOST REGEX: HOST's `wice status` table (printed) has a line matching REGEX.
status_table_has() {
	local out
	out=$(ip netns exec "$(nat_ns "$1")" "$WICE" status --socket "$E2E_TMP/$1.sock") ||
		return 1
	printf '%s\n' "$out" | sed -n '/^peer:/,$p' | sed 's/^/# /'
	printf '%s\n' "$out" | grep -qE "$2"
}

# status_recovery HOST: the recovery members of HOST's status, printed.
status_recovery() {
	note "$1: $(status_get "$1" '"restarts %d (last: %s), pair changes %d, recoveries %d (last outage %d ms), relayed %s (%s)" % (p["ice_restarts"], p["last_restart_reason"], p["pair_changes"], p["recoveries"], p["last_outage_ms"], p["relayed"], p["relay_reason"])')"
}

# log_count HOST PATTERN: lines of HOST's daemon log matching PATTERN (extended regex).
log_count() { grep -cE "$2" "$E2E_TMP/daemon-$1.log" || true; }

# wait_log HOST PATTERN COUNT SECONDS: until the log has more than COUNT matching lines.
wait_log() {
	local deadline=$(($(now_ms) + $4 * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		[ "$(log_count "$1" "$2")" -gt "$3" ] && return 0
		sleep 0.1
	done
	note "$1: no new \"$2\" in the daemon's log within $4 s"
	return 1
}

# setup NAME [KIND]: hosts NAMEa and NAMEb behind KIND routers (default eim), interfaces,
# daemons, first ping.
CASE_N=0
setup() {
	local name=$1 kind=${2:-eim} h n=0 a b
	CASE_N=$((CASE_N + 1))
	a="${name}a"
	b="${name}b"
	for h in "$a" "$b"; do
		n=$((n + 1))
		nat_router "$kind" "r$h"
		nat_host "$h" "r$h"
		IFACE[$h]="r$CASE_N$n$E2E_ID"
		ADDR[$h]="10.97.$CASE_N.$n"
		key_new "$h"
		wg_start wice "$(nat_ns "$h")" "${IFACE[$h]}" || return 1
	done
	wg_conf "$(nat_ns "$a")" "${IFACE[$a]}" "$(key_file "$a")" 51820 "$(key_pub "$b")" \
		"${ADDR[$b]}/32"
	wg_conf "$(nat_ns "$b")" "${IFACE[$b]}" "$(key_file "$b")" 51820 "$(key_pub "$a")" \
		"${ADDR[$a]}/32"
	link_up "$(nat_ns "$a")" "${IFACE[$a]}" "${ADDR[$a]}/24"
	link_up "$(nat_ns "$b")" "${IFACE[$b]}" "${ADDR[$b]}/24"
	for h in "$a" "$b"; do
		nat_bg "$h" "$WICE" daemon --backend "$BACKEND" --ice-server "$STUN" \
			--ice-server "$TURN_UDP" --socket "$E2E_TMP/$h.sock" --log-level debug \
			"${IFACE[$h]}" >"$E2E_TMP/daemon-$h.log" 2>&1
		DAEMON_PID[$h]=$NAT_BG_PID
	done
	# Wait for the proxies, so that the first ping does not start a handshake into nowhere.
	local deadline=$(($(now_ms) + 5000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		[[ $(wg_endpoint "$(nat_ns "$a")" "${IFACE[$a]}" "$(key_pub "$b")") == 127.0.0.1:* &&
			$(wg_endpoint "$(nat_ns "$b")" "${IFACE[$b]}" "$(key_pub "$a")") == 127.0.0.1:* ]] &&
			break
		sleep 0.02
	done
	assert_ping "$(nat_ns "$a")" "${ADDR[$b]}" 20
}

teardown() {
	local h
	for h in "$1a" "$1b"; do
		check "$1: daemon on $h stops on SIGTERM" daemon_stop "$h"
		wg_stop "${IFACE[$h]}"
	done
}

# ping_until NS ADDR SECONDS: prints the milliseconds until the first reply; false if none.
ping_until() {
	local t0 deadline
	t0=$(now_ms)
	deadline=$((t0 + $3 * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		if ip netns exec "$1" ping -c 1 -W 1 -q "$2" >/dev/null 2>&1; then
			echo $(($(now_ms) - t0))
			return 0
		fi
	done
	return 1
}

case_flush() {
	local a=flsa b=flsb ms rec
	if ! setup fls; then
		fail "flush: tunnel up before the flush"
		return
	fi
	pass "flush: tunnel up before the flush"
	check "flush: status on $a before" status_connected "$a"
	rec=$(status_get "$a" 'p["recoveries"]')
	nat_flush "rflsa"
	nat_flush "rflsb"
	note "both NATs flushed"
	if ms=$(ping_until "$(nat_ns "$a")" "${ADDR[$b]}" "$RECOVERY_BOUND_S"); then
		pass "flush: ping again $ms ms after the flush (bound ${RECOVERY_BOUND_S} s)"
	else
		fail "flush: no ping within ${RECOVERY_BOUND_S} s of the flush"
	fi
	check "flush: TCP transfer after the flush" \
		assert_tcp "$(nat_ns "$b")" "${ADDR[$b]}" "$(nat_ns "$a")"
	check "flush: status on $a after: connected" status_connected "$a"
	check "flush: status on $b after: connected" status_connected "$b"
	# WireGuard's counters are read once a second: the recovery shows within a few.
	check "flush: status on $a reports the recovery (recoveries $rec -> $((rec + 1)))" \
		wait_status "$a" 'p["recoveries"]' "$((rec + 1))" 5
	status_recovery "$a"
	status_recovery "$b"
	teardown fls
}

case_signal() {
	local a=siga b=sigb ms n c ra rb d
	if ! setup sig; then
		fail "signal: tunnel up before the restart"
		return
	fi
	pass "signal: tunnel up before the restart"
	d=$(status_get "$a" 'i["signaling_disconnects"]')
	stop_pid "$SIGNAL_PID"
	nat_wait "$SIGNAL_PID" || true
	note "wice signal (PID $SIGNAL_PID) killed"
	check "signal: ping with the signal server down" \
		assert_ping "$(nat_ns "$a")" "${ADDR[$b]}" 5
	check "signal: TCP transfer with the signal server down" \
		assert_tcp "$(nat_ns "$b")" "${ADDR[$b]}" "$(nat_ns "$a")"
	# Count before the server is back: the reconnect can come at once.
	c=$(log_count "$a" "signaling .* connected")
	check "signal: wice signal starts again on port $SIG_PORT" signal_start
	n=$(log_count "$b" "new remote credentials")
	# The backends reconnect with a jittered backoff: give them the time.
	check "signal: $a's backend reconnects" wait_log "$a" "signaling .* connected" "$c" 15
	check "signal: status on $a reports the lost and restored signaling connection" \
		wait_status "$a" '(i["signaling_connected"], i["signaling_backends"], i["signaling_disconnects"] > '"$d"')' \
		"(1, 1, True)" 5
	ra=$(status_get "$a" 'p["ice_restarts"]')
	rb=$(status_get "$b" 'p["ice_restarts"]')
	kill -USR1 "${DAEMON_PID[$a]}"
	note "SIGUSR1 to $a's daemon: ICE restart"
	check "signal: $b receives $a's new credentials through the restarted server" \
		wait_log "$b" "new remote credentials" "$n" 15
	if ms=$(ping_until "$(nat_ns "$a")" "${ADDR[$b]}" 10); then
		pass "signal: ping after the ICE restart ($ms ms)"
	else
		fail "signal: ping after the ICE restart"
	fi
	check "signal: status on $a: connected" status_connected "$a"
	check "signal: status on $b: connected" status_connected "$b"
	check "signal: status on $a counts the restart ($ra -> $((ra + 1)), manual)" \
		wait_status "$a" '(p["ice_restarts"], p["last_restart_reason"])' \
		"($((ra + 1)), 'manual (SIGUSR1)')" 5
	check "signal: status on $b counts the peer's restart ($rb -> $((rb + 1)))" \
		wait_status "$b" '(p["ice_restarts"], p["last_restart_reason"])' \
		"($((rb + 1)), 'remote restart')" 5
	status_recovery "$a"
	status_recovery "$b"
	teardown sig
}

# A host's uplink address replaced mid-session: the old one deleted (its sockets dead), a new
# one on the same LAN promoted in its place, the default route set again.
case_addr() {
	local a=adra b=adrb ms ns ifc old new ra
	if ! setup adr; then
		fail "addr: tunnel up before the address change"
		return
	fi
	pass "addr: tunnel up before the address change"
	ns=$(nat_ns "$a")
	ifc=${NAT_IF[$a]}
	old=${NAT_ADDR4[$a]}
	new=${old%.*}.$((${old##*.} + 100))
	ra=$(status_get "$a" 'p["ice_restarts"]')
	nat_sysctl "$ns" net.ipv4.conf.all.promote_secondaries=1
	ip -n "$ns" addr add "$new/24" dev "$ifc"
	ip -n "$ns" addr del "$old/24" dev "$ifc"
	ip -n "$ns" route replace default via "${NAT_ADDR4[r$a]}"
	note "$a: LAN address $old replaced by $new"
	if ms=$(ping_until "$ns" "${ADDR[$b]}" "$RECOVERY_BOUND_S"); then
		pass "addr: ping again $ms ms after the address change (bound ${RECOVERY_BOUND_S} s)"
	else
		fail "addr: no ping within ${RECOVERY_BOUND_S} s of the address change"
	fi
	check "addr: TCP transfer after the address change" \
		assert_tcp "$(nat_ns "$b")" "${ADDR[$b]}" "$ns"
	check "addr: status on $a: connected" status_connected "$a"
	check "addr: status on $a: ICE restarted for the local address change" \
		wait_status "$a" '(p["ice_restarts"] > '"$ra"', p["last_restart_reason"])' \
		"(True, 'local address change')" 5
	check "addr: wice status (the table) says so" \
		status_table_has "$a" "ICE restarts: [1-9].*\\(local address change\\)"
	check "addr: the new pair is on the new address" \
		wait_status "$a" 'p["selected_pair"]["local"]["address"] in ("'"$new"'", "'"${NAT_PUB4[$a]}"'")' True 5
	status_recovery "$a"
	status_recovery "$b"
	teardown adr
}

# An address added: the old path still works, and must keep carrying traffic meanwhile.
case_addradd() {
	local a=adda b=addb ns ifc old new ra out sent got
	if ! setup add; then
		fail "addradd: tunnel up before the address is added"
		return
	fi
	pass "addradd: tunnel up before the address is added"
	ns=$(nat_ns "$a")
	ifc=${NAT_IF[$a]}
	old=${NAT_ADDR4[$a]}
	new=${old%.*}.$((${old##*.} + 150))
	ra=$(status_get "$a" 'p["ice_restarts"]')
	ip netns exec "$ns" ping -i 0.1 -c 40 -W 1 "${ADDR[$b]}" >"$E2E_TMP/addradd.ping" 2>&1 &
	sleep 1
	ip -n "$ns" addr add "$new/24" dev "$ifc"
	note "$a: LAN address $new added beside $old, pinging every 0.1 s"
	wait $! || true
	out=$(grep -E "packets transmitted" "$E2E_TMP/addradd.ping" || true)
	sent=$(echo "$out" | awk '{print $1}')
	got=$(echo "$out" | awk '{print $4}')
	note "ping: ${out:-no summary}"
	if [ -n "$sent" ] && [ -n "$got" ] && [ $((sent - got)) -le "$ADDRADD_LOSS_MAX" ]; then
		pass "addradd: $((sent - got)) of $sent pings lost across the new session (at most $ADDRADD_LOSS_MAX)"
	else
		fail "addradd: pings lost across the new session: ${out:-none}"
	fi
	check "addradd: status on $a: ICE restarted for the local address change" \
		wait_status "$a" '(p["ice_restarts"] > '"$ra"', p["last_restart_reason"])' \
		"(True, 'local address change')" 5
	check "addradd: status on $a: connected" status_connected "$a"
	check "addradd: TCP transfer after the new session" \
		assert_tcp "$(nat_ns "$b")" "${ADDR[$b]}" "$ns"
	status_recovery "$a"
	teardown add
}

# Symmetric NATs: a relayed path. Flushing them changes the TURN clients' mapped ports.
case_symflush() {
	local a=syma b=symb ms rec
	if ! setup sym symmetric; then
		fail "symflush: tunnel up before the flush"
		return
	fi
	pass "symflush: tunnel up before the flush"
	check "symflush: status on $a: relayed, and why" \
		wait_status "$a" 'p["relayed"] and "srflx" in p["relay_reason"]' True 5
	status_recovery "$a"
	rec=$(status_get "$a" 'p["recoveries"]')
	nat_flush "rsyma"
	nat_flush "rsymb"
	note "both symmetric NATs flushed"
	if ms=$(ping_until "$(nat_ns "$a")" "${ADDR[$b]}" "$RECOVERY_BOUND_S"); then
		pass "symflush: ping again $ms ms after the flush (bound ${RECOVERY_BOUND_S} s)"
	else
		fail "symflush: no ping within ${RECOVERY_BOUND_S} s of the flush"
	fi
	check "symflush: TCP transfer after the flush" \
		assert_tcp "$(nat_ns "$b")" "${ADDR[$b]}" "$(nat_ns "$a")"
	check "symflush: status on $a: connected" status_connected "$a"
	check "symflush: status on $a reports the recovery (recoveries $rec -> more)" \
		wait_status "$a" 'p["recoveries"] > '"$rec" True 5
	status_recovery "$a"
	status_recovery "$b"
	teardown sym
}

# A path that carries STUN and not WireGuard: only the silence rule can see it.
case_silence() {
	local a=slna b=slnb ns rns r0 t0 deadline ms="" rec
	if ! setup sln; then
		fail "silence: tunnel up before the drop"
		return
	fi
	pass "silence: tunnel up before the drop"
	ns=$(nat_ns "$a")
	rns=$(nat_ns "r$a")
	r0=$(status_get "$a" 'p["ice_restarts"]')
	rec=$(status_get "$a" 'p["recoveries"]')
	# Before the router's own filter (priority 0): WireGuard data (type 4) dropped both ways.
	ip netns exec "$rns" nft -f - <<-EOF
		table inet wice_silence {
			chain forward {
				type filter hook forward priority -10; policy accept;
				meta l4proto udp @th,64,8 4 counter drop
			}
		}
	EOF
	note "r$a drops WireGuard data, passes STUN"
	t0=$(now_ms)
	deadline=$((t0 + (12 + 8) * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		ip netns exec "$ns" ping -c 1 -W 1 -q "${ADDR[$b]}" >/dev/null 2>&1 || true
		if [ "$(status_get "$a" '(p["ice_restarts"] > '"$r0"', p["last_restart_reason"])')" = \
			"(True, 'no traffic received')" ]; then
			ms=$(($(now_ms) - t0))
			break
		fi
	done
	if [ -n "$ms" ]; then
		pass "silence: new session $ms ms after the drop began (status: no traffic received)"
	else
		fail "silence: no restart for \"no traffic received\" within 20 s"
	fi
	ip netns exec "$rns" nft delete table inet wice_silence
	note "the drop is lifted"
	if ms=$(ping_until "$ns" "${ADDR[$b]}" "$RECOVERY_BOUND_S"); then
		pass "silence: ping again $ms ms after the drop was lifted"
	else
		fail "silence: no ping within ${RECOVERY_BOUND_S} s of the drop being lifted"
	fi
	check "silence: status on $a reports the recovery (recoveries $rec -> more)" \
		wait_status "$a" 'p["recoveries"] > '"$rec" True 5
	status_recovery "$a"
	status_recovery "$b"
	teardown sln
}

# A one-way flow: answered by nothing but the receiver's keepalive, and not an outage.
case_oneway() {
	local a=owya b=owyb r0 rec
	if ! setup owy; then
		fail "oneway: tunnel up before the flow"
		return
	fi
	pass "oneway: tunnel up before the flow"
	r0=$(status_get "$a" 'p["ice_restarts"]')
	rec=$(status_get "$a" 'p["recoveries"]')
	ip netns exec "$(nat_ns "$b")" nft -f - <<-EOF
		table inet wice_oneway {
			chain in {
				type filter hook input priority 0;
				iifname "${IFACE[$b]}" udp dport 9 drop
			}
		}
	EOF
	# Past WireGuard's passive keepalive (10 s after the first datagram) by 3 s.
	ip netns exec "$(nat_ns "$a")" "$PYTHON" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + 13
while time.monotonic() < end:
    s.sendto(b"x" * 200, (sys.argv[1], 9))
    time.sleep(0.1)' "${ADDR[$b]}"
	sleep 1.5 # the counters are read once a second
	check "oneway: $a took the keepalive for an answer (log)" grep -q \
		"a keepalive answered after" "$E2E_TMP/daemon-$a.log"
	check "oneway: status on $a: no recovery counted ($rec)" \
		wait_status "$a" 'p["recoveries"]' "$rec" 1
	check "oneway: status on $a: no ICE restart ($r0)" \
		wait_status "$a" 'p["ice_restarts"]' "$r0" 1
	check "oneway: ping through the tunnel after" assert_ping "$(nat_ns "$a")" "${ADDR[$b]}" 5
	status_recovery "$a"
	teardown owy
}

for c in "${CASES[@]}"; do
	case $c in
	flush) case_flush ;;
	signal) case_signal ;;
	addr) case_addr ;;
	addradd) case_addradd ;;
	symflush) case_symflush ;;
	silence) case_silence ;;
	oneway) case_oneway ;;
	*) fail "unknown case $c" ;;
	esac
done

e2e_summary
