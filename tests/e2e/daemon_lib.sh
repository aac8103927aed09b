# shellcheck shell=bash
# Shared by the daemon e2e tests (sourced after lib.sh and nat.sh). DAEMON_PID maps a host to
# the PID of its `wice daemon`.

# daemon_stop HOST: SIGTERM, and the daemon must exit by itself, with status 0, within 3 s.
daemon_stop() {
	local pid=${DAEMON_PID[$1]} rc=0 deadline
	kill -TERM "$pid" 2>/dev/null || return 1
	deadline=$(($(now_ms) + 3000))
	while alive "$pid" && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.05; done
	if alive "$pid"; then
		stop_pid "$pid"
		unset "E2E_BG[$pid]"
		note "daemon on $1 ignored SIGTERM for 3 s: killed"
		return 1
	fi
	nat_wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || note "daemon on $1 exited with status $rc"
	[ "$rc" -eq 0 ]
}

# CAP_NET_ADMIN (12) alone, as /proc/PID/status prints a capability set.
CAPS_KEPT=0000000000001000

# caps HOST: every thread of HOST's daemon holds CAP_NET_ADMIN alone (effective, permitted,
# bounding), nothing inheritable or ambient, no_new_privs, and runs under the seccomp filter
# (Seccomp 2: filter mode, one filter).
caps() {
	local pid=${DAEMON_PID[$1]} t n=0 bad=0 line
	[ "$(cat "/proc/$pid/comm")" = wice ] || { note "PID $pid is not wice"; return 1; }
	for t in /proc/"$pid"/task/*/status; do
		n=$((n + 1))
		line=$(awk '/^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):/ { printf "%s%s ", $1, $2 }' "$t")
		[ "$n" -gt 1 ] || note "$1: $line"
		[[ $line == "CapInh:0000000000000000 CapPrm:$CAPS_KEPT CapEff:$CAPS_KEPT CapBnd:$CAPS_KEPT CapAmb:0000000000000000 NoNewPrivs:1 Seccomp:2 Seccomp_filters:1 " ]] ||
			{ note "$t: $line"; bad=1; }
	done
	note "$1: $n thread(s) checked"
	[ "$bad" = 0 ] && grep -q "privileges: kept CAP_NET_ADMIN" "$E2E_TMP/daemon-$1.log" &&
		grep -q "sandbox: seccomp filter loaded" "$E2E_TMP/daemon-$1.log"
}

# daemon_require TEST: the tools every daemon test needs, else one "not ok" line and exit 1.
daemon_require() {
	local cmd
	for cmd in turnserver openssl nft wg nc "$PYTHON"; do
		if ! command -v "$cmd" >/dev/null 2>&1; then
			echo "not ok - $1: $cmd not installed (scripts/deps.sh)"
			exit 1
		fi
	done
}

# daemon_world: the wan, coturn on the relay and `wice signal --ws` there on SIG_PORT (8088);
# sets SIG_PORT, BACKEND and STUN. A failure is one "not ok" line and exit 1.
daemon_world() {
	SIG_PORT=8088
	BACKEND="ws://$NAT_RELAY4:$SIG_PORT/"
	STUN="stun:$NAT_RELAY4:$NAT_STUN_PORT"
	nat_wan
	if ! nat_relay; then
		fail "coturn on the relay"
		exit 1
	fi
	nat_bg relay "$WICE" signal --ws "0.0.0.0:$SIG_PORT" >"$E2E_TMP/signal.log" 2>&1
	wait_listen "$(nat_ns relay)" "$SIG_PORT" || { fail "wice signal listens"; exit 1; }
}
