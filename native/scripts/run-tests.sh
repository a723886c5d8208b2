#!/bin/sh
# run-tests.sh PROGRAM[@LIBRARY]...
#
# Runs each test program, with the library after '@' as its argv[1] (the program dlopens
# it by that path), with AddressSanitizer, LeakSanitizer and UBSan findings fatal. Prints
# each program's summary line (its whole output when it fails) and ends with one
# PASS/FAIL line; exit status 1 when any run failed.
set -u

# Tests set GPUSHARE_FAKE_NVML themselves; an inherited value would change their machines.
unset GPUSHARE_FAKE_NVML
ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS UBSAN_OPTIONS

log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT
runs=0
failures=0
failed=""
for run in "$@"; do
    program=${run%%@*}
    library=""
    case $run in *@*) library=${run#*@} ;; esac
    runs=$((runs + 1))
    if "$program" ${library:+"$library"} >"$log" 2>&1; then
        tail -n 1 "$log"
    else
        status=$?
        failures=$((failures + 1))
        failed="$failed $(basename "$program")${library:+($(basename "$(dirname "$library")"))}"
        cat "$log"
        echo "$(basename "$program"): exited with status $status${library:+ ($library)}"
    fi
done

if [ "$runs" -eq 0 ]; then
    echo "native tests: FAIL (no test programs given)"
    exit 1
fi
if [ "$failures" -ne 0 ]; then
    echo "native tests: FAIL ($failures of $runs runs failed:$failed)"
    exit 1
fi
echo "native tests: PASS ($runs runs, sanitizers clean)"
