#!/bin/bash
# wice genkey / pubkey / genpsk against wg(8): the same formats both ways, byte for byte.
#
# Usage: tests/e2e/test_keys.sh        (WICE=path to the wice binary)
set -eu

WICE=${WICE:-"$(dirname "$0")/../../build/wice"}
PASS=0
FAIL=0
check() {
	local name=$1
	shift
	if "$@"; then
		PASS=$((PASS + 1))
		echo "ok - $name"
	else
		FAIL=$((FAIL + 1))
		echo "not ok - $name"
	fi
}
TMP=$(mktemp -d /tmp/wice-keys.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

same_pubkey_both_ways() {
	local k
	for _ in 1 2 3 4 5 6 7 8; do
		k=$("$WICE" genkey)
		[ "$(printf '%s\n' "$k" | "$WICE" pubkey)" = "$(printf '%s\n' "$k" | wg pubkey)" ] ||
			return 1
		k=$(wg genkey)
		[ "$(printf '%s\n' "$k" | "$WICE" pubkey)" = "$(printf '%s\n' "$k" | wg pubkey)" ] ||
			return 1
	done
}
check "wice pubkey = wg pubkey, for keys from either" same_pubkey_both_ways

format() { # 44 base64 characters ending in '=', 32 bytes
	local k
	k=$("$@")
	[ ${#k} = 44 ] && [ "${k: -1}" = "=" ] &&
		[ "$(printf '%s' "$k" | base64 -d 2>/dev/null | wc -c)" = 32 ]
}
check "wice genkey prints a 32-byte base64 key" format "$WICE" genkey
check "wice genpsk prints a 32-byte base64 key" format "$WICE" genpsk

clamped() { # RFC 7748: low 3 bits of byte 0 clear, bit 7 of byte 31 clear, bit 6 set
	local b
	for _ in 1 2 3 4 5 6 7 8; do
		b=$("$WICE" genkey | base64 -d | od -An -tu1 -v | tr -s ' \n' ' ')
		set -- $b
		[ $(($1 & 7)) = 0 ] && [ $((${32} & 128)) = 0 ] && [ $((${32} & 64)) = 64 ] || return 1
	done
}
check "wice genkey clamps like wg genkey" clamped

distinct() {
	[ "$("$WICE" genkey)" != "$("$WICE" genkey)" ] && [ "$("$WICE" genpsk)" != "$("$WICE" genpsk)" ]
}
check "fresh keys differ" distinct

rejects() {
	! printf 'not-a-key\n' | "$WICE" pubkey 2>/dev/null &&
		! printf '%s\n' "$(wg genkey | cut -c1-43)" | "$WICE" pubkey 2>/dev/null
}
check "wice pubkey rejects a malformed key with an error" rejects

warns() {
	(umask 022 && "$WICE" genkey >"$TMP/open.key" 2>"$TMP/err") &&
		grep -q "world accessible" "$TMP/err" &&
		(umask 077 && "$WICE" genkey >"$TMP/closed.key" 2>"$TMP/err2") && ! [ -s "$TMP/err2" ] &&
		[ "$(stat -c %a "$TMP/closed.key")" = 600 ]
}
check "wice genkey warns about a world-readable key file, like wg" warns

echo "# $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
