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
