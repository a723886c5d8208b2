#!/bin/sh
# check_fake_cuda_exports.sh LIB API_HEADER: the fake exports only cu* symbols, and every
# function gs_cuda_api.h declares.
set -eu
lib=$1
api=$2
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" || $2 == "W" || $2 == "D" || $2 == "B" {print $3}' | sort)
bad=$(echo "$exported" | grep -v '^cu' || true)
if [ -n "$bad" ]; then
    echo "fake-cuda-check-exports: FAIL: non-cu* exports: $bad"
    exit 1
fi
missing=$(sed -n 's/^CUresult \([A-Za-z0-9_]*\)(.*/\1/p' "$api" | sort | comm -23 - "$(printf '%s\n' "$exported" > "${TMPDIR:-/tmp}/fake_cuda_exports.$$"; echo "${TMPDIR:-/tmp}/fake_cuda_exports.$$")")
rm -f "${TMPDIR:-/tmp}/fake_cuda_exports.$$"
if [ -n "$missing" ]; then
    echo "fake-cuda-check-exports: FAIL: declared but not exported: $missing"
    exit 1
fi
echo "fake-cuda-check-exports: OK ($(echo "$exported" | wc -l) cu* symbols, all of gs_cuda_api.h)"
