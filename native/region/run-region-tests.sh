#!/bin/sh
# Runs each region test program given, then prints one summary; exits 1 if any failed.
# A ThreadSanitizer binary (*_tsan) that cannot start on this kernel's address layout is
# retried without address-space randomisation (setarch -R), as TSan asks.
passed=0
failed=0
failed_names=""
for t in "$@"; do
    name=$(basename "$t")
    echo "== $name"
    "$t"
    rc=$?
    case "$name" in
    *_tsan)
        if [ "$rc" -ne 0 ] && command -v setarch >/dev/null 2>&1; then
            echo "   (retrying under setarch -R)"
            setarch "$(uname -m)" -R "$t"
            rc=$?
        fi
        ;;
    esac
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names="$failed_names $name(exit $rc)"
    fi
done
echo
if [ "$failed" -eq 0 ]; then
    echo "region tests: $passed passed, 0 failed: PASS"
    exit 0
fi
echo "region tests: $passed passed, $failed failed:$failed_names: FAIL"
exit 1
