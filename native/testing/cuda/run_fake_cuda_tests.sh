#!/bin/sh
# run_fake_cuda_tests.sh TEST_DIR ASAN_LIB_DIR WORK_DIR: runs every test program against
# the sanitized fake and ends with a PASS/FAIL summary; exits non-zero on any failure.
set -u
tests=$1
libdir=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
pass=0
fail=0
failed=""
for t in "$tests"/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    if LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" FAKE_CUDA_TEST_WORK="$work" \
        ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" "$t"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        failed="$failed $name"
    fi
done
if [ $fail -eq 0 ]; then
    echo "fake-cuda-test: PASS ($pass programs)"
else
    echo "fake-cuda-test: FAIL ($fail of $((pass + fail)) programs:$failed)"
    exit 1
fi
