#!/bin/bash
# Signal server benchmark (not a test): N subscribed clients on loopback publishing to each
# other through a real `wice signal`, over gRPC and over WebSocket separately. For each
# transport and N, a fresh server and one run of bench/signal_load (built here with cc against
# the meson build in build/), which measures:
#   idle  server VmRSS with N idle subscribers minus VmRSS before they came, per subscriber;
#   sat   deliveries/s at saturation: WINDOW messages circulate, each receiver publishes the
#         next at once; counted over DURATION s after WARMUP s;
#   lat   delivery latency p50/p99, open loop at half the saturation rate (LAT_RATE to fix it).
# gRPC clients publish as src/signal/grpc.c does: on one PublishStream per client where the
# server announces it, one message in flight, what is published meanwhile queued and sent as
# one PublishRequest (at most 64 envelopes, 60 KiB); against an older server (or UNARY=1),
# unary Publish calls, at most 4 in flight per client, batching likewise.
# CPU of the server (/proc/PID/stat) and of the load generator (getrusage) over each window,
# as % of one core: both share the machine's cores. The server runs with its per-connection
# rate limit raised (--rate/--burst RATE) so that the limit does not cap the benchmark; its
# counters (SIGUSR1) are checked for rate_limited and queue_full.
# Prints a Markdown block for BENCHMARKS.md, with the command line that reproduces it.
#
# Usage: bench/signal.sh          (after `meson compile -C build`; perf profiles need root)
# Env:   NS (default "10 1000 10000"), TRANSPORTS ("grpc ws"), DURATION (10), WARMUP (3),
#        SETTLE (2, s before the idle RSS sample), WINDOW (default by N: 8N within 64..2048),
#        LAT_RATE (default half the measured saturation), PER_CONN (gRPC subscribers per
#        connection, default 1 as separate daemons), PAYLOAD (ciphertext bytes, default 96),
#        RATE (server --rate and --burst, default 100000000), PERF (1: perf record the server
#        during the saturation window of each run and print its top symbols), WICE (build/wice),
#        BUILD (build), UNARY (1: gRPC clients publish with unary calls even where the server
#        takes PublishStream).
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
WICE=${WICE:-$BUILD/wice}
NS=${NS:-"10 1000 10000"}
TRANSPORTS=${TRANSPORTS:-"grpc ws"}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
SETTLE=${SETTLE:-2}
WINDOW=${WINDOW:-}
LAT_RATE=${LAT_RATE:-}
PER_CONN=${PER_CONN:-1}
PAYLOAD=${PAYLOAD:-96}
RATE=${RATE:-100000000}
PERF=${PERF:-0}
UNARY=${UNARY:-0}

TMP=$(mktemp -d /tmp/wice-signal-bench.XXXXXX)
SPID=
cleanup() {
	[ -z "$SPID" ] || kill "$SPID" 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
note() { echo "bench: $*" >&2; }

# The load generator, built against the meson build (its static libraries and generated
# protobuf header), and a private copy of wice, so a rebuild during the run changes nothing.
# shellcheck disable=SC2046 # pkg-config's output is a list of words
cc -O2 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes \
	-Wformat=2 -Wshadow -Wvla -Wno-unused-parameter -I"$REPO/src" -I"$BUILD" \
	"$REPO/bench/signal_load.c" "$REPO/bench/signal_load_grpc.c" \
	"$REPO/bench/signal_load_ws.c" -o "$TMP/signal_load" \
	"$BUILD/libwicesignal.a" "$BUILD/libwice.a" \
	$(pkg-config --libs grpc libwebsockets libprotobuf-c libsodium libcrypto) -lev \
	-lstdc++ -lpthread
cp "$WICE" "$TMP/wice"
WICE_SUM=$(sha256sum "$TMP/wice" | cut -c1-12)

# The server may hold N sockets and more: as many descriptors as we may have.
NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=65536
[ "$NOFILE" -le 65536 ] || NOFILE=65536

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		[ -z "$(ss -Htan "sport = :$p")" ] && { echo "$p"; return; }
	done
}

wait_listen() { # wait_listen PORT
	for _ in $(seq 100); do
		[ -z "$(ss -Hltn "sport = :$1")" ] || return 0
		sleep 0.05
	done
	return 1
}

