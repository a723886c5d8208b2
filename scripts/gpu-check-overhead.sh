#!/usr/bin/env bash
# libgpushare's overhead as a user measures it (issue 21 item 2), with a method that can see 1%.
# The GPU machines' speed drifts over seconds (a VM: CPU clock, neighbours): whole processes run
# one after another differ by 10-30%, and one process's short repetitions by 5-10%, so pairing
# whole processes cannot show 1%. Here the pairs are repetitions, milliseconds apart:
#
# Lockstep rounds (scripts/gpu/lockstep.py; the loops and launch workloads). Each round starts its
# processes TOGETHER: one no-library control and one per variant, each with its own CUDA context.
# Each warms up (not measured), then they take turns through pipes: one runs a short repetition
# (ending in a synchronize) while every other blocks on its pipe, so only one uses the GPU at a
# time. Per workload the turns go C v1 C v2 C v3 ... C (C the control, the variants' order rotated
# by round and cycle), PAIRS cycles after one warm-up cycle; a variant's repetition is paired with
# the control's just before or just after it, alternately (a steady drift cancels). The round's
# ratio per variant is the median of its pairs' ratios: a pair's two repetitions run at the same
# machine speed, so under no difference its log-ratio is symmetric about 0 whatever the noise's
# shape, and the median is unbiased and ignores the odd stalled repetition (a ratio of sums is
# moved by one stall). Across rounds, as before: per variant the median of the rounds' ratios and a
# bootstrap 95% confidence interval (scripts/gpu/overhead_summary.py); rounds stay the unit since
# what differs between processes (memory layout, where a context lands) averages only over more of
# them. Things that could bias a pair, and why they do not:
#   - a hand-over costs a GPU context switch and colder CPU caches: per cycle every process runs
#     once, in an order drawn per cycle (never one process twice in a row), so every repetition,
#     the control's and the variants', runs right after another process's, each after a
#     different one from cycle to cycle, and the control runs before a variant in some cycles
#     and after it in others; no process has a special place (session 26's first H100 pilot put
#     the control between every two variant turns, and its none2 read -26 to -29% on decode at
#     batch 1 in both rounds: the roles differed; not yet rerun on a GPU);
#   - the CPU: every process of a round is pinned to the same CPU set (loops: cores 2-7 where there
#     are 8, launches: core 1), and a waiting process sleeps in read(). Whatever a waiting process
#     did in the background would land in the repetitions of the one running, the control's too,
#     and hide a cost: the library starts no periodic thread (its socket threads block in accept),
#     and PyTorch's CPU threads are idle once a repetition's synchronize returns;
#   - the library in a variant process sees the other processes' contexts on the GPU. memcompute's
#     gate (limit 100%) governs only its own process: each governed variant gets its own board,
#     so with no other governed process on its board it never waits, as in a user's lone job.
#   - the none2 variant (no library again, paired like every variant) is the method's own
#     control: its interval must hold 0. PyTorch's OpenMP threads may spin after a repetition
#     (OMP_WAIT_POLICY): open until a GPU run's none2 says.
# Workloads:
#   loops   scripts/gpu/overhead_loops.py --lockstep: a small transformer's training loop (LOOP_STEPS
#           steps a repetition, default 20), a `transformers` greedy decode loop of a small random
#           Llama-style model at batch 1 and 8 (32 tokens a repetition); LOOP_PAIRS pairs per
#           variant, workload and round (default 5)
#   launch  bench_launch lockstep: 2,000 empty kernels and a synchronize a repetition, wall and the
#           launching thread's CPU time per launch; LAUNCH_PAIRS pairs (default 40); LAUNCH_GROUPS
#           lockstep groups per round (default 1; each counts as a round in the table: what differs
#           between processes averages over more of them, for a few seconds each)
#   alloc   alloc_bench: cuMemAlloc_v2 and cuMemFree_v2 per call, 1 MiB to 1 GiB (scripts/gpu/alloc_bench.c;
#           whole processes one after another, as before; no budget: what slice swap's VMM-backed
#           allocations cost a program that allocates often)
# WORKLOADS: which, as words (loops, launch, alloc; "both" = loops launch, the default; "all").
# VARIANTS: the variants to run instead of the defaults below (none, the control, is always run),
# e.g. VARIANTS="none2 mem memswap" WORKLOADS="loops alloc" for slice swap's cost.
# Variants (scripts/gpu-variants.sh): none (no library), lib (no limits), mem (GPUSHARE_MEMORY_LIMIT,
# MEM_LIMIT=16Gi), memcompute (and GPUSHARE_COMPUTE_LIMIT=100: the whole gate, never waiting),
# none2 (no library again: the method's control, whose interval must hold 0), memcompute-NAME for
# each BASE_LIBS="NAME=PATH" build (before/after a change; launch rounds). Defaults: loops mem
# memcompute none2 (lib costs a fifth more time per round: VARIANTS="lib mem memcompute none2");
# launch lib mem memcompute none2 (+ the BASE_LIBS builds). Budgets (limits set): <= 1% on the
# loops, <= 2% on empty launches.
#
# At least ROUNDS rounds (default 10), more while the time budget OVERHEAD_SECONDS (default 460)
# allows one more (the longest round so far); never more than MAX_ROUNDS (30), and never one that
# would end past HARD_SECONDS (505), so the table comes within the device's 9 minutes even when the
# machine is slower than expected. Prints each round's pair medians as progress, then one table;
# $OUT/overhead.jsonl holds every round (every repetition's time), $OUT/overhead.md the table
# (rewritten after every round, so a run cut short still leaves the table of its rounds),
# $OUT/stderr.txt the failures' last lines. About 7-8 minutes on an H100 with the defaults.
# LAUNCH_WORKER / LOOP_WORKER: other lockstep worker commands (words), e.g. LAUNCH_WORKER="python3
# scripts/gpu/lockstep.py busy --slower lib=1.05" tries the harness without a GPU (its numbers are
# a busy loop's, not the library's). LOOP_ARGS: more arguments for overhead_loops.py.
# Needs build/native/libgpushare.so (npm run build) and build/gpu/bench_launch (bash
# scripts/gpu-build.sh; built here if nvcc is present); PyTorch and transformers on the GPU machine.
# Device carry: ["build/gpu", "build/native/libgpushare.so"] (+ the BASE_LIBS files); build/gpu/alloc_bench
# is built here when missing and gcc is present (gcc -Inative/include ... build/native/fake/libcuda.so.1).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-overhead}
mkdir -p "$OUT"
LIB=$PWD/build/native/libgpushare.so
BENCH=${BENCH:-$PWD/build/gpu/bench_launch}
[ -f "$LIB" ] || { echo "missing $LIB: run npm run build first"; exit 1; }
# a bench_launch from before its lockstep mode (a stale carried build/gpu) is rebuilt where nvcc is
if [ -x "$BENCH" ] && ! grep -q LOCKSTEP_FDS "$BENCH"; then
  echo "$BENCH has no lockstep mode (built from an older scripts/gpu/bench_launch.cu)"
  command -v nvcc > /dev/null && rm -f "$BENCH"
