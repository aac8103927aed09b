#!/bin/bash
# Throughput benchmark (not a test): iperf3 TCP between two network namespaces over
#   (a) the bare veth, (b) a wice tunnel, (c) a wireguard-go tunnel,
# each run REPS times, interleaved (bare, wice, wireguard-go, bare, ...), medians reported.
# For the tunnels it samples the CPU time of both WireGuard processes (utime+stime from
# /proc/PID/stat over each run, as % of one core) and their peak RSS (VmHWM at the end).
# Prints a Markdown block for BENCHMARKS.md, with the command line that reproduces it.
#
# Usage: bench/throughput.sh            (as root)
# Env:   REPS (default 3), DURATION (seconds per iperf3 run, default 10), STREAMS (iperf3 -P,
#        default 1), WICE (default build/wice), WICE_IMPL (what runs in wice's row: default
#        "wice"; e.g. "wireguard-go" to check the harness before wice exists).
set -eu

WICE=${WICE:-"$(dirname "$0")/../build/wice"}
WICE=$(realpath -m "$WICE")
REPS=${REPS:-3}
DURATION=${DURATION:-10}
STREAMS=${STREAMS:-1}
WICE_IMPL=${WICE_IMPL:-wice}
# shellcheck source=SCRIPTDIR/../tests/e2e/lib.sh
. "$(dirname "$0")/../tests/e2e/lib.sh"

IPERF_PORT=5201
CLK_TCK=$(getconf CLK_TCK)

# cpu_ticks PID: utime+stime in clock ticks (fields 14 and 15; the command name in field 2
# may hold spaces, so count from after its closing parenthesis).
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# peak_rss_mb PID: VmHWM in MiB.
peak_rss_mb() {
	awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

median() {
	sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) print "n/a"
		else if (NR % 2) print v[(NR + 1) / 2]
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# tunnel NAME IMPL NET PORT_BASE: a tunnel between the namespaces, client end 10.NET.0.1,
# server end 10.NET.0.2, configured with wg only. Records PIDs in PID_C[NAME], PID_S[NAME].
declare -A PID_C PID_S ADDR
tunnel() {
	local name=$1 impl=$2 net=$3 port=$4 ifc="bc$E2E_ID$3" ifs="bs$E2E_ID$3"
	key_new "$name-c"
	key_new "$name-s"
	wg_start "$impl" "$NS_C" "$ifc" && wg_start "$impl" "$NS_S" "$ifs" &&
		wg_conf "$NS_C" "$ifc" "$(key_file "$name-c")" "$port" "$(key_pub "$name-s")" \
			"10.$net.0.2/32" "192.0.2.2:$((port + 1))" &&
		wg_conf "$NS_S" "$ifs" "$(key_file "$name-s")" "$((port + 1))" \
			"$(key_pub "$name-c")" "10.$net.0.1/32" "192.0.2.1:$port" &&
		link_up "$NS_C" "$ifc" "10.$net.0.1/24" &&
		link_up "$NS_S" "$ifs" "10.$net.0.2/24" &&
		assert_ping "$NS_C" "10.$net.0.2" >/dev/null || return 1
	PID_C[$name]=$(wg_pid "$ifc")
	PID_S[$name]=$(wg_pid "$ifs")
	ADDR[$name]=10.$net.0.2
}

# run_one NAME: one iperf3 run over path NAME; appends Mbit/s and CPU % to $E2E_TMP files.
run_one() {
	local name=$1 c0=0 s0=0 t0 ms out mbps pc=${PID_C[$1]:-} ps=${PID_S[$1]:-}
	if [ -n "$pc" ]; then
		c0=$(cpu_ticks "$pc")
		s0=$(cpu_ticks "$ps")
	fi
	t0=$(now_ms)
	if ! out=$(ip netns exec "$NS_C" timeout $((DURATION + 30)) iperf3 -c "${ADDR[$name]}" \
		-p "$IPERF_PORT" -t "$DURATION" -P "$STREAMS" -f m 2>&1); then
		note "$name: iperf3 failed: $(printf '%s' "$out" | tail -1)" >&2
		return 0
	fi
	ms=$(($(now_ms) - t0))
	mbps=$(printf '%s\n' "$out" | awk '/receiver/ { for (i = 1; i <= NF; i++)
		if ($i == "Mbits/sec") v = $(i - 1) } END { print v }')
	echo "$mbps" >>"$E2E_TMP/$name.mbps"
	if [ -n "$pc" ]; then
		echo "$(cpu_ticks "$pc") $c0 $ms" | awk -v hz="$CLK_TCK" \
			'{ printf "%.0f\n", ($1 - $2) / hz / ($3 / 1000) * 100 }' >>"$E2E_TMP/$name.cpuc"
		echo "$(cpu_ticks "$ps") $s0 $ms" | awk -v hz="$CLK_TCK" \
			'{ printf "%.0f\n", ($1 - $2) / hz / ($3 / 1000) * 100 }' >>"$E2E_TMP/$name.cpus"
	fi
	printf '  %-13s run %d: %s Mbit/s\n' "$name" "$rep" "$mbps" >&2
}

stat_of() { # stat_of NAME KIND -> median, or n/a
	if [ -s "$E2E_TMP/$1.$2" ]; then median <"$E2E_TMP/$1.$2"; else echo n/a; fi
}

runs_of() {
	if [ -s "$E2E_TMP/$1.mbps" ]; then paste -sd/ "$E2E_TMP/$1.mbps"; else echo n/a; fi
}

ratio() {
	case "$1$2" in
	*n/a*) echo n/a ;;
	*) awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }' ;;
	esac
}

