# shellcheck shell=bash
# Helpers for wice's end-to-end tests: network namespaces, veth links, WireGuard
# implementations driven only through `wg`, traffic assertions and TAP-like reporting.
#
# Source it from a bash script that runs `set -eu`, then call e2e_init. Everything created
# through these helpers (namespaces, processes, temporary files) is recorded and removed by
# e2e_cleanup, which e2e_init installs as the EXIT trap. Processes are stopped by PID only.
#
# Namespaces share the filesystem, so /var/run/wireguard/IFACE.sock is one path for all of
# them: every interface name must be unique on the machine. e2e_init sets E2E_ID, a short
# random suffix to build such names from (interface names are limited to 15 characters).
#
# Implementations (IMPL arguments) are "wice", "wireguard-go", or any other command that
# takes `[-f] IFACE` like wireguard-go does.

E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${WICE:=$E2E_LIB_DIR/../../build/wice}"
: "${WIREGUARD_GO:=wireguard-go}"
WG_RUN_DIR=/var/run/wireguard

E2E_PASS=0
E2E_FAIL=0
E2E_TMP=""
# shellcheck disable=SC2034 # used by the scripts that source this file
E2E_ID=""
E2E_NAMESPACES=()
declare -A E2E_BG    # PID -> 1 for helper processes still running, stopped by PID at exit
declare -A E2E_WG_PID  # IFACE -> PID of the WireGuard process serving it
declare -A E2E_WG_NS   # IFACE -> namespace it lives in
E2E_STOP_KILLED=""   # set by stop_pid when TERM was not enough
E2E_PORT_NEXT=20000  # TCP ports for transfers, one per transfer so nothing lingers

# ---- reporting -------------------------------------------------------------------------------

pass() {
	E2E_PASS=$((E2E_PASS + 1))
	echo "ok - $*"
}

fail() {
	E2E_FAIL=$((E2E_FAIL + 1))
	echo "not ok - $*"
}

# note MESSAGE: diagnostics, TAP style, so they never look like a result line.
note() {
	echo "# $*"
}

# check NAME CMD [ARGS...]: run an assertion, report it. Never aborts the script.
check() {
	local name=$1
	shift
	if "$@"; then
		pass "$name"
	else
		fail "$name"
	fi
}

# e2e_summary: print totals; returns non-zero if anything failed or nothing ran.
e2e_summary() {
	note "$E2E_PASS passed, $E2E_FAIL failed"
	[ "$E2E_FAIL" -eq 0 ] && [ "$E2E_PASS" -gt 0 ]
}

# ---- setup and cleanup -----------------------------------------------------------------------

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

e2e_init() {
	if [ "$(id -u)" != 0 ]; then
		note "must run as root (network namespaces)"
		exit 2
	fi
	E2E_TMP=$(mktemp -d /tmp/wice-e2e.XXXXXX)
	# shellcheck disable=SC2034 # used by the scripts that source this file
	E2E_ID=$(od -An -N2 -tx2 /dev/urandom | tr -d ' \n')
	trap e2e_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# stop_pid PID: TERM, wait up to 3 s, then KILL. Only for PIDs this shell started.
stop_pid() {
	local pid=$1
	E2E_STOP_KILLED=""
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 60); do
		alive "$pid" || break
		sleep 0.05
	done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		E2E_STOP_KILLED=1
	fi
	wait "$pid" 2>/dev/null || true
}

e2e_cleanup() {
	local rc=$? pid iface ns
	trap - EXIT INT TERM
	set +e
	for iface in "${!E2E_WG_PID[@]}"; do
		wg_stop "$iface"
	done
	for pid in "${!E2E_BG[@]}"; do
		stop_pid "$pid"
	done
	for ns in "${E2E_NAMESPACES[@]}"; do
		ip netns del "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns" # a test's own /etc files for the namespace, if any
	done
	if [ -n "$E2E_TMP" ]; then
		if [ "$E2E_FAIL" -gt 0 ] || [ "$rc" -ne 0 ] || [ -n "${E2E_KEEP:-}" ]; then
			note "logs and keys kept in $E2E_TMP"
		else
			rm -rf "$E2E_TMP"
		fi
	fi
	exit "$rc"
}