fi
if [ ! -x "$BENCH" ] && command -v nvcc > /dev/null; then
  mkdir -p build/gpu && nvcc -O2 -o "$BENCH" scripts/gpu/bench_launch.cu || echo "bench_launch: build failed"
fi
ALLOC_BENCH=${ALLOC_BENCH:-$PWD/build/gpu/alloc_bench}
if [ ! -x "$ALLOC_BENCH" ] && command -v gcc > /dev/null && [ -f build/native/fake/libcuda.so.1 ]; then
  mkdir -p build/gpu && gcc -O2 -Wall -Inative/include -o "$ALLOC_BENCH" scripts/gpu/alloc_bench.c build/native/fake/libcuda.so.1 ||
    echo "alloc_bench: build failed"
fi
. scripts/gpu-variants.sh
min_rounds=${ROUNDS:-10} max_rounds=${MAX_ROUNDS:-30} budget=${OVERHEAD_SECONDS:-460} hard=${HARD_SECONDS:-505}
loop_pairs=${LOOP_PAIRS:-5} launch_pairs=${LAUNCH_PAIRS:-40} launch_groups=${LAUNCH_GROUPS:-1}
loop_variants="mem memcompute none2"
launch_variants="lib mem memcompute none2"
for name in "${!other[@]}"; do launch_variants="$launch_variants memcompute-$name"; done
alloc_variants="mem memswap"
if [ -n "${VARIANTS:-}" ]; then
  for v in $VARIANTS; do case $v in
    none | none2 | lib | nolimit | limit100 | mem | memswap | memcompute) ;;
    memcompute-* | limit100-*) [ -n "${other[${v#*-}]:-}" ] || { echo "VARIANTS: $v names no BASE_LIBS build"; exit 1; } ;;
    *) echo "VARIANTS: unknown variant $v"; exit 1 ;; esac; done
  chosen=$(echo " $VARIANTS " | sed 's/ none / /g')
  loop_variants=$chosen launch_variants=$chosen alloc_variants=$chosen
