#!/bin/sh
# check-exports.sh LIB SONAME API_HEADER
#
# Checks that LIB has the soname SONAME and exports exactly the functions API_HEADER
# declares: a missing one would fail at dlsym in the TypeScript binding, an extra one
# (json_parse, say) could interpose on a real library in the same process.
set -u

lib=$1
want_soname=$2
header=$3

if ! command -v nm >/dev/null 2>&1 || ! command -v readelf >/dev/null 2>&1; then
    echo "check-exports: SKIPPED (needs nm and readelf from binutils)"
    exit 0
fi

soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
if [ "$soname" != "$want_soname" ]; then
    echo "check-exports: FAIL ($lib has soname '$soname', want '$want_soname')"
    exit 1
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# Every defined dynamic symbol, whatever its kind (text, data, weak...).
nm -D --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sort -u >"$tmp/exported"
grep -oE '(^|[ *])nvml[A-Za-z0-9_]+\(' "$header" | sed -E 's/^[ *]//; s/\($//' | sort -u >"$tmp/declared"

if ! diff -u "$tmp/declared" "$tmp/exported" >"$tmp/diff"; then
    echo "check-exports: FAIL ($lib exports differ from $header: - declared only, + exported only)"
    sed -n '3,$p' "$tmp/diff" | grep -E '^[-+]'
    exit 1
fi
echo "check-exports: OK ($(wc -l <"$tmp/exported" | tr -d ' ') nvml* functions, soname $soname)"
