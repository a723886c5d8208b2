#!/usr/bin/env bash
# Real-GPU checks of libgpushare's compute isolation (issue 4, time-slice mode). Needs an NVIDIA
# GPU, PyTorch, build/native/libgpushare.so (npm run build: plain C) and build/gpu/compute_burn +
# build/gpu/bench_launch (bash scripts/gpu-build.sh, or built here when nvcc is present).
# Prints markdown tables (scripts/gpu/compute_summary.py); raw JSON lines go to $OUT.
#
#   SECS=5 bash scripts/gpu-check-compute.sh          full run, about 6 minutes
#   QUICK=1 SECS=2 bash scripts/gpu-check-compute.sh  a smoke run of a few cases
#   PARTS="mps launch" PROGRAMS=burn TARGETS="25 50" ... a subset (parts: gpushare priority
#                                                      launch mps; CLOCKS=1 samples the SM clock)
#   GATE=1 bash scripts/gpu-check-compute.sh          the gate's own cost only, about 2 minutes:
#                                                      PARTS=launch, LAUNCH_VARIANTS="none 100
#                                                      nolimit", LAUNCH_ROUNDS=11 (each run
#                                                      best of 9 repetitions; the variants'
#                                                      order rotates round by round); prints each
#                                                      variant's ratio to the no-library run of
#                                                      the same round (median, range). Run it on
#                                                      a quiet GPU: nothing else on the machine.
#
# Never changes GPU settings. MPS (for the comparison) runs with a private pipe and log
# directory and is stopped at the end; the compute mode is left as it is.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-compute}
SECS=${SECS:-5}
QUICK=${QUICK:-0}
GATE=${GATE:-0}
if [ "$GATE" = 1 ]; then
  PARTS=launch LAUNCH_VARIANTS=${LAUNCH_VARIANTS:-"none 100 nolimit"} LAUNCH_ROUNDS=${LAUNCH_ROUNDS:-11}
fi
mkdir -p "$OUT"
WORK=$(mktemp -d)
LIB=$PWD/build/native/libgpushare.so
BURN=$PWD/build/gpu/compute_burn
BENCH=$PWD/build/gpu/bench_launch
[ -f "$LIB" ] || { echo "missing $LIB: run npm run build first"; exit 1; }
if [ ! -x "$BURN" ] || [ ! -x "$BENCH" ]; then
  mkdir -p build/gpu
  nvcc -O2 -arch=sm_90 -o "$BURN" scripts/gpu/compute_burn.cu || { echo "compute_burn: build failed"; exit 1; }
  nvcc -O2 -arch=sm_90 -o "$BENCH" scripts/gpu/bench_launch.cu || echo "bench_launch: build failed"
fi
RES=$OUT/compute.jsonl
: > "$RES"
export PYTHONUNBUFFERED=1
# A private board directory: only this script's processes meet there.
export GPUSHARE_COMPUTE_DIR=$WORK/board
mkdir -p "$GPUSHARE_COMPUTE_DIR"
T0=$(date +%s)

nvidia-smi --query-gpu=name,driver_version,memory.total,compute_mode --format=csv,noheader | tee "$OUT/device.txt"
ITERS=$("$BURN" calibrate 2 | tee "$OUT/calibrate.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["iters"])')
echo "compute_burn: $(cat "$OUT/calibrate.json")"
# The grid of the unlimited device, for every run (MPS clients see fewer SMs).
BURN_BLOCKS=$(python3 -c 'import json,sys; print(8 * json.load(open(sys.argv[1]))["sms"])' "$OUT/calibrate.json")
export BURN_BLOCKS

# record SUITE PROGRAM CASE TARGET FILE [EXTRA_JSON]: one line of $RES
record() {
  python3 - "$@" >> "$RES" <<'PY'
import json, sys
suite, program, case, target, path = sys.argv[1:6]
extra = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
try:
    result = json.loads(open(path).read().strip().splitlines()[-1])
except Exception as e:
    result = {"error": f"no result: {e}"}
print(json.dumps({"suite": suite, "program": program, "case": case, "target": int(target), "result": result, **extra}))
PY
}

# cmd PROGRAM: the command line of a throughput run
cmd() {
  case $1 in
    burn) echo "$BURN burn $SECS $ITERS" ;;
    torch) echo "python3 scripts/gpu/compute_torch.py burn $SECS" ;;
  esac
}
lead() { [ "$1" = torch ] && echo 12 || echo 3; } # seconds to START_AT: startup, warm-up