fi
for n in "$loop_pairs" "$launch_pairs"; do [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 2 ] || { echo "LOOP_PAIRS and LAUNCH_PAIRS: a number, at least 2"; exit 1; }; done
[[ $launch_groups =~ ^[1-9][0-9]*$ ]] || { echo "LAUNCH_GROUPS: a number, at least 1"; exit 1; }
workloads=" ${WORKLOADS:-both} "
workloads=${workloads/ both / loops launch }
workloads=${workloads/ all / loops launch alloc }
for w in $workloads; do case $w in loops | launch | alloc) ;; *) echo "WORKLOADS: unknown workload $w (loops, launch, alloc, both, all)"; exit 1 ;; esac; done
case $workloads in *" launch "*) ;; *) launch_variants="" ;; esac
case $workloads in *" alloc "*) ;; *) alloc_variants="" ;; esac
# The loops' process uses a few cores (PyTorch's threads, the driver's); every variant the same ones.
pin_loops=""; [ -n "$pin" ] && [ "$(nproc)" -ge 8 ] && pin_loops="taskset -c 2-7"
pin_launch=$pin
# NO_ASLR=1: every process without address-space randomisation (setarch -R), to see whether the
# whole-process fast and slow modes come from where things land in memory (a diagnosis: it fixes
# each variant's layout, which may then favour one variant throughout).
if [ "${NO_ASLR:-0}" = 1 ] && command -v setarch > /dev/null; then
  pin_loops="setarch $(uname -m) -R $pin_loops" pin_launch="setarch $(uname -m) -R $pin_launch"
fi
# the lockstep workers' commands (LOOP_WORKER / LAUNCH_WORKER: stand-ins, as words)
read -r -a loop_args <<< "${LOOP_ARGS:-}"
if [ -n "${LOOP_WORKER:-}" ]; then read -r -a loop_worker <<< "$LOOP_WORKER"; else
  loop_worker=(python3 scripts/gpu/overhead_loops.py --lockstep --train-steps "${LOOP_STEPS:-20}" "${loop_args[@]}"); fi
if [ -n "${LAUNCH_WORKER:-}" ]; then read -r -a launch_worker <<< "$LAUNCH_WORKER"; else launch_worker=("$BENCH" lockstep 2000); fi
have_loops=1
case $workloads in *" loops "*) ;; *) have_loops=0 ;; esac
# LOOP_ARGS: more arguments for overhead_loops.py ("--device cpu ..." tries the harness without a GPU).
[ "$have_loops" = 1 ] && [ -z "${LOOP_WORKER:-}" ] && { python3 -c "import torch, transformers; assert torch.cuda.is_available() or '--device cpu' in '${LOOP_ARGS:-}'" 2> "$OUT/import.err" ||
  { have_loops=0; echo "no PyTorch with CUDA or no transformers: no loop rounds ($(tail -n 1 "$OUT/import.err"))"; }; }
