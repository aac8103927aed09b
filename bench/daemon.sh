#!/bin/bash
# `wice daemon` benchmark (not a test; issue 4): in the namespace internet of tests/e2e/nat.sh,
# with coturn and `wice signal --ws` on the relay, for the cases
#   1 lan        both hosts on one LAN (router kind none)
#   2 eim        each host behind its own endpoint-independent NAT (direct path expected)
#   3 symmetric  both behind symmetric NATs, TURN over UDP (relayed path expected)
# it measures
#   - the time from starting both daemons to the first ping reply through the tunnel: fresh
#     `wice wg-userspace` interfaces configured by wg without endpoints, fresh keys, fresh
#     daemons and flushed NAT mappings every run; REPS runs per case, interleaved across the
#     cases (lan, eim, symmetric, lan, ...); the topologies are built once;
#   - iperf3 TCP throughput (TPUT_REPS interleaved runs of DURATION s each) through
#       (a) the daemon's path in case 2 (direct),
#       (b) the same kind of wice interfaces between the same two case-2 hosts with each
#           endpoint set by hand to the other's NAT public address and port (no daemon; both
#           ends send keepalives, so the two port-preserving NATs open by hole punching),
#       (c) the daemon's path in case 3 (relayed through coturn).
# Prints a Markdown block for BENCHMARKS.md with the command line that reproduces it.
#
# Usage: bench/daemon.sh            (as root)
# Env:   REPS (first-ping runs per case, default 5), TPUT_REPS (iperf3 runs per path, default 3),
#        DURATION (seconds per iperf3 run, default 10), WICE (default build/wice), E2E_KEEP=1,
#        CASES (default "lan eim symmetric": the cases built and measured; e.g. CASES=symmetric
#        REPS=0 measures the relayed path's throughput alone; the hand-set pair needs eim)
set -eu

WICE=${WICE:-"$(dirname "$0")/../build/wice"}
WICE=$(realpath -m "$WICE")
REPS=${REPS:-5}
TPUT_REPS=${TPUT_REPS:-3}
DURATION=${DURATION:-10}
# shellcheck source=SCRIPTDIR/../tests/e2e/lib.sh
. "$(dirname "$0")/../tests/e2e/lib.sh"
# shellcheck source=SCRIPTDIR/../tests/e2e/nat.sh
. "$(dirname "$0")/../tests/e2e/nat.sh"

for cmd in turnserver openssl nft wg iperf3 ping "$PYTHON"; do
	if ! command -v "$cmd" >/dev/null 2>&1; then
		echo "bench: $cmd not installed (scripts/deps.sh)" >&2
		exit 1
	fi
done
if [ ! -x "$WICE" ]; then
	echo "bench: $WICE does not exist: build it first (make build)" >&2
	exit 1
fi

IPERF_PORT=5201
SIG_PORT=8088

log() { echo "$*" >&2; }

median() {
	sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) print "n/a"
		else if (NR % 2) print v[(NR + 1) / 2]
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

stat_of() { # stat_of FILE median|min|max|runs -> the figure, or n/a
	local f="$E2E_TMP/$1"
	[ -s "$f" ] || { echo n/a; return; }
	case $2 in
	median) median <"$f" ;;
	min) sort -n "$f" | head -1 ;;
	max) sort -n "$f" | tail -1 ;;
	runs) paste -sd/ "$f" ;;
	count) wc -l <"$f" | tr -d ' ' ;;
	esac
}

ratio() {
	case "$1$2" in
	*n/a*) echo n/a ;;
	*) awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }' ;;
	esac
}

LOAD0=$(cut -d" " -f1-3 /proc/loadavg)
T_BENCH=$(date +%s)
e2e_init
wice_snapshot
BACKEND="ws://$NAT_RELAY4:$SIG_PORT/"
STUN="stun:$NAT_RELAY4:$NAT_STUN_PORT"
TURN_UDP="turn:$NAT_TURN_USER:$NAT_TURN_PASS@$NAT_RELAY4:$NAT_STUN_PORT?transport=udp"