# ns_add NAME: create a network namespace with loopback up.
ns_add() {
	local ns=$1
	if ip netns list | awk -v n="$ns" '$1 == n { f = 1 } END { exit !f }'; then
		note "namespace $ns already exists, not touching it"
		return 1
	fi
	ip netns add "$ns"
	E2E_NAMESPACES+=("$ns")
	ip -n "$ns" link set lo up
}

# ns_del NAME: delete a namespace made by ns_add (stop its WireGuard processes first).
ns_del() {
	local ns=$1 i
	ip netns del "$ns"
	for i in "${!E2E_NAMESPACES[@]}"; do
		[ "${E2E_NAMESPACES[$i]}" != "$ns" ] || unset "E2E_NAMESPACES[$i]"
	done
}

# veth_add NS1 IF1 NS2 IF2 ADDR1/LEN ADDR2/LEN [ADDR1_6/LEN ADDR2_6/LEN]
# A veth pair between two namespaces, addressed and up. IPv6 addresses skip DAD so they are
# usable at once.
veth_add() {
	local ns1=$1 if1=$2 ns2=$3 if2=$4 a1=$5 a2=$6 a16=${7:-} a26=${8:-}
	ip link add "$if1" netns "$ns1" type veth peer name "$if2" netns "$ns2"
	ip -n "$ns1" addr add "$a1" dev "$if1"
	ip -n "$ns2" addr add "$a2" dev "$if2"
	if [ -n "$a16" ]; then
		ip -n "$ns1" addr add "$a16" dev "$if1" nodad
		ip -n "$ns2" addr add "$a26" dev "$if2" nodad
	fi
	ip -n "$ns1" link set "$if1" up
	ip -n "$ns2" link set "$if2" up
}

# ---- WireGuard implementations ---------------------------------------------------------------

# impl_argv IMPL: set the global array IMPL_ARGV to the command that serves one interface.
impl_argv() {
	case $1 in
	wice) IMPL_ARGV=("$WICE" wg-userspace) ;;
	# The same userspace WireGuard as its own small executable (what wg-quick runs).
	wice-wg-userspace) IMPL_ARGV=("$(dirname "${WICE_ORIG:-$WICE}")/wice-wg-userspace") ;;
	wireguard-go) IMPL_ARGV=("$WIREGUARD_GO") ;;
	*) read -ra IMPL_ARGV <<<"$1" ;;
	esac
}