[ -z "$launch_variants" ] || [ -n "${LAUNCH_WORKER:-}" ] || { [ -x "$BENCH" ] && grep -q LOCKSTEP_FDS "$BENCH"; } ||
  { launch_variants=""; echo "no $BENCH with a lockstep mode: no launch rounds"; }
[ -z "$alloc_variants" ] || [ -x "$ALLOC_BENCH" ] || { alloc_variants=""; echo "no $ALLOC_BENCH: no alloc rounds"; }
[ "$have_loops" = 1 ] || loop_variants=""
# a lockstep round needs a variant beside the control
[ -n "${loop_variants// /}" ] || loop_variants=""
[ -n "${launch_variants// /}" ] || launch_variants=""
[ -n "${alloc_variants// /}" ] && alloc_variants="none $alloc_variants"
echo "workloads:${workloads% }; variants: loops ${loop_variants:-"-"} | launch ${launch_variants:-"-"} | alloc ${alloc_variants:-"-"}"
[ -n "$loop_variants" ] || [ -n "$launch_variants" ] || [ -n "$alloc_variants" ] || { echo "nothing to run"; exit 1; }

raw=$OUT/overhead.jsonl
: > "$raw"
: > "$OUT/stderr.txt"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false TRANSFORMERS_VERBOSITY=error
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null | head -n 1
python3 -c "import torch, transformers, platform; print('python', platform.python_version(), 'torch', torch.__version__, 'transformers', transformers.__version__)" 2> /dev/null
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; loops pinned: ${pin_loops:-no}, launches pinned: ${pin_launch:-no}"
echo "pairs per variant, workload and round: loops $loop_pairs, launch $launch_pairs (x $launch_groups groups)"

# record KIND ROUND ORDER VARIANT CMD...: one fresh process of CMD as VARIANT; appends its JSON line.
record() {
  local kind=$1 round=$2 order=$3 v=$4 t0=$SECONDS line err
  shift 4
  err=$(mktemp)
  line=$(variant_run "$v" timeout 150 "$@" 2> "$err" | grep '^{' | tail -n 1)
  if [ -z "$line" ]; then
    line='{"error": "no result"}'
    { echo "== $kind $v round $round"; tail -n 5 "$err"; } >> "$OUT/stderr.txt"
  fi
  rm -f "$err"
  echo "{\"kind\": \"$kind\", \"round\": $round, \"order\": $order, \"variant\": \"$v\", \"wall_s\": $((SECONDS - t0)), \"data\": $line}" >> "$raw"
}

# lockstep KIND ROUND WORKLOADS PAIRS "VARIANTS" WORKER...: one lockstep round (scripts/gpu/lockstep.py):
# the control (none) and one process per variant started together, each as its variant (pinned
# alike: $pin), each governed variant with a board of its own; appends the round's JSON line and
# prints its pair medians.
lockstep() {
  local kind=$1 round=$2 wl=$3 pairs=$4 vs=$5 t0=$SECONDS line err v args=()
  shift 5
  for v in none $vs; do
    [ "${#args[@]}" = 0 ] || args+=(:::)
    mkdir -p "$board/$kind-$v"
    board=$board/$kind-$v variant_argv "$v"
    args+=("$v" "${vargv[@]}" "$@")
  done
  err=$(mktemp)
  line=$(timeout 400 python3 scripts/gpu/lockstep.py run --workloads "$wl" --pairs "$pairs" --warmup 1 --timeout 120 --round "$round" "${args[@]}" 2> "$err" | grep '^{' | tail -n 1)
  if [ -z "$line" ] || [[ $line == '{"error"'* ]]; then
    { echo "== $kind lockstep round $round: ${line:-no result}"; tail -n 8 "$err"; } >> "$OUT/stderr.txt"
    [ -n "$line" ] || line='{"error": "no result"}'
    echo "  $kind: failed: $(echo "$line" | head -c 300)"
  else
    echo "  $kind (${vs// /, }; $((SECONDS - t0))s): $(echo "$line" | python3 -c 'import json, sys; print(json.load(sys.stdin)["brief"])')"
  fi
  rm -f "$err"
  echo "{\"kind\": \"$kind\", \"round\": $round, \"mode\": \"lockstep\", \"variants\": \"$vs\", \"wall_s\": $((SECONDS - t0)), \"data\": $line}" >> "$raw"
}

