#!/bin/bash
# `wice daemon` end to end, issue 4 case 6: three peers in a full mesh. Three hosts, each behind
# its own endpoint-independent NAT, each with one userspace WireGuard interface that has the
# two others as peers (keys and allowed IPs only, no endpoint); a daemon beside each, the real
# `wice signal` and coturn on the wan. Every pair of hosts pings and moves a TCP transfer
# through its tunnel, and every daemon's status shows two connected peers.
#
# Usage: tests/e2e/test_daemon_mesh.sh   (as root, about 10 s)
# Env:   WICE (binary), E2E_KEEP=1, E2E_BYTES (TCP transfer size, default 1 MB here)
set -eu

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/nat.sh
. "$(dirname "$0")/nat.sh"
# shellcheck source=SCRIPTDIR/daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"

daemon_require test_daemon_mesh
: "${E2E_BYTES:=1000000}"

e2e_init
wice_snapshot
daemon_world
TURN_UDP="turn:$NAT_TURN_USER:$NAT_TURN_PASS@$NAT_RELAY4:$NAT_STUN_PORT?transport=udp"

HOSTS=(mea meb mec)
declare -A IFACE ADDR DAEMON_PID
n=0
for h in "${HOSTS[@]}"; do
	n=$((n + 1))
	nat_router eim "r$h"
	nat_host "$h" "r$h"
	IFACE[$h]="m$n$E2E_ID"
	ADDR[$h]="10.98.0.$n"
	key_new "$h"
	if ! wg_start wice "$(nat_ns "$h")" "${IFACE[$h]}"; then
		fail "userspace WireGuard interface on $h starts"
		exit 1
	fi
	wg_set_iface "$(nat_ns "$h")" "${IFACE[$h]}" "$(key_file "$h")" 51820
	link_up "$(nat_ns "$h")" "${IFACE[$h]}" "${ADDR[$h]}/24"
done
for h in "${HOSTS[@]}"; do
	for o in "${HOSTS[@]}"; do
		[ "$h" = "$o" ] || wg_set_peer "$(nat_ns "$h")" "${IFACE[$h]}" "$(key_pub "$o")" \
			"${ADDR[$o]}/32"
	done
done

# all_proxies: every host's endpoint for each of its two peers is its daemon's proxy (5 s).
all_proxies() {
	local deadline ep missing
	deadline=$(($(now_ms) + 5000))
	while :; do
		missing=""
		for h in "${HOSTS[@]}"; do
			for o in "${HOSTS[@]}"; do
				[ "$h" != "$o" ] || continue
				ep=$(wg_endpoint "$(nat_ns "$h")" "${IFACE[$h]}" "$(key_pub "$o")")
				[[ $ep == 127.0.0.1:* ]] || missing+=" $h->$o:$ep"
			done
		done
		[ -n "$missing" ] || return 0
		[ "$(now_ms)" -lt "$deadline" ] || break
		sleep 0.02
	done
	note "not a proxy:$missing"
	return 1
}

# status_two HOST: the daemon's status lists two peers, both connected with a selected pair.
status_two() {
	local json
	json=$(ip netns exec "$(nat_ns "$1")" "$WICE" status --socket "$E2E_TMP/$1.sock" --json) ||
		return 1
	echo "$json" >"$E2E_TMP/status-$1.json"
	STATUS_JSON=$json "$PYTHON" -c '
import json, os, sys
peers = [p for i in json.loads(os.environ["STATUS_JSON"])["interfaces"] for p in i["peers"]]
for p in peers:
    sp = p.get("selected_pair") or {}
    l, r = sp.get("local", {}), sp.get("remote", {})
    print("# %s: %s %s:%s -> %s %s:%s, relayed %s" % (p["state"], l.get("type"), l.get("address"),
          l.get("port"), r.get("type"), r.get("address"), r.get("port"), p.get("relayed")))
sys.exit(0 if len(peers) == 2 and all(p["state"] == "connected" and p.get("selected_pair")
                                      for p in peers) else 1)'
}


t0=$(now_ms)
for h in "${HOSTS[@]}"; do
	nat_bg "$h" "$WICE" daemon --backend "$BACKEND" --ice-server "$STUN" \
		--ice-server "$TURN_UDP" --socket "$E2E_TMP/$h.sock" --log-level debug "${IFACE[$h]}" \
		>"$E2E_TMP/daemon-$h.log" 2>&1
	DAEMON_PID[$h]=$NAT_BG_PID
done
check "mesh: all six endpoints are the daemons' proxies" all_proxies

for pair in "mea meb" "meb mec" "mec mea"; do
	read -r a b <<<"$pair"
	if assert_ping "$(nat_ns "$a")" "${ADDR[$b]}" 20; then
		pass "mesh: ping $a -> $b ($(($(now_ms) - t0)) ms after the daemons started)"
	else
		fail "mesh: ping $a -> $b"
	fi
	check "mesh: ping $b -> $a" assert_ping "$(nat_ns "$b")" "${ADDR[$a]}" 10
	check "mesh: TCP transfer $a -> $b" assert_tcp "$(nat_ns "$b")" "${ADDR[$b]}" "$(nat_ns "$a")"
done
for h in "${HOSTS[@]}"; do
	check "mesh: status on $h: two peers connected" status_two "$h"
done
for h in "${HOSTS[@]}"; do
	check "mesh: daemon on $h stops on SIGTERM" daemon_stop "$h"
done
for h in "${HOSTS[@]}"; do wg_stop "${IFACE[$h]}"; done

e2e_summary