field() { # field LINE KEY
	printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

# perf_during OUT_FILE: profile the server through the saturation window of the run whose
# generator output is $TMP/out (starts WARMUP s after the idle line).
perf_during() {
	for _ in $(seq 6000); do
		grep -q '^idle' "$TMP/out" 2>/dev/null && break
		grep -q '^connect.*failed=[1-9]' "$TMP/out" 2>/dev/null && return 0
		sleep 0.05
	done
	sleep "$WARMUP"
	perf record -q -F 499 -g -p "$SPID" -o "$TMP/perf.data" -- sleep "$((DURATION > 6 ? 5 : DURATION - 1))" \
		>/dev/null 2>&1 || return 0
	{
		echo "by object:"
		perf report -i "$TMP/perf.data" --no-children --stdio -g none --sort dso 2>/dev/null |
			grep -E '^ +[0-9]' | head -6
		echo "by symbol:"
		perf report -i "$TMP/perf.data" --no-children --stdio -g none --sort dso,sym 2>/dev/null |
			grep -E '^ +[0-9]' | head -20
	} | sed 's/ \+$//' >"$1"
}

# run TRANSPORT N: one server, one generator run; appends a table row to $TMP/rows.
run() {
	local t=$1 n=$2 pg pw port args out stats
	pg=$(free_port)
	pw=$(free_port)
	[ "$t" = grpc ] && port=$pg || port=$pw
	(
		ulimit -n "$NOFILE"
		exec "$TMP/wice" signal --grpc "127.0.0.1:$pg" --ws "127.0.0.1:$pw" \
			--rate "$RATE" --burst "$RATE"
	) 2>"$TMP/server-$t-$n.log" &
	SPID=$!
	wait_listen "$port" || { note "$t N=$n: server did not listen"; return 1; }
	args=(--server-pid "$SPID" --warmup "$WARMUP" --duration "$DURATION" --settle "$SETTLE"
		--per-conn "$PER_CONN" --payload "$PAYLOAD")
	[ -z "$WINDOW" ] || args+=(--window "$WINDOW")
	[ -z "$LAT_RATE" ] || args+=(--lat-rate "$LAT_RATE")
	[ "$UNARY" != 1 ] || args+=(--unary)
	note "$t N=$n: server pid $SPID, port $port"
	: >"$TMP/out"
	local perf_pid=
	if [ "$PERF" = 1 ]; then
		perf_during "$TMP/perf-$t-$n.txt" &
		perf_pid=$!
	fi
	(ulimit -n "$NOFILE"; exec timeout $((300 + 3 * DURATION)) "$TMP/signal_load" "$t" \
		"127.0.0.1:$port" "$n" "${args[@]}") >"$TMP/out" 2>"$TMP/load-$t-$n.err" || true
	[ -z "$perf_pid" ] || wait "$perf_pid" || true
	cat "$TMP/out" >&2
	kill -USR1 "$SPID" 2>/dev/null || true
	sleep 0.5
	kill "$SPID" 2>/dev/null || true
	wait "$SPID" 2>/dev/null || true
	SPID=
	stats=$(grep 'stats:' "$TMP/server-$t-$n.log" | tail -1)
	out=$(cat "$TMP/out")
	local conn idle sat lat
	conn=$(printf '%s\n' "$out" | grep '^connect' || true)
	idle=$(printf '%s\n' "$out" | grep '^idle' || true)
	sat=$(printf '%s\n' "$out" | grep '^sat' || true)
	lat=$(printf '%s\n' "$out" | grep '^lat' || true)
	local kib=n/a rate=n/a scpu=n/a gcpu=n/a us=n/a p50=n/a p99=n/a lrate=n/a lost=n/a lcpu=n/a
	[ -z "$idle" ] || kib=$(awk -v b="$(field "$idle" per_sub_bytes)" 'BEGIN { printf "%.1f", b / 1024 }')
	if [ -n "$sat" ]; then
		rate=$(field "$sat" rate)
		scpu=$(field "$sat" srv_cpu)
		gcpu=$(field "$sat" gen_cpu)
		# Server CPU time per delivered message: what the server could do with a core.
		us=$(awk -v c="$scpu" -v r="$rate" 'BEGIN { if (r > 0) printf "%.1f", c * 1e4 / r; else print "n/a" }')
		lost="$(field "$sat" lost)"
	fi
	if [ -n "$lat" ]; then
		lrate=$(field "$lat" rate)
		p50=$(awk -v u="$(field "$lat" p50_us)" 'BEGIN { printf "%.2f", u / 1000 }')
		p99=$(awk -v u="$(field "$lat" p99_us)" 'BEGIN { printf "%.2f", u / 1000 }')
		lost="$lost/$(field "$lat" lost)"
		lcpu="$(field "$lat" srv_cpu)/$(field "$lat" gen_cpu)"
	fi
	echo "| $t | $n | $(field "$conn" secs) | $kib | $rate | $scpu/$gcpu | $us | $lrate | $p50 | $p99 | $lcpu | $lost | $(field "$stats" rate_limited)/$(field "$stats" queue_full) |" >>"$TMP/rows"
	printf '%s %s %s %s %s %s\n' "$t" "$n" "$kib" "$rate" "$p99" "$lrate" >>"$TMP/summary"
	[ -z "$conn" ] || [ -n "$sat" ] || note "$t N=$n: no result; see $(tail -3 "$TMP/load-$t-$n.err")"
}

LOAD0=$(cut -d" " -f1-3 /proc/loadavg)
: >"$TMP/rows"
: >"$TMP/summary"
for t in $TRANSPORTS; do
	for n in $NS; do
		run "$t" "$n"
	done
done

COMMIT=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
echo
echo "### wice signal: N subscribers on loopback, ${DURATION} s windows"
echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r), commit $COMMIT, wice sha256" \
	"$WICE_SUM, load average at start $LOAD0. Server and load generator (one thread driving" \
	"every connection; gRPC: $PER_CONN subscriber(s) per connection, each publishing as the" \
	"client backend does: $([ "$UNARY" = 1 ] && echo "≤ 4 unary Publish calls in flight" ||
		echo "one PublishStream message in flight where the server takes it, else ≤ 4 unary Publish calls")," \
	"envelopes queued meanwhile sent in one request of ≤ 64) share the cores. Server" \
	"per-connection rate limit raised to --rate $RATE --burst $RATE for the benchmark." \
	"Envelopes of $((3 * 34 + 26 + PAYLOAD + (PAYLOAD < 128 ? 2 : 3))) bytes (opaque to the server)."