# wice_snapshot: run a private copy of $WICE, so a rebuild (`ninja -C build`) during the run
# cannot swap or half-write the binary under the test. Keeps the original path in WICE_ORIG.
# Retries for a few seconds if the binary is mid-link (not yet runnable).
wice_snapshot() {
	# shellcheck disable=SC2034 # read by the scripts that source this file
	WICE_ORIG=$WICE
	[ -e "$WICE" ] || return 0
	local snap="$E2E_TMP/wice" deadline
	deadline=$(($(now_ms) + 10000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		if [ -x "$WICE" ] && cp "$WICE" "$snap" && "$snap" --help >/dev/null 2>&1; then
			WICE=$snap
			return 0
		fi
		sleep 0.2
	done
	note "$WICE is not runnable (being rebuilt?): using it as is"
}

# impl_available IMPL: true if the implementation's binary can be run.
impl_available() {
	impl_argv "$1"
	command -v "${IMPL_ARGV[0]}" >/dev/null 2>&1 || [ -x "${IMPL_ARGV[0]}" ]
}

# wg_start IMPL NS IFACE: start IMPL in the foreground (as a background job of this shell)
# serving IFACE in NS; wait until its UAPI socket answers and the link exists. PID recorded
# in E2E_WG_PID[IFACE], output in $E2E_TMP/IFACE.log.
wg_start() {
	local impl=$1 ns=$2 iface=$3 pid deadline
	if [ ${#iface} -gt 15 ]; then
		note "interface name $iface longer than 15 characters"
		return 1
	fi
	if [ -e "$WG_RUN_DIR/$iface.sock" ]; then
		note "$WG_RUN_DIR/$iface.sock exists: name in use by someone else"
		return 1
	fi
	impl_argv "$impl"
	WG_PROCESS_FOREGROUND=1 ip netns exec "$ns" "${IMPL_ARGV[@]}" -f "$iface" \
		>"$E2E_TMP/$iface.log" 2>&1 </dev/null &
	pid=$!
	E2E_WG_PID[$iface]=$pid
	E2E_WG_NS[$iface]=$ns
	deadline=$(($(now_ms) + ${E2E_START_TIMEOUT_MS:-10000}))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		if ! alive "$pid"; then
			note "$impl for $iface in $ns exited early; its output:"
			sed "s/^/#   | /" "$E2E_TMP/$iface.log"
			return 1
		fi
		if [ -S "$WG_RUN_DIR/$iface.sock" ] &&
			E2E_WG_TIMEOUT=2 wg_in "$ns" show "$iface" >/dev/null 2>&1 &&
			ip -n "$ns" link show "$iface" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
	done
	note "$impl for $iface in $ns: no UAPI socket or link within the deadline"
	return 1
}

# wg_stop IFACE: stop the process serving IFACE and wait for it. Its socket file is removed
# only once the process is gone (a live wireguard-go exits when its socket file is deleted).
wg_stop() {
	local iface=$1 pid=${E2E_WG_PID[$1]:-}
	[ -n "$pid" ] || return 0
	if alive "$pid"; then
		stop_pid "$pid"
		[ -z "$E2E_STOP_KILLED" ] || note "$iface (pid $pid) ignored SIGTERM for 3 s: killed"
	else
		local rc=0
		wait "$pid" 2>/dev/null || rc=$?
		note "$iface (pid $pid) had exited on its own, status $rc"
	fi
	unset "E2E_WG_PID[$iface]" "E2E_WG_NS[$iface]"
	if [ -S "$WG_RUN_DIR/$iface.sock" ] && ! alive "$pid"; then
		note "$iface (pid $pid) left $WG_RUN_DIR/$iface.sock behind: removed"
		rm -f "$WG_RUN_DIR/$iface.sock"
	fi
}

# wg_pid IFACE, wg_ns IFACE: PID of the process serving IFACE, namespace IFACE lives in.
wg_pid() { echo "${E2E_WG_PID[$1]}"; }
wg_ns() { echo "${E2E_WG_NS[$1]}"; }

# wg_in NS ARGS...: `wg ARGS` in NS, bounded so a UAPI that never answers fails the check
# instead of hanging the run.
wg_in() {
	local ns=$1
	shift
	ip netns exec "$ns" timeout "${E2E_WG_TIMEOUT:-10}" wg "$@"
}

# key_new NAME: a private key in $E2E_TMP/NAME.key (mode 0600) and its public key in NAME.pub.
key_new() {
	(umask 077 && wg genkey >"$E2E_TMP/$1.key")
	wg pubkey <"$E2E_TMP/$1.key" >"$E2E_TMP/$1.pub"
}

# psk_new NAME: a preshared key in $E2E_TMP/NAME.psk (mode 0600).
psk_new() {
	(umask 077 && wg genpsk >"$E2E_TMP/$1.psk")
}

key_file() { echo "$E2E_TMP/$1.key"; }
key_pub() { cat "$E2E_TMP/$1.pub"; }
psk_file() { echo "$E2E_TMP/$1.psk"; }

# wg_set_iface NS IFACE KEYFILE PORT
wg_set_iface() {
	wg_in "$1" set "$2" private-key "$3" listen-port "$4"
}

# wg_set_peer NS IFACE PUB ALLOWED_IPS [ENDPOINT [PSKFILE]]: an empty ENDPOINT leaves the
# peer without one (it is then learnt from the peer's first authenticated packet).
wg_set_peer() {
	local ns=$1 iface=$2 pub=$3 allowed=$4 endpoint=${5:-} psk=${6:-}
	local args=(peer "$pub" allowed-ips "$allowed")
	[ -z "$endpoint" ] || args+=(endpoint "$endpoint")
	[ -z "$psk" ] || args+=(preshared-key "$psk")
	wg_in "$ns" set "$iface" "${args[@]}"
}

# wg_conf NS IFACE KEYFILE PORT PEER_PUB ALLOWED_IPS [ENDPOINT [PSKFILE]]
wg_conf() {
	wg_set_iface "$1" "$2" "$3" "$4" &&
		wg_set_peer "$1" "$2" "$5" "$6" "${7:-}" "${8:-}"
}

# link_up NS IFACE ADDR4/LEN [ADDR6/LEN]
link_up() {
	local ns=$1 iface=$2 a4=$3 a6=${4:-}
	ip -n "$ns" addr add "$a4" dev "$iface" &&
		{ [ -z "$a6" ] || ip -n "$ns" addr add "$a6" dev "$iface" nodad; } &&
		ip -n "$ns" link set "$iface" up
}

# wg_latest_handshake NS IFACE PUB: the peer's latest handshake, seconds since epoch (0: none).
wg_latest_handshake() {
	wg_in "$1" show "$2" latest-handshakes | awk -v k="$3" '$1 == k { print $2 }'
}

# wg_endpoint NS IFACE PUB: the peer's current endpoint as `wg show` prints it.
wg_endpoint() {
	wg_in "$1" show "$2" endpoints | awk -v k="$3" '$1 == k { print $2 }'
}

# ---- traffic assertions ----------------------------------------------------------------------

# assert_ping NS ADDR [DEADLINE_S]: some echo reply arrives within the deadline (default 10 s;
# the first packets may wait for a handshake).
assert_ping() {
	local ns=$1 addr=$2 deadline
	deadline=$(($(now_ms) + ${3:-10} * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		ip netns exec "$ns" ping -c 1 -W 1 -q "$addr" >/dev/null 2>&1 && return 0
	done
	note "ping $addr from $ns: no reply"
	return 1
}

# assert_no_traffic NS ADDR [DEADLINE_S]: no echo reply at all within the deadline (default 3 s).
assert_no_traffic() {
	local ns=$1 addr=$2 secs=${3:-3}
	if ip netns exec "$ns" ping -c "$((secs * 5))" -i 0.2 -w "$secs" -q "$addr" \
		>/dev/null 2>&1; then
		note "ping $addr from $ns: got replies, expected none"
		return 1
	fi
	return 0
}

# wait_listen NS PORT: until something listens on TCP PORT in NS (bounded: 5 s).
wait_listen() {
	local deadline
	deadline=$(($(now_ms) + 5000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		[ -n "$(ip netns exec "$1" ss -Hltn "sport = :$2")" ] && return 0
		sleep 0.02
	done
	return 1
}

# random_file BYTES: path of a file of BYTES random bytes (made once per size).
random_file() {
	local f="$E2E_TMP/random.$1"
	[ -f "$f" ] || head -c "$1" /dev/urandom >"$f"
	echo "$f"
}

# assert_tcp NS_SERVER ADDR NS_CLIENT [BYTES]: send BYTES (default $E2E_BYTES or 20 MB) of
# random data from NS_CLIENT to a listener on ADDR in NS_SERVER and compare SHA-256 of what
# was sent and what arrived.
assert_tcp() {
	local ns_srv=$1 addr=$2 ns_cli=$3 bytes=${4:-${E2E_BYTES:-20000000}}
	local port src out srv_pid want got t0 ms tmo=${E2E_TCP_TIMEOUT:-60}
	port=$E2E_PORT_NEXT
	E2E_PORT_NEXT=$((port + 1))
	src=$(random_file "$bytes")
	out="$E2E_TMP/recv.$port"
	ip netns exec "$ns_srv" timeout "$tmo" nc -d -l "$addr" "$port" >"$out" 2>/dev/null &
	srv_pid=$!
	E2E_BG[$srv_pid]=1
	if ! wait_listen "$ns_srv" "$port"; then
		note "tcp: no listener on [$addr]:$port in $ns_srv"
		return 1
	fi
	t0=$(now_ms)
	if ! ip netns exec "$ns_cli" timeout "$tmo" nc -N "$addr" "$port" <"$src" >/dev/null; then
		note "tcp: client in $ns_cli to [$addr]:$port failed"
		stop_pid "$srv_pid"
		unset "E2E_BG[$srv_pid]"
		return 1
	fi
	wait "$srv_pid" || true
	unset "E2E_BG[$srv_pid]"
	ms=$(($(now_ms) - t0))
	want=$(sha256sum <"$src" | cut -d' ' -f1)
	got=$(sha256sum <"$out" | cut -d' ' -f1)
	if [ "$want" != "$got" ]; then
		note "tcp: $bytes bytes sent, $(stat -c %s "$out") received, sha256 differs"
		return 1
	fi
	note "tcp: $bytes bytes to [$addr]:$port intact in ${ms} ms"
	rm -f "$out"
}