# ---- the topology: one wan, relay and signal server; two hosts per case ----------------------
nat_wan
nat_relay || { log "bench: coturn on the relay failed"; exit 1; }
nat_bg relay "$WICE" signal --ws "0.0.0.0:$SIG_PORT" >"$E2E_TMP/signal.log" 2>&1 </dev/null
wait_listen "$(nat_ns relay)" "$SIG_PORT" || { log "bench: wice signal does not listen"; exit 1; }

read -ra CASES <<<"${CASES:-lan eim symmetric}"
in_cases() { [[ " ${CASES[*]} " == *" $1 "* ]]; }
declare -A KIND=([lan]=none [eim]=eim [symmetric]=symmetric)
declare -A NUM=([lan]=1 [eim]=2 [symmetric]=3)
declare -A ICE=([lan]=$STUN [eim]=$STUN [symmetric]=$TURN_UDP)
declare -A PAIR  # case -> the selected pair of the last run, as `wice status --json` reports it
for c in "${CASES[@]}"; do
	n=${NUM[$c]}
	if [ "${KIND[$c]}" = none ]; then
		nat_lan "r${n}" none "h${n}a" "h${n}b"
	else
		nat_router "${KIND[$c]}" "r${n}a" && nat_host "h${n}a" "r${n}a"
		nat_router "${KIND[$c]}" "r${n}b" && nat_host "h${n}b" "r${n}b"
	fi
done

# flush_case CASE: drop the case's NAT mappings, so every run starts from empty routers.
flush_case() {
	local n=${NUM[$1]}
	[ "${KIND[$1]}" != none ] || return 0
	nat_flush "r${n}a" && nat_flush "r${n}b"
}

# ---- one run: interfaces, daemons, first ping ------------------------------------------------
declare -A UP_IF UP_DPID # case -> "IF1 IF2", "PID1 PID2"

