#!/usr/bin/env bash
# libgpushare's overhead as a user measures it (issue 21 item 2), with a method that can see 1%:
# whole processes on the GPU machines run fast or slow by 10-30% at random, so single A/B runs
# cannot. Rounds, each a fresh process per variant in an order rotated round by round; each
# process's time per unit (the median of its short repetitions) divided by the no-library
# process's of the same round; per variant the median of those ratios and a bootstrap 95%
# confidence interval (scripts/gpu/overhead_summary.py). Workloads:
#   loops   one Python process: a small transformer's training loop, and a `transformers` greedy
#           decode loop of a small random Llama-style model at batch 1 and 8 (scripts/gpu/overhead_loops.py)
#   launch  bench_launch launch: empty kernels, best of 9 repetitions of 20,000 (scripts/gpu/bench_launch.cu)
#   alloc   alloc_bench: cuMemAlloc_v2 and cuMemFree_v2 per call, 1 MiB to 1 GiB (scripts/gpu/alloc_bench.c;
#           no budget: what slice swap's VMM-backed allocations cost a program that allocates often)
# WORKLOADS: which, as words (loops, launch, alloc; "both" = loops launch, the default; "all").
# VARIANTS: the variants to run instead of the defaults below (none is always run: the ratios' base),
# e.g. VARIANTS="none mem memswap" WORKLOADS="loops alloc" for slice swap's cost (about 8 minutes).
# Variants (scripts/gpu-variants.sh): none (no library), lib (no limits), mem (GPUSHARE_MEMORY_LIMIT,
# MEM_LIMIT=16Gi), memcompute (and GPUSHARE_COMPUTE_LIMIT=100: the whole gate, never waiting);
# launch rounds also run none2 (no library again: the method's control, whose interval should
# hold 0) and memcompute-NAME for each BASE_LIBS="NAME=PATH" build (before/after a change).
# Budgets (limits set): <= 1% on the loops, <= 2% on empty launches.
#
# After a warm-up process of each kind (not recorded), at least ROUNDS rounds (default 10), more
# while the time budget OVERHEAD_SECONDS (default 460) allows one more (the longest round so far);
# never more than MAX_ROUNDS (30), and never one that would end past HARD_SECONDS (505), so the
# table comes within the device's 9 minutes even when the machine is slower than expected. Prints progress,
# then one table; $OUT/overhead.jsonl holds every run, $OUT/overhead.md the table (rewritten after
# every round, so a run cut short still leaves the table of its rounds), $OUT/stderr.txt
# the failures' last lines. About 8 minutes on an H100 with the defaults.
# BENCH: another launch benchmark printing bench_launch's JSON line (a stand-in to try the harness).
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
loop_variants="none lib mem memcompute"
launch_variants="none lib mem memcompute none2"
for name in "${!other[@]}"; do launch_variants="$launch_variants memcompute-$name"; done
alloc_variants="none mem memswap"
if [ -n "${VARIANTS:-}" ]; then
  for v in $VARIANTS; do case $v in
    none | none2 | lib | nolimit | limit100 | mem | memswap | memcompute) ;;
    memcompute-* | limit100-*) [ -n "${other[${v#*-}]:-}" ] || { echo "VARIANTS: $v names no BASE_LIBS build"; exit 1; } ;;
    *) echo "VARIANTS: unknown variant $v"; exit 1 ;; esac; done
  chosen="none $(echo " $VARIANTS " | sed 's/ none / /g')"
  loop_variants=$chosen launch_variants=$chosen alloc_variants=$chosen
fi
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
have_loops=1
case $workloads in *" loops "*) ;; *) have_loops=0 ;; esac
# LOOP_ARGS: more arguments for overhead_loops.py ("--device cpu --reps 2 ..." tries the harness without a GPU).
read -r -a loop_args <<< "${LOOP_ARGS:-}"
[ "$have_loops" = 1 ] && { python3 -c "import torch, transformers; assert torch.cuda.is_available() or '--device cpu' in '${LOOP_ARGS:-}'" 2> "$OUT/import.err" ||
  { have_loops=0; echo "no PyTorch with CUDA or no transformers: no loop rounds ($(tail -n 1 "$OUT/import.err"))"; }; }
