#!/bin/bash
# Builds every tests/fuzz/fuzz_*.c with libFuzzer, ASan and UBSan into a temporary directory,
# replays its seed corpus (tests/fuzz/corpus/NAME/) and any saved reproducers
# (tests/fuzz/crashes/NAME/), then fuzzes it for FUZZ_SECONDS (default 30) on a scratch copy of
# the corpus. Prints "ok - fuzz NAME" or "not ok - fuzz NAME" per target and exits 1 if any
# failed; a failing target's build directory is kept and named.
#
# A target is built the way the clang command in its header comment says (" * clang ...
# -fsanitize=... ARGS -o NAME", continued with backslashes; ARGS are used as they are, from the
# top directory); without one, it is linked with src/wg/*.c, libwice's src/util/{file,key,log}.c,
# -lcrypto -lsodium -lpthread.
#
# Env: FUZZ_SECONDS, FUZZ_CC (default clang), FUZZ_ONLY (space-separated names to run).
set -u
cd "$(dirname "$0")/../.."
SECS=${FUZZ_SECONDS:-30}
CC=${FUZZ_CC:-clang}
OUT=$(mktemp -d /tmp/wice-fuzz.XXXXXX)
FAILED=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# stats LOG: the last status line's execs and coverage, as a comment.
stats() {
	sed -n 's/^#\([0-9]*\)[[:space:]]*\(DONE\|pulse\|NEW\|REDUCE\|INITED\).*cov: \([0-9]*\) ft: \([0-9]*\).*/\1 \3 \4/p' "$1" |
		tail -1 | { read -r execs cov ft && echo "# fuzz $2: $execs runs, cov $cov, ft $ft"; }
}

# fail NAME WHAT LOG
fail() {
	echo "not ok - fuzz $1 ($2)"
	sed 's/^/# /' "$3" | grep -v -e '^# INFO:' -e '^# #[0-9]' | tail -40
	echo "# kept in $OUT"
	FAILED=1
}

for src in tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	short=${name#fuzz_}
	if [ -n "${FUZZ_ONLY:-}" ] && ! [[ " $FUZZ_ONLY " == *" $short "* ]]; then
		continue
	fi
	bin=$OUT/$name
	log=$OUT/$short
	recipe=$(sed -n '/^ \* clang /,/ -o /p' "$src" | sed 's/^ \*//; s/\\$//' | tr '\n\t' '  ' |
		sed -n 's/.*-fsanitize=[^ ]* \(.*\) -o .*/\1/p')
	[ -n "$recipe" ] || recipe="-Isrc $src src/wg/*.c src/util/file.c src/util/key.c src/util/log.c -lcrypto -lsodium -lpthread"
	# UBSan findings abort through UBSAN_OPTIONS=halt_on_error=1 (set above).
	# shellcheck disable=SC2086 # the recipe is meant to split and glob
	if ! $CC -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -I. $recipe \
		-o "$bin" >"$log.build" 2>&1; then
		fail "$short" build "$log.build"
		continue
	fi

	corpus=$OUT/corpus-$short
	mkdir -p "$corpus" "$OUT/crashes-$short"
	[ -d "tests/fuzz/corpus/$short" ] && cp -r "tests/fuzz/corpus/$short/." "$corpus/"
	if ! (cd "$OUT" && "$bin" -runs=0 "$corpus") >"$log.replay" 2>&1; then
		fail "$short" "corpus replay" "$log.replay"
		continue
	fi
	repros=()
	if [ -d "tests/fuzz/crashes/$short" ]; then
		for f in "tests/fuzz/crashes/$short"/*; do
			[ -f "$f" ] && repros+=("$PWD/$f")
		done
	fi
	if [ ${#repros[@]} -gt 0 ] &&
		! (cd "$OUT" && "$bin" "${repros[@]}") >"$log.repro" 2>&1; then
		fail "$short" "saved reproducer" "$log.repro"
		continue
	fi
	if ! (cd "$OUT" && "$bin" -max_total_time="$SECS" -timeout=10 \
		-artifact_prefix="$OUT/crashes-$short/" "$corpus") >"$log.fuzz" 2>&1; then
		fail "$short" "crash: $(ls "$OUT/crashes-$short" | head -3 | tr '\n' ' ')" "$log.fuzz"
		continue
	fi
	stats "$log.fuzz" "$short"
	echo "ok - fuzz $short"
done

[ "$FAILED" = 0 ] && rm -rf "$OUT"
exit "$FAILED"
