#!/bin/bash
# Runs every test: unit tests (cmocka), the same under ASan+UBSan, a fuzz corpus replay and a
# short fuzz run per target, and the end-to-end tests in network namespaces. Prints one
# "ok - …"/"not ok - …" line per test and ends with "N passed, N failed".
#
# Env: FUZZ_SECONDS (per fuzz target, default 20), SKIP_E2E=1, SKIP_FUZZ=1, SKIP_ASAN=1.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
PASS=0
FAIL=0
LOG=$(mktemp -d /tmp/wice-test.XXXXXX)

count() {
	# count FILE: add the file's ok / not ok lines to the totals and echo them.
	local p f
	p=$(grep -c '^ok - ' "$1" || true)
	f=$(grep -c '^not ok - ' "$1" || true)
	PASS=$((PASS + p))
	FAIL=$((FAIL + f))
	grep -E '^(not )?ok - ' "$1" || true
}

# Unit tests and the signaling tests (which start the real `wice signal` on the loopback):
# each cmocka case is one line.
run_unit() {
	local dir=$1 tag=$2 out t name rc
	out=$LOG/unit-$tag.txt
	: >"$out"
	for t in "$dir"/tests/unit/test_* "$dir"/tests/signal/test_* "$dir"/tests/ice/test_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		name=$(basename "$t")
		if G_SLICE=always-malloc "$t" >"$LOG/$tag-$name.log" 2>&1; then rc=0; else rc=$?; fi
		sed -n -e "s/^\[       OK \] \(.*\)/ok - $tag $name \1/p" \
			-e "s/^\[  FAILED  \] \([a-z_0-9]*\)$/not ok - $tag $name \1/p" \
			"$LOG/$tag-$name.log" | sort -u >>"$out"
		# A crash or sanitizer report after the last case still fails the binary.
		if [ "$rc" != 0 ] && ! grep -q '^not ok' "$out"; then
			echo "not ok - $tag $name exited $rc" >>"$out"
		fi
		[ "$rc" = 0 ] || sed 's/^/# /' "$LOG/$tag-$name.log" | tail -40
	done
	count "$out"
}

echo "# unit tests"
run_unit "$BUILD" unit

if [ "${SKIP_ASAN:-0}" != 1 ]; then
	echo "# unit tests under ASan+UBSan"
	if [ ! -f build-asan/build.ninja ]; then
		CC=clang CXX=clang++ meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
			-Dwerror=true >"$LOG/asan-setup.log" 2>&1 || cat "$LOG/asan-setup.log"
	fi
	if ninja -C build-asan >"$LOG/asan-build.log" 2>&1; then
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
			UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 run_unit build-asan asan
	else
		tail -30 "$LOG/asan-build.log"
		echo "not ok - asan build" | tee "$LOG/asan.txt"
		count "$LOG/asan.txt" >/dev/null
	fi
fi

if [ "${SKIP_FUZZ:-0}" != 1 ] && [ -x tests/fuzz/run.sh ]; then
	echo "# fuzzing: corpus replay and ${FUZZ_SECONDS:-20} s per target"
	FUZZ_SECONDS=${FUZZ_SECONDS:-20} tests/fuzz/run.sh >"$LOG/fuzz.txt" 2>&1
	count "$LOG/fuzz.txt"
fi

if [ "${SKIP_E2E:-0}" != 1 ]; then
	for t in tests/e2e/test_*.sh; do
		echo "# $t"
		E2E_REQUIRE_WICE=1 WICE="$ROOT/$BUILD/wice" timeout 1200 bash "$t" >"$LOG/e2e.txt" 2>&1
		rc=$?
		grep -E '^# ' "$LOG/e2e.txt" | tail -5
		count "$LOG/e2e.txt"
		if [ "$rc" != 0 ] && ! grep -q '^not ok' "$LOG/e2e.txt"; then
			echo "not ok - $t exited $rc"
			FAIL=$((FAIL + 1))
		fi
	done
fi

echo "# logs in $LOG"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