[ -z "$launch_variants" ] || [ -x "$BENCH" ] || { launch_variants=""; echo "no $BENCH: no launch rounds"; }
[ -z "$alloc_variants" ] || [ -x "$ALLOC_BENCH" ] || { alloc_variants=""; echo "no $ALLOC_BENCH: no alloc rounds"; }
[ "$have_loops" = 1 ] || loop_variants=""
echo "workloads:${workloads% }; variants: loops ${loop_variants:-"-"} | launch ${launch_variants:-"-"} | alloc ${alloc_variants:-"-"}"
[ "$have_loops" = 1 ] || [ -n "$launch_variants" ] || [ -n "$alloc_variants" ] || { echo "nothing to run"; exit 1; }

raw=$OUT/overhead.jsonl
: > "$raw"
: > "$OUT/stderr.txt"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false TRANSFORMERS_VERBOSITY=error
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null | head -n 1
python3 -c "import torch, transformers, platform; print('python', platform.python_version(), 'torch', torch.__version__, 'transformers', transformers.__version__)" 2> /dev/null
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; loops pinned: ${pin_loops:-no}, launches pinned: ${pin_launch:-no}"

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

# rotated LIST R: LIST's words, starting at word R mod its length.
rotated() {
  local vs=($1) r=$2 j
  for j in $(seq 0 $((${#vs[@]} - 1))); do echo "${vs[$(( (j + r) % ${#vs[@]} ))]}"; done
}

# Warm-up, not recorded: the first process after the machine starts loads PyTorch's files from disk
# and wakes the GPU, which would make round 1's first variant slow. A round (4 loop processes and
# 5 launch ones) is first estimated at 3 warm-ups (the cold one is slower than the others).
t0=$SECONDS
if [ "$have_loops" = 1 ]; then pin=$pin_loops variant_run none timeout 150 python3 scripts/gpu/overhead_loops.py "${loop_args[@]}" > "$OUT/warmup.json" 2>> "$OUT/stderr.txt"; fi
[ -n "$launch_variants" ] && pin=$pin_launch variant_run none timeout 150 "$BENCH" launch > /dev/null 2>&1
[ -n "$alloc_variants" ] && pin=$pin_launch variant_run none timeout 150 "$ALLOC_BENCH" > /dev/null 2>&1
longest=$(( (SECONDS - t0) * 3 ))
echo "warm-up: $((SECONDS - t0))s"
round=0
while [ "$round" -lt "$max_rounds" ]; do
  elapsed=$SECONDS
  # Past the minimum only while one more round fits the budget; the minimum itself stops short of
  # the device's 9 minutes (540 s) too (HARD_SECONDS), so the table always comes.
  if [ "$round" -ge "$min_rounds" ] && [ $((elapsed + longest)) -gt "$budget" ]; then break; fi
  if [ $((elapsed + longest)) -gt "$hard" ]; then echo "stopping at $round rounds: another would pass ${hard}s"; break; fi
  round=$((round + 1))
  t0=$SECONDS
  order=0
  if [ "$have_loops" = 1 ]; then
    pin=$pin_loops
    for v in $(rotated "$loop_variants" "$round"); do
      record loops "$round" $((order++)) "$v" python3 scripts/gpu/overhead_loops.py "${loop_args[@]}"
    done
  fi
  pin=$pin_launch
  for v in $(rotated "$launch_variants" "$round"); do
    record launch "$round" $((order++)) "$v" "$BENCH" launch
  done
  for v in $(rotated "$alloc_variants" "$round"); do
    record alloc "$round" $((order++)) "$v" "$ALLOC_BENCH"
  done
  took=$((SECONDS - t0))
  # the warm-up's estimate is replaced by the first round's time (a cold first process overstates it)
  if [ "$round" = 1 ] || [ "$took" -gt "$longest" ]; then longest=$took; fi
  echo "round $round: ${took}s (total ${SECONDS}s)"
  # the table so far, in case the run is cut short (the device's time limit)
  OVERHEAD_RESAMPLES=500 python3 scripts/gpu/overhead_summary.py "$raw" > "$OUT/overhead.md" 2>&1
done

# What the gate did in one more limited run (the debug exit line: launches, precise path, credit).
if [ -n "$launch_variants" ] && [[ " $launch_variants " == *" memcompute "* ]]; then
  pin=$pin_launch
  echo "gate, bench_launch at limit 100: $(GPUSHARE_LOG_LEVEL=debug variant_run memcompute "$BENCH" launch 2>&1 | grep 'compute: device' | head -n 1)"
fi
python3 scripts/gpu/overhead_summary.py "$raw" | tee "$OUT/overhead.md"
[ -s "$OUT/stderr.txt" ] && { echo "failures' stderr (last lines):"; head -n 40 "$OUT/stderr.txt"; }
echo "total ${SECONDS}s, $round rounds"
