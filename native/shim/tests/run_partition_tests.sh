#!/bin/sh
# run_partition_tests.sh ROOT CC: GPUSHARE_ISOLATION=sm-partition against the fake libcuda
# (ASan+UBSan shim and fake), one partition_test run per case; PASS/FAIL lines, a summary,
# exit 1 on any failure. See native/shim/TESTING.md ("SM partitions").
set -u
ROOT=$1
CC=${2:-cc}
B=$ROOT/build/native
T=$B/shim/tests
A=$B/fake/asan
PRELOAD="$($CC -print-file-name=libasan.so):$B/asan/libgpushare.so"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
H100='{"contextBytes": 4194304}'
# An H200 as its driver splits it: 15 groups of 8 of its 132 SMs (measured 2026-12-01)
H200='{"contextBytes": 4194304, "devices": [{"name": "NVIDIA H200", "smGroupable": 120}]}'
# Two devices; an Ampere-like split granularity (groups of 4, step 2) on a cc 9.0 part, so
# the rounding follows what the driver reports, not a constant.
TWO='{"contextBytes": 4194304, "devices": [{}, {"multiprocessorCount": 108, "smPartitionMin": 4, "smCoscheduledAlignment": 2}]}'
AMPERE='{"contextBytes": 4194304, "devices": [{"name": "NVIDIA A100-SXM4-80GB", "computeCapability": [8, 0], "multiprocessorCount": 108}]}'
OLD_DRIVER='{"contextBytes": 4194304, "driverVersion": 12030}'
NVML2=$WORK/nvml2.json # the fake NVML (which measures contexts) with the same two devices
echo '{"devices": [{}, {}]}' >"$NVML2"
pass=0
fail=0
n=0

# run NAME FAKE_JSON [VAR=VALUE ...] -- ARGS...: GPUSHARE_ISOLATION=sm-partition unless overridden
run() {
    name=$1; fake=$2; shift 2
    vars=""
    while [ "$1" != "--" ]; do vars="$vars $1"; shift; done
    shift
    n=$((n + 1))
    if env GPUSHARE_ISOLATION=sm-partition GPUSHARE_MEMORY_LIMIT=64Mi GPUSHARE_FAKE_CUDA="$fake" \
        GPUSHARE_REGION="$WORK/region-$n" GPUSHARE_FAKE_CUDA_LAUNCH_LOG="$WORK/launch-$n" $vars \
        LD_LIBRARY_PATH="$A:$B/asan" LD_PRELOAD="$PRELOAD" ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$T/partition_test" "$@" >"$WORK/out" 2>"$WORK/err"; then
        pass=$((pass + 1)); echo "PASS $name"
    else
        fail=$((fail + 1)); echo "FAIL $name"; sed 's/^/    /' "$WORK/out" "$WORK/err" | head -40
    fi
}
# expect_lines NAME PATTERN COUNT: the last run's stderr has COUNT lines matching PATTERN
expect_lines() {
    got=$(grep -c "$2" "$WORK/err")
    if [ "$got" = "$3" ]; then
        pass=$((pass + 1)); echo "PASS $1"
    else
        fail=$((fail + 1)); echo "FAIL $1: $got lines match, want $3"; sed 's/^/    /' "$WORK/err"
    fi
}