echo
echo "| transport | N | connect s | server RSS KiB per idle subscriber | saturation msg/s | CPU % server/loadgen | server CPU µs per msg | latency test msg/s | p50 ms | p99 ms | CPU % server/loadgen | lost sat/lat | server rate_limited/queue_full |"
echo "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|---|"
cat "$TMP/rows"
echo
echo "Targets (issue 3, 2 cores): ≥ 50,000 msg/s with 1,000 subscribers, p99 < 10 ms at half" \
	"that rate, ≤ 20 KiB per idle subscriber."
awk '$2 == 1000 {
	printf "- %s, N = 1,000: %s msg/s = %.2f of target; p99 %s ms at %s msg/s (target < 10 ms)\n",
		$1, $4, $4 / 50000, $5, $6 }
     { printf "- %s, N = %s: %s KiB per idle subscriber = %.2f of the 20 KiB target\n", $1, $2, $3, $3 / 20 }' \
	"$TMP/summary"
echo
echo "CPU % is of one core over the window; server CPU µs per msg = server CPU time / deliveries."
echo "Latency is from the scheduled send time (open loop) to receipt by the subscriber."
if [ "$PERF" = 1 ]; then
	for f in "$TMP"/perf-*.txt; do
		[ -s "$f" ] || continue
		echo
		echo "Server profile during saturation, $(basename "$f" .txt | sed 's/^perf-//') (perf, self %):"
		echo '```'
		cat "$f"
		echo '```'
	done
fi
echo
echo "Reproduce: \`NS=\"$NS\" TRANSPORTS=\"$TRANSPORTS\" DURATION=$DURATION WARMUP=$WARMUP" \
	"SETTLE=$SETTLE PER_CONN=$PER_CONN PAYLOAD=$PAYLOAD RATE=$RATE$([ "$UNARY" != 1 ] || echo " UNARY=1")" \
	"${WINDOW:+WINDOW=$WINDOW }${LAT_RATE:+LAT_RATE=$LAT_RATE }${PERF:+PERF=$PERF }bench/signal.sh\`" \
	"(at commit $COMMIT, from $REPO)"