# one SUITE PROGRAM CASE TARGET ENV...: a run alone (CLOCKS=1: with the mean SM clock and power)
one() {
  local suite=$1 prog=$2 case=$3 target=$4; shift 4
  local f=$WORK/$suite-$prog-${case// /_}.json pc="" extra="{}"
  if [ "${CLOCKS:-0}" = 1 ]; then
    nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader,nounits -lms 250 > "$f.clk" 2>/dev/null &
    pc=$!
  fi
  env "$@" $(cmd "$prog") > "$f" 2> "$f.err"
  if [ -n "$pc" ]; then
    kill "$pc" 2>/dev/null; wait "$pc" 2>/dev/null
    # the busiest half of the samples: the measured loop, not start-up
    extra=$(python3 -c 'import json,sys
v=[tuple(map(float,l.split(","))) for l in open(sys.argv[1]) if l.count(",")==1]
v=sorted(v,key=lambda x:-x[1])[:max(1,len(v)//2)]
print(json.dumps({"sm_mhz":round(sum(x[0] for x in v)/len(v)),"power_w":round(sum(x[1] for x in v)/len(v))}))' "$f.clk" 2>/dev/null || echo "{}")
  fi
  record "$suite" "$prog" "$case" "$target" "$f" "$extra"
  tail -n 2 "$f.err" | sed "s/^/  [$suite $prog $case stderr] /"
}

# pair SUITE PROGRAM A B ENVFN: two runs at once, limits A and B (ENVFN N prints the env)
pair() {
  local suite=$1 prog=$2 a=$3 b=$4 envfn=$5
  local at fa=$WORK/$suite-$prog-pair-$a-$b-a.json fb=$WORK/$suite-$prog-pair-$a-$b-b.json
  at=$(python3 -c "import time; print(time.time() + $(lead "$prog"))")
  env START_AT="$at" $($envfn "$a") $(cmd "$prog") > "$fa" 2> "$fa.err" &
  local pa=$!
  env START_AT="$at" $($envfn "$b") $(cmd "$prog") > "$fb" 2> "$fb.err"
  wait $pa
  record "$suite" "$prog" "pair $a+$b ($a)" "$a" "$fa"
  record "$suite" "$prog" "pair $a+$b ($b)" "$b" "$fb"
}
gs_env() { echo "LD_PRELOAD=$LIB GPUSHARE_COMPUTE_LIMIT=$1"; }
mps_env() { echo "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=$1"; }

TARGETS=${TARGETS-"10 25 50 75 90"}
PAIRS=${PAIRS-"30:70 50:50"}
PROGRAMS=${PROGRAMS:-"burn torch"}
PARTS=${PARTS:-"gpushare priority launch mps"}
if [ "$QUICK" = 1 ]; then TARGETS="30"; PAIRS="30:70"; PROGRAMS="burn"; fi
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

[ "$GATE" = 1 ] || for prog in $PROGRAMS; do
  one baseline "$prog" "unlimited" 0
done
part gpushare && for prog in $PROGRAMS; do
  for t in $TARGETS; do
    one gpushare "$prog" "alone $t" "$t" LD_PRELOAD="$LIB" GPUSHARE_COMPUTE_LIMIT="$t"
  done
  for p in $PAIRS; do
    pair gpushare "$prog" "${p%%:*}" "${p##*:}" gs_env
  done
done
echo "gpushare runs done at +$(( $(date +%s) - T0 )) s"

# Priority: a latency job (a request of 4 kernels of ~2 ms every 50 ms) alone, beside a
# low-priority burner under the library, and beside a plain burner without it.
lat() { # lat CASE ENV_HIGH ENV_LOW (ENV_LOW "none": alone); both loops start together
  local case=$1 high=$2 low=$3 f=$WORK/lat-${1// /_}.json g=$WORK/lat-${1// /_}-low.json
  local pl="" at
  at=$(python3 -c "import time; print(time.time() + 3)")
  if [ "$low" != none ]; then
    env START_AT="$at" $low "$BURN" burn "$SECS" "$ITERS" > "$g" 2> "$g.err" &
    pl=$!
  fi
  env START_AT="$at" $high "$BURN" latency "$SECS" "$ITERS" 4 50 > "$f" 2> "$f.err"
  [ -n "$pl" ] && wait "$pl"
  record priority burn "$case" 0 "$f"
  [ -n "$pl" ] && record priority burn "$case (low job)" 0 "$g" "{\"pair_of\": \"$case\"}"
}
if part priority; then
  lat "high alone (library)" "LD_PRELOAD=$LIB GPUSHARE_PRIORITY=high" none
  lat "high + low beside (library)" "LD_PRELOAD=$LIB GPUSHARE_PRIORITY=high" "LD_PRELOAD=$LIB GPUSHARE_PRIORITY=low"
  lat "high + plain burner beside (no library)" "X=1" "X=1"
fi
echo "priority runs done at +$(( $(date +%s) - T0 )) s"

# Launch overhead: bench_launch (empty kernels, best of 9 repetitions each) alternated.
# The empty-kernel loop keeps the GPU busy nearly all the time, so limits of 50 and 90 throttle
# it (at the limit, not under it); a limit of 100 runs the whole gate and never throttles: the
# gate's own cost.
if part launch && [ -x "$BENCH" ]; then
  pin=""; command -v taskset > /dev/null && pin="taskset -c 1"
  read -r -a VARIANTS <<< "${LAUNCH_VARIANTS:-none nolimit 100 90 50}"
  for round in $(seq "${LAUNCH_ROUNDS:-3}"); do
    for j in "${!VARIANTS[@]}"; do
      # rotate the order round by round: warm caches and clock ramps favour no variant
      w=${VARIANTS[$(( (j + round - 1) % ${#VARIANTS[@]} ))]}
      case $w in
        none) v="no library|X=1" ;;
        nolimit) v="library, no limit|LD_PRELOAD=$LIB" ;;
        *) v="library, GPUSHARE_COMPUTE_LIMIT=$w|LD_PRELOAD=$LIB GPUSHARE_COMPUTE_LIMIT=$w" ;;
      esac
      f=$WORK/launch-$round-${RANDOM}.json
      env ${v#*|} $pin "$BENCH" > "$f" 2> "$f.err"
      record launch bench_launch "${v%%|*}" 0 "$f" "{\"round\": $round}"
    done
    [ "$QUICK" = 1 ] && break
  done
fi
echo "launch runs done at +$(( $(date +%s) - T0 )) s"

# NVIDIA MPS with CUDA_MPS_ACTIVE_THREAD_PERCENTAGE, same programs, no library.
export CUDA_MPS_PIPE_DIRECTORY=$WORK/mps-pipe CUDA_MPS_LOG_DIRECTORY=$WORK/mps-log
mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
if ! part mps; then
  :
elif command -v nvidia-cuda-mps-control > /dev/null && nvidia-cuda-mps-control -d; then
  trap 'echo quit | nvidia-cuda-mps-control' EXIT
  sleep 1
  # is MPS really serving clients? (the server list and the logs go to $OUT)
  CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=50 "$BURN" calibrate 2 > "$OUT/mps-calibrate.json" 2>&1
  echo get_server_list | nvidia-cuda-mps-control > "$OUT/mps-servers.txt" 2>&1
  echo "MPS: servers $(tr '\n' ' ' < "$OUT/mps-servers.txt"); client at 50%: $(cat "$OUT/mps-calibrate.json")"
  for prog in $PROGRAMS; do
    for t in $TARGETS; do
      one mps "$prog" "alone $t" "$t" CUDA_MPS_ACTIVE_THREAD_PERCENTAGE="$t"
    done
    for p in $PAIRS; do
      pair mps "$prog" "${p%%:*}" "${p##*:}" mps_env
    done
  done
  echo quit | nvidia-cuda-mps-control
  trap - EXIT
  sleep 1
  cp "$CUDA_MPS_LOG_DIRECTORY"/*.log "$OUT/" 2>/dev/null
else
  echo "MPS: nvidia-cuda-mps-control unavailable or failed to start; no comparison"
fi
unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
echo "all done at +$(( $(date +%s) - T0 )) s"

python3 scripts/gpu/compute_summary.py "$RES" | tee "$OUT/table.md"
cat "$WORK"/*.err 2>/dev/null | grep -v '^$' | sort | uniq -c | sort -rn | head -20 > "$OUT/stderr-digest.txt"
rm -rf "$WORK"
