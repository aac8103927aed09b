#!/bin/bash
# `wice daemon` end to end, issue 4 case 5: recovery. Two hosts, each behind its own
# endpoint-independent NAT, a daemon beside each, the real `wice signal` and coturn.
#   flush   the tunnel is up; both NATs forget every mapping (conntrack flush): the tunnel
#           recovers by itself (ping again within a bound) and the daemons' logs and status
#           show the peer connected again
#   signal  the tunnel is up; `wice signal` is killed: traffic continues (it needs no
#           signaling once connected); the signal server starts again on the same port, an
#           ICE restart is forced (SIGUSR1 to one daemon): its new credentials reach the other
#           daemon through the restarted server (the backends reconnected and resubscribed),
#           and the tunnel still carries traffic
#
# Usage: tests/e2e/test_daemon_recovery.sh [CASE...]   (as root; default both, about 30 s)
# Env:   WICE (binary), E2E_KEEP=1, E2E_BYTES (TCP transfer size, default 1 MB here),
#        RECOVERY_BOUND_S (how long the tunnel may take to recover, default 40)
set -eu

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/nat.sh
. "$(dirname "$0")/nat.sh"
# shellcheck source=SCRIPTDIR/daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"

for cmd in turnserver openssl nft wg nc "$PYTHON"; do
	if ! command -v "$cmd" >/dev/null 2>&1; then
		echo "not ok - test_daemon_recovery: $cmd not installed (scripts/deps.sh)"
		exit 1
	fi
done
: "${E2E_BYTES:=1000000}"
: "${RECOVERY_BOUND_S:=40}"
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(flush signal)

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

# setup NAME: hosts NAMEa and NAMEb behind eim routers, interfaces, daemons, first ping.
CASE_N=0
setup() {
	local name=$1 h n=0 a b
	CASE_N=$((CASE_N + 1))
	a="${name}a"
	b="${name}b"
	for h in "$a" "$b"; do
		n=$((n + 1))
		nat_router eim "r$h"
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
	local a=flsa b=flsb ms
	if ! setup fls; then
		fail "flush: tunnel up before the flush"
		return
	fi
	pass "flush: tunnel up before the flush"
	check "flush: status on $a before" status_connected "$a"
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
	note "$a: $(grep -cE 'ICE restart' "$E2E_TMP/daemon-$a.log" || true) ICE restart(s)," \
		"$(grep -cE ' -> (failed|connected)' "$E2E_TMP/daemon-$a.log" || true) state changes to failed/connected"
	teardown fls
}

case_signal() {
	local a=siga b=sigb ms n c
	if ! setup sig; then
		fail "signal: tunnel up before the restart"
		return
	fi
	pass "signal: tunnel up before the restart"
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
	teardown sig
}

for c in "${CASES[@]}"; do
	case $c in
	flush) case_flush ;;
	signal) case_signal ;;
	*) fail "unknown case $c" ;;
	esac
done

e2e_summary