# pair_up CASE TAG NET [RECORD]: fresh keys, fresh interfaces d<TAG>a/b (tunnel NET.1 and
# NET.2), configured without endpoints; then both daemons. With RECORD (default 1), appends the
# milliseconds from starting the daemons to the first ping reply to $E2E_TMP/CASE.ping (and to
# the endpoints being set to CASE.ep). Leaves everything up (pair_down).
pair_up() {
	local c=$1 tag=$2 net=$3 rec=${4:-1} n=${NUM[$1]} h1 h2 i1 i2 ns1 ns2 p1 p2 t0 ms deadline e1 e2 ep=""
	h1="h${n}a"
	h2="h${n}b"
	ns1=$(nat_ns "$h1")
	ns2=$(nat_ns "$h2")
	i1="d${tag}a$E2E_ID"
	i2="d${tag}b$E2E_ID"
	key_new "$i1"
	key_new "$i2"
	UP_IF[$c]="$i1 $i2"
	if ! { wg_start wice "$ns1" "$i1" && wg_start wice "$ns2" "$i2" &&
		wg_conf "$ns1" "$i1" "$(key_file "$i1")" 51820 "$(key_pub "$i2")" "$net.2/32" &&
		wg_conf "$ns2" "$i2" "$(key_file "$i2")" 51820 "$(key_pub "$i1")" "$net.1/32" &&
		link_up "$ns1" "$i1" "$net.1/24" && link_up "$ns2" "$i2" "$net.2/24"; }; then
		log "  $c run $tag: interfaces failed"
		return 1
	fi
	flush_case "$c"

	t0=$(now_ms)
	nat_bg "$h1" "$WICE" daemon --backend "$BACKEND" --ice-server "${ICE[$c]}" \
		--socket "$E2E_TMP/$i1.sock" --log-level info "$i1" >"$E2E_TMP/daemon-$i1.log" 2>&1 </dev/null
	p1=$NAT_BG_PID
	nat_bg "$h2" "$WICE" daemon --backend "$BACKEND" --ice-server "${ICE[$c]}" \
		--socket "$E2E_TMP/$i2.sock" --log-level info "$i2" >"$E2E_TMP/daemon-$i2.log" 2>&1 </dev/null
	p2=$NAT_BG_PID
	UP_DPID[$c]="$p1 $p2"
	# As tests/e2e/test_daemon.sh: ping only once both daemons have pointed WireGuard at their
	# proxies (a handshake sent before goes nowhere and WireGuard waits 5 s to retry); that
	# wait is part of the figure.
	deadline=$((t0 + 20000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		e1=$(wg_endpoint "$ns1" "$i1" "$(key_pub "$i2")")
		e2=$(wg_endpoint "$ns2" "$i2" "$(key_pub "$i1")")
		if [[ $e1 == 127.0.0.1:* && $e2 == 127.0.0.1:* ]]; then
			ep=$(($(now_ms) - t0))
			break
		fi
		sleep 0.01
	done
	[ -n "$ep" ] || { log "  $c run $tag: endpoints not set within 20 s ($e1, $e2)"; return 1; }
	# One echo request every 10 ms until the first reply (ping -c 1 -w: wait for one reply).
	if ! ip netns exec "$ns1" ping -c 1 -i 0.01 -w 20 -q "$net.2" >/dev/null 2>&1; then
		log "  $c run $tag: no ping reply within 20 s"
		return 1
	fi
	ms=$(($(now_ms) - t0))
	if [ "$rec" = 1 ]; then
		echo "$ms" >>"$E2E_TMP/$c.ping"
		echo "$ep" >>"$E2E_TMP/$c.ep"
	fi
	PAIR[$c]=$(pair_of "$E2E_TMP/$i1.sock" "$ns1") || PAIR[$c]="unknown"
	log "  $(printf '%-9s' "$c") run $tag: first ping ${ms} ms (endpoints set at ${ep} ms), ${PAIR[$c]}"
}

# pair_down CASE: stop the daemons (SIGTERM) and the interfaces of CASE's current run.
pair_down() {
	local pid i
	for pid in ${UP_DPID[$1]:-}; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in ${UP_DPID[$1]:-}; do
		stop_pid "$pid"
		unset "E2E_BG[$pid]"
	done
	for i in ${UP_IF[$1]:-}; do wg_stop "$i" >/dev/null; done
	UP_DPID[$1]=""
	UP_IF[$1]=""
}

# pair_of SOCKET NS: "direct|relayed LOCALTYPE->REMOTETYPE" from `wice status --json`.
pair_of() {
	ip netns exec "$2" "$WICE" status --socket "$1" --json | "$PYTHON" -c '
import json, sys
for i in json.load(sys.stdin)["interfaces"]:
    for p in i["peers"]:
        sp = p.get("selected_pair") or {}
        print("%s %s->%s" % ("relayed" if p.get("relayed") else "direct",
                             sp.get("local", {}).get("type", "?"),
                             sp.get("remote", {}).get("type", "?")))'
}

log "bench: first ping, ${#CASES[@]} cases x $REPS runs, interleaved"
for rep in $(seq "$REPS"); do
	for c in "${CASES[@]}"; do
		pair_up "$c" "${NUM[$c]}$rep" "10.99.${NUM[$c]}$rep" || true
		pair_down "$c"
	done
done

# ---- throughput --------------------------------------------------------------------------------
# The daemon's paths (one more run each, not counted above), and the hand-set pair on the eim
# hosts: m2a/m2b, listen port 51821, endpoint the other's NAT public address and 51821.
log "bench: throughput, 3 paths x $TPUT_REPS runs x ${DURATION}s, interleaved"
declare -A TADDR TPATH
TPATHS=()
for c in eim symmetric; do
	in_cases "$c" || continue
	n=${NUM[$c]}
	nat_bg "h${n}b" iperf3 -s -p "$IPERF_PORT" >"$E2E_TMP/iperf3-$c.log" 2>&1 </dev/null
	wait_listen "$(nat_ns "h${n}b")" "$IPERF_PORT" || log "  iperf3 server on h${n}b failed"
	if pair_up "$c" "${n}t" "10.98.$n" 0; then
		TADDR[$c]=10.98.$n.2
		TPATH[$c]=${PAIR[$c]}
		TPATHS+=("$c")
	fi
	[ "$c" != eim ] || TPATHS+=(handset)
done
HS_OK=""
HS1="m2a$E2E_ID"
HS2="m2b$E2E_ID"
if in_cases eim && NS1=$(nat_ns h2a) && NS2=$(nat_ns h2b) && key_new "$HS1" && key_new "$HS2" &&
	wg_start wice "$NS1" "$HS1" && wg_start wice "$NS2" "$HS2" &&
	wg_conf "$NS1" "$HS1" "$(key_file "$HS1")" 51821 "$(key_pub "$HS2")" 10.97.2.2/32 \
		"$(nat_pub h2b):51821" &&
	wg_conf "$NS2" "$HS2" "$(key_file "$HS2")" 51821 "$(key_pub "$HS1")" 10.97.2.1/32 \
		"$(nat_pub h2a):51821" &&
	wg_in "$NS1" set "$HS1" peer "$(key_pub "$HS2")" persistent-keepalive 1 &&
	wg_in "$NS2" set "$HS2" peer "$(key_pub "$HS1")" persistent-keepalive 1 &&
	link_up "$NS1" "$HS1" 10.97.2.1/24 && link_up "$NS2" "$HS2" 10.97.2.2/24 &&
	assert_ping "$NS1" 10.97.2.2 20 >/dev/null; then
	HS_OK=1
	TADDR[handset]=10.97.2.2
	TPATH[handset]="$(wg_endpoint "$NS1" "$HS1" "$(key_pub "$HS2")") <-> $(wg_endpoint "$NS2" \
		"$HS2" "$(key_pub "$HS1")")"
	log "  hand-set pair up: endpoints ${TPATH[handset]}"
elif in_cases eim; then
	log "  hand-set pair did not come up: its row is n/a"
fi

# iperf_one PATH: one iperf3 run from the first host to the second; appends Mbit/s.
iperf_one() {
	local p=$1 c=$1 out mbps
	[ "$p" != handset ] || { [ -n "$HS_OK" ] || return 0; c=eim; }
	[ -n "${TADDR[$p]:-}" ] || return 0
	if ! out=$(ip netns exec "$(nat_ns "h${NUM[$c]}a")" timeout $((DURATION + 30)) iperf3 \
		-c "${TADDR[$p]}" -p "$IPERF_PORT" -t "$DURATION" -f m 2>&1); then
		log "  $p: iperf3 failed: $(printf '%s' "$out" | tail -1)"
		return 0
	fi
	mbps=$(printf '%s\n' "$out" | awk '/receiver/ { for (i = 1; i <= NF; i++)
		if ($i == "Mbits/sec") v = $(i - 1) } END { print v }')
	echo "$mbps" >>"$E2E_TMP/$p.mbps"
	log "  $(printf '%-9s' "$p") run $rep: $mbps Mbit/s"
}
for rep in $(seq "$TPUT_REPS"); do
	for p in "${TPATHS[@]}"; do iperf_one "$p"; done
done
for c in eim symmetric; do
	in_cases "$c" || continue
	PAIR_NOW=$(pair_of "$E2E_TMP/d${NUM[$c]}ta$E2E_ID.sock" "$(nat_ns "h${NUM[$c]}a")") ||
		PAIR_NOW=unknown
	[ -z "${TPATH[$c]:-}" ] || [ "$PAIR_NOW" = "${TPATH[$c]}" ] ||
		TPATH[$c]="${TPATH[$c]}, after: $PAIR_NOW"
	pair_down "$c"
done

# ---- the report ------------------------------------------------------------------------------
REPO=$(cd "$(dirname "$0")/.." && pwd)
COMMIT=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
WICE_SUM=$(sha256sum "$WICE" | cut -c1-12)
D=$(stat_of eim.mbps median)
H=$(stat_of handset.mbps median)
R=$(stat_of symmetric.mbps median)
declare -A TARGET=([lan]=500 [eim]=500 [symmetric]=1000)
declare -A LABEL=([lan]="1: one LAN" [eim]="2: two eim NATs" [symmetric]="3: two symmetric NATs, TURN/UDP")

echo
echo "### \`wice daemon\`: time to the first ping, and throughput through its paths"
echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r), commit $COMMIT," \
	"wice sha256 $WICE_SUM, coturn $(dpkg-query -W -f '${Version}' coturn 2>/dev/null || echo '?')," \
	"$(iperf3 --version | head -1 | cut -d' ' -f1-2), load average at start $LOAD0." \
	"Everything (both hosts, NAT routers, coturn, \`wice signal\`) shares the cores."
echo
echo "First ping: ms from starting both daemons (\`wice daemon\` on fresh \`wice wg-userspace\`" \
	"interfaces configured by wg without endpoints, fresh keys, empty NAT tables) to the first" \
	"echo reply through the tunnel (a request every 10 ms once both daemons have set" \
	"WireGuard's endpoint); $REPS runs per case, interleaved across the cases."
echo
echo "| case | path chosen | first ping ms median | min | max | runs | endpoints set ms (median) | target |"
echo "|---|---|---:|---:|---:|---|---:|---|"
for c in "${CASES[@]}"; do
	med=$(stat_of "$c.ping" median)
	verdict=""
	[ "$med" = n/a ] || verdict=$(awk -v m="$med" -v t="${TARGET[$c]}" \
		'BEGIN { print (m <= t) ? " (met)" : " (missed)" }')
	okruns=$(stat_of "$c.ping" count)
	[ "$okruns" != n/a ] || okruns=0
	runs=$(stat_of "$c.ping" runs)
	[ "$okruns" -eq "$REPS" ] || runs="$runs ($okruns of $REPS succeeded)"
	echo "| ${LABEL[$c]} | ${PAIR[$c]:-n/a} | $med | $(stat_of "$c.ping" min) |" \
		"$(stat_of "$c.ping" max) | $runs | $(stat_of "$c.ep" median) |" \
		"≤ ${TARGET[$c]} ms$verdict |"
done
echo
echo "For comparison, nebula's lighthouse needs ~1.4 s to a first packet."
echo
echo "Throughput: iperf3 TCP, 1 stream, ${DURATION} s, median of $TPUT_REPS interleaved runs," \
	"from the first host to the second."
echo
echo "| path | path detail | Mbit/s (median) | runs |"
echo "|---|---|---:|---|"
echo "| case 2, the daemon's direct path | ${TPATH[eim]:-n/a} | $D | $(stat_of eim.mbps runs) |"
echo "| case 2, same hosts and NATs, wice WireGuard with endpoints set by hand to the other's" \
	"NAT public address (no daemon) | ${TPATH[handset]:-n/a} | $H | $(stat_of handset.mbps runs) |"
echo "| case 3, the daemon's path through the TURN relay | ${TPATH[symmetric]:-n/a} | $R |" \
	"$(stat_of symmetric.mbps runs) |"
echo
echo "Direct path / hand-set endpoint = $(ratio "$D" "$H") (target ≥ 0.95)." \
	"On a direct pair the daemon points WireGuard at the remote itself and nftables rewrites" \
	"the ports between WireGuard's socket and the ICE socket (no userspace copy); relayed" \
	"pairs go through the daemon's proxy on 127.0.0.1."
echo
echo "Reproduce (as root): \`CASES=\"${CASES[*]}\" REPS=$REPS TPUT_REPS=$TPUT_REPS DURATION=$DURATION WICE=$WICE_ORIG" \
	"bench/daemon.sh\` (at commit $COMMIT, from $REPO); this run took" \
	"$(($(date +%s) - T_BENCH)) s."