# rotated LIST R: LIST's words, starting at word R mod its length.
rotated() {
  local vs=($1) r=$2 j
  for j in $(seq 0 $((${#vs[@]} - 1))); do echo "${vs[$(( (j + r) % ${#vs[@]} ))]}"; done
}

# No warm-up process: a lockstep round's start-up and its warm-up cycle are not measured, so a cold
# first round (PyTorch's files read from disk, the GPU waking) only takes longer. Before the first
# round the time a round takes is unknown: the first always runs.
longest=0
round=0
while [ "$round" -lt "$max_rounds" ]; do
  elapsed=$SECONDS
  # Past the minimum only while one more round fits the budget; the minimum itself stops short of
  # the device's 9 minutes (540 s) too (HARD_SECONDS), so the table always comes.
  if [ "$round" -ge "$min_rounds" ] && [ $((elapsed + longest)) -gt "$budget" ]; then break; fi
  if [ $((elapsed + longest)) -gt "$hard" ]; then echo "stopping at $round rounds: another would pass ${hard}s"; break; fi
  round=$((round + 1))
  t0=$SECONDS
  echo "round $round:"
  if [ -n "$loop_variants" ]; then
    pin=$pin_loops lockstep loops "$round" train,decode1,decode8 "$loop_pairs" "$loop_variants" "${loop_worker[@]}"
  fi
  if [ -n "$launch_variants" ]; then
    for g in $(seq "$launch_groups"); do
      pin=$pin_launch lockstep launch "$round" launch "$launch_pairs" "$launch_variants" "${launch_worker[@]}"
    done
  fi
  order=0
  pin=$pin_launch
  for v in $(rotated "$alloc_variants" "$round"); do
    record alloc "$round" $((order++)) "$v" "$ALLOC_BENCH"
  done
  took=$((SECONDS - t0))
  # the first round (cold: files read from disk) sets the estimate; later ones raise it only
  if [ "$took" -gt "$longest" ]; then longest=$took; fi
  echo "round $round: ${took}s (total ${SECONDS}s)"
  # the table so far, in case the run is cut short (the device's time limit)
  OVERHEAD_RESAMPLES=500 python3 scripts/gpu/overhead_summary.py "$raw" > "$OUT/overhead.md" 2>&1
done

# What the gate did in one more limited run (the debug exit line: launches, precise path, credit).
if [ -n "$launch_variants" ] && [ -z "${LAUNCH_WORKER:-}" ] && [[ " $launch_variants " == *" memcompute "* ]]; then
  pin=$pin_launch
  echo "gate, bench_launch at limit 100: $(GPUSHARE_LOG_LEVEL=debug variant_run memcompute "$BENCH" launch 2>&1 | grep 'compute: device' | head -n 1)"
fi
python3 scripts/gpu/overhead_summary.py "$raw" | tee "$OUT/overhead.md"
[ -s "$OUT/stderr.txt" ] && { echo "failures' stderr (last lines):"; head -n 40 "$OUT/stderr.txt"; }
echo "total ${SECONDS}s, $round rounds"