# compute % x 132 SMs, to the nearest multiple of 8 (Hopper's groups): 13.2 -> 16, 33 -> 32,
# 66 -> 64, 99 -> 96, 118.8 -> 120; then 1% -> the smallest group, 8.
for mode in direct procaddr; do
    for case in 10:16 25:32 50:64 75:96 90:120 1:8; do
        pct=${case%:*}; sms=${case#*:}
        run "primary context = $pct% partition ($sms of 132 SMs) $mode" "$H100" GPUSHARE_COMPUTE_LIMIT=$pct -- sms $mode "$sms"
    done
done
run "HAMi's CUDA_DEVICE_SM_LIMIT=50" "$H100" CUDA_DEVICE_SM_LIMIT=50 -- sms direct 64
run "GPUSHARE_COMPUTE_LIMIT wins over CUDA_DEVICE_SM_LIMIT" "$H100" CUDA_DEVICE_SM_LIMIT=50 GPUSHARE_COMPUTE_LIMIT=25 -- sms direct 32
# Per device: 30% of 132 = 39.6 -> 40; 33% of 108 in groups of 4, step 2 = 35.64 -> 36.
run "per device: device 0 at 30% (40 SMs)" "$TWO" GPUSHARE_FAKE_NVML="$NVML2" GPUSHARE_COMPUTE_LIMIT=0=30,1=33 -- sms direct 40 0
run "per device: device 1 at 33% of 108, step 2 (36 SMs)" "$TWO" GPUSHARE_FAKE_NVML="$NVML2" GPUSHARE_COMPUTE_LIMIT=0=30,1=33 -- sms direct 36 1
run "per device: CUDA_DEVICE_SM_LIMIT_1=10 (10.8 of 108 -> 10)" "$TWO" GPUSHARE_FAKE_NVML="$NVML2" CUDA_DEVICE_SM_LIMIT_1=10 -- sms direct 10 1
run "per device: a device without a limit is whole" "$TWO" GPUSHARE_FAKE_NVML="$NVML2" GPUSHARE_COMPUTE_LIMIT=1=33 -- whole direct 132
# Placement: GPUSHARE_SM_OFFSET puts the partition that many SMs into the driver's split
# order (disjoint offsets: disjoint SMs); without it every process takes the first SMs.
run "no GPUSHARE_SM_OFFSET: the first 64 SMs" "$H100" GPUSHARE_COMPUTE_LIMIT=50 -- sms direct 64 0 0
run "GPUSHARE_SM_OFFSET=64: SMs 64-127" "$H100" GPUSHARE_COMPUTE_LIMIT=50 GPUSHARE_SM_OFFSET=64 -- sms direct 64 0 64
run "GPUSHARE_SM_OFFSET=32 at 75%: SMs 32-127" "$H100" GPUSHARE_COMPUTE_LIMIT=75 GPUSHARE_SM_OFFSET=32 -- sms procaddr 96 0 32
run "GPUSHARE_SM_OFFSET per device (1=40, 108 SMs in 4s)" "$TWO" GPUSHARE_FAKE_NVML="$NVML2" GPUSHARE_COMPUTE_LIMIT=1=33 \
    GPUSHARE_SM_OFFSET=0=64,1=40 -- sms direct 36 1 40
run "GPUSHARE_SM_OFFSET=72 at 50% (past 132): refused" "$H100" GPUSHARE_COMPUTE_LIMIT=50 GPUSHARE_SM_OFFSET=72 -- refuse direct
expect_lines "GPUSHARE_SM_OFFSET=72: one line" '^gpushare:' 1
expect_lines "GPUSHARE_SM_OFFSET=72: says why" "cannot be partitioned: GPUSHARE_SM_OFFSET=72 with 64 SMs: both must be multiples of the 8-SM group and fit in 132 SMs" 1
run "GPUSHARE_SM_OFFSET=4 (not a group boundary): refused" "$H100" GPUSHARE_COMPUTE_LIMIT=50 GPUSHARE_SM_OFFSET=4 -- refuse direct
expect_lines "GPUSHARE_SM_OFFSET=4: says why" "GPUSHARE_SM_OFFSET=4 with 64 SMs: both must be multiples of the 8-SM group" 1
run "H200 groups: GPUSHARE_SM_OFFSET=64 at 40%: SMs 64-119" "$H200" GPUSHARE_COMPUTE_LIMIT=40 GPUSHARE_SM_OFFSET=64 -- sms direct 56 0 64
run "H200 groups: GPUSHARE_SM_OFFSET=64 at 50% (past the 120 grouped): refused" "$H200" GPUSHARE_COMPUTE_LIMIT=50 GPUSHARE_SM_OFFSET=64 -- refuse direct
expect_lines "H200 groups: says why" "GPUSHARE_SM_OFFSET=64: the driver splits 132 SMs into 15 groups of 8" 1

for mode in direct procaddr; do
    run "retain/release/reset counts, memory accounting $mode" "$H100" GPUSHARE_COMPUTE_LIMIT=50 -- refcount $mode 64
    run "cuCtxCreate/cuCtxDestroy $mode" "$H100" GPUSHARE_COMPUTE_LIMIT=25 -- create $mode 32
    run "the runtime's own primary context made current $mode" "$H100" GPUSHARE_COMPUTE_LIMIT=75 -- runtime $mode 96
done
run "time-slice mode: no partition (control)" "$H100" GPUSHARE_ISOLATION=time-slice GPUSHARE_COMPUTE_LIMIT=50 -- whole direct 132
run "sm-partition without a compute limit: whole device" "$H100" -- whole direct 132
run "100%: whole device" "$H100" GPUSHARE_COMPUTE_LIMIT=100 -- whole direct 132

REFUSED='^gpushare: GPUSHARE_ISOLATION=sm-partition: device 0 cannot be partitioned: '
run "compute capability 8.0: refused" "$AMPERE" GPUSHARE_COMPUTE_LIMIT=50 -- refuse direct
expect_lines "compute capability 8.0: one line" "${REFUSED}green-context SM partitions need compute capability >= 9.0 (Hopper), this GPU is 8.0" 1
expect_lines "compute capability 8.0: no other line" '^gpushare:' 1
run "driver 12.3: refused" "$OLD_DRIVER" GPUSHARE_COMPUTE_LIMIT=50 -- refuse procaddr
expect_lines "driver 12.3: one line" "${REFUSED}green contexts need CUDA driver >= 12.4, this driver is 12.3" 1
run "compute capability 8.0, time-slice mode: runs (control)" "$AMPERE" GPUSHARE_ISOLATION=time-slice GPUSHARE_COMPUTE_LIMIT=50 -- whole direct 108

echo "partition tests: $pass passed, $fail failed"
[ "$fail" = 0 ] && echo "PASS" || echo "FAIL"
[ "$fail" = 0 ]