LOAD0=$(cut -d" " -f1-3 /proc/loadavg)
e2e_init
wice_snapshot
NS_C="bench-$E2E_ID-c"
NS_S="bench-$E2E_ID-s"
ns_add "$NS_C"
ns_add "$NS_S"
veth_add "$NS_C" veth0 "$NS_S" veth0 192.0.2.1/24 192.0.2.2/24
ADDR[bare]=192.0.2.2

PATHS=(bare)
WICE_LABEL=wice
case $WICE_IMPL in
wice) ;;
wice-wg-userspace) WICE_LABEL="wice (wice-wg-userspace)" ;;
*) WICE_LABEL="wice slot ($WICE_IMPL)" ;;
esac
if impl_available "$WICE_IMPL"; then
	tunnel wice "$WICE_IMPL" 101 51820 || { note "wice tunnel failed to come up" >&2; exit 1; }
	PATHS+=(wice)
else
	note "wice not found at $WICE_ORIG: its row is skipped" >&2
fi
tunnel wireguard-go wireguard-go 102 51830 || { note "wireguard-go tunnel failed" >&2; exit 1; }
PATHS+=(wireguard-go)

ip netns exec "$NS_S" iperf3 -s -p "$IPERF_PORT" >"$E2E_TMP/iperf3-server.log" 2>&1 &
E2E_BG[$!]=1
wait_listen "$NS_S" "$IPERF_PORT"

echo "bench: ${#PATHS[@]} paths x $REPS reps x ${DURATION}s" >&2
for rep in $(seq "$REPS"); do
	for p in "${PATHS[@]}"; do
		run_one "$p"
	done
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
COMMIT=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
WICE_SUM=n/a
[ ! -f "$WICE" ] || WICE_SUM=$(sha256sum "$WICE" | cut -c1-12)  # the snapshot that ran
BARE=$(stat_of bare mbps)
W=$(stat_of wice mbps)
G=$(stat_of wireguard-go mbps)

echo
echo "### Throughput: iperf3 TCP, $STREAMS stream(s), ${DURATION} s, median of $REPS interleaved runs"
echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r), commit $COMMIT," \
	"wice sha256 $WICE_SUM, $(wireguard-go --version 2>/dev/null | head -1 | cut -d' ' -f1-2)," \
	"$(iperf3 --version | head -1 | cut -d' ' -f1-2), load average at start $LOAD0." \
	"Both tunnel ends and iperf3 share the cores."
echo
echo "| path | Mbit/s (median) | runs | CPU % client end | CPU % server end | peak RSS MiB c/s |"
echo "|---|---:|---|---:|---:|---:|"
for p in bare wice wireguard-go; do
	label=$p
	[ "$p" != wice ] || label=$WICE_LABEL
	[ "$p" != bare ] || label="bare veth"
	rss=n/a
	[ -z "${PID_C[$p]:-}" ] || rss="$(peak_rss_mb "${PID_C[$p]}")/$(peak_rss_mb "${PID_S[$p]}")"
	[ "$p" != bare ] || rss="-"
	cpuc=$(stat_of "$p" cpuc)
	cpus=$(stat_of "$p" cpus)
	[ "$p" != bare ] || { cpuc="-"; cpus="-"; }
	echo "| $label | $(stat_of "$p" mbps) | $(runs_of "$p") | $cpuc | $cpus | $rss |"
done
echo
echo "Ratios of medians: wice/wireguard-go = $(ratio "$W" "$G"), wice/bare = $(ratio "$W" "$BARE")," \
	"wireguard-go/bare = $(ratio "$G" "$BARE")."
echo
echo "Reproduce (as root): \`REPS=$REPS DURATION=$DURATION STREAMS=$STREAMS WICE=$WICE_ORIG" \
	"$( [ "$WICE_IMPL" = wice ] || echo "WICE_IMPL=$WICE_IMPL ")bench/throughput.sh\`" \
	"(at commit $COMMIT, from $REPO)"
