#!/usr/bin/env bash
# Real-GPU checks and benchmarks of libgpushare's memory isolation (issue 3). Runs on a machine
# with an NVIDIA GPU, PyTorch and CuPy; needs build/native/libgpushare.so (built anywhere with
# `npm run build`: plain C, no CUDA toolkit). Prints a table; full JSON lines go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-memory}
mkdir -p "$OUT"
# Per-check files go to a scratch dir; $OUT keeps the results, the table and one stderr digest.
WORK=$(mktemp -d)
LIB=$PWD/build/native/libgpushare.so
[ -f "$LIB" ] || { echo "missing $LIB: run npm run build first"; exit 1; }
results=$OUT/results.jsonl
: > "$results"
export PYTHONUNBUFFERED=1
MEMCHECK=(python3 scripts/gpu/memcheck.py)
run() { # run NAME ENV... -- CMD...: one check in a clean process with the library preloaded
  local name=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  env "${envs[@]}" LD_PRELOAD="$LIB" "$@" 2> "$WORK/$name.err" | tail -n 1 >> "$results" || true
  tail -n 3 "$WORK/$name.err" | sed "s/^/  [$name stderr] /"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
# Test programs: prebuilt here by `bash scripts/gpu-build.sh` (the GPU machine may have no
# toolkit), else built now if it has one.
GPUBIN=$PWD/build/gpu
if [ ! -x "$GPUBIN/driver_fill" ] || [ ! -x "$GPUBIN/bench_launch" ]; then
  mkdir -p "$GPUBIN"
  cudalib=$(ldconfig -p | awk '/libcuda.so.1 /{print $NF; exit}')
  gcc -O2 -I/usr/local/cuda/include scripts/gpu/driver_fill.c -o "$GPUBIN/driver_fill" "$cudalib" || echo "driver_fill: build failed"
  nvcc -O2 -o "$GPUBIN/bench_launch" scripts/gpu/bench_launch.cu || echo "bench_launch: build failed"
fi

run fill GPUSHARE_MEMORY_LIMIT=2Gi PYTORCH_NO_CUDA_MEMORY_CACHING=1 -- "${MEMCHECK[@]}" fill
run meminfo GPUSHARE_MEMORY_LIMIT=2Gi -- "${MEMCHECK[@]}" meminfo
run expandable GPUSHARE_MEMORY_LIMIT=2Gi PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True -- "${MEMCHECK[@]}" expandable
run graph GPUSHARE_MEMORY_LIMIT=2Gi -- "${MEMCHECK[@]}" graph
run cupy GPUSHARE_MEMORY_LIMIT=1Gi -- "${MEMCHECK[@]}" cupy
run oversubscribe GPUSHARE_MEMORY_LIMIT=1Gi GPUSHARE_OVERSUBSCRIBE=1 -- "${MEMCHECK[@]}" oversubscribe
GPUSHARE_MEMORY_LIMIT=1Gi LD_PRELOAD="$LIB" "$GPUBIN/driver_fill" > "$WORK/driver.json" 2> "$WORK/driver.err"
python3 - "$WORK/driver.json" >> "$results" <<'PY'
import json, sys
try:
    d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception as e:
    d = {"error": str(e)}
limit = 1 << 30
ok = d.get("last_rc") == 2 and d.get("allocated", 1 << 62) <= limit and d.get("total") == limit
print(json.dumps({"check": "driver-API program stops at the limit (OOM = 2)", "ok": ok, "detail": d}))
PY
region=$WORK/share.region
rm -f "$region"
GPUSHARE_MEMORY_LIMIT=2Gi GPUSHARE_REGION=$region LD_PRELOAD="$LIB" python3 scripts/gpu/memcheck.py share first > "$WORK/share-first.json" 2> "$WORK/share-first.err" &
first=$!
sleep 5
GPUSHARE_MEMORY_LIMIT=2Gi GPUSHARE_REGION=$region LD_PRELOAD="$LIB" python3 scripts/gpu/memcheck.py share second > "$WORK/share-second.json" 2> "$WORK/share-second.err"
wait $first
python3 - "$WORK" >> "$results" <<'PY'
import json, sys
d = {}
for role in ("first", "second"):
    try:
        d[role] = json.loads(open(f"{sys.argv[1]}/share-{role}.json").read().strip().splitlines()[-1])["result"]
    except Exception as e:
        d[role] = f"no result ({e})"
print(json.dumps({"check": "two processes share one limit (60% + 60% of it)", "ok": d == {"first": "allocated", "second": "oom"}, "detail": d}))
PY

# nvidia-smi is an NVML-only program (it never calls cuInit): under the library and with the
# slice's region it must show the slice: total = the limit, used = what the group holds
# (the holder's 512 MiB and its context), on the GPU the holder uses; other GPUs unchanged.
region=$WORK/smi.region
rm -f "$region"
CUDA_VISIBLE_DEVICES=0 GPUSHARE_MEMORY_LIMIT=2Gi GPUSHARE_REGION=$region LD_PRELOAD="$LIB" \
  python3 scripts/gpu/memcheck.py hold 512 > "$WORK/hold.json" 2> "$WORK/hold.err" &
holder=$!
sleep 6
CUDA_VISIBLE_DEVICES=0 GPUSHARE_MEMORY_LIMIT=2Gi GPUSHARE_REGION=$region LD_PRELOAD="$LIB" \
  nvidia-smi --query-gpu=uuid,memory.total,memory.used --format=csv,noheader,nounits > "$WORK/smi.csv" 2> "$WORK/smi.err"
nvidia-smi --query-gpu=uuid,memory.total,memory.used --format=csv,noheader,nounits > "$WORK/smi-plain.csv"
wait $holder
python3 - "$WORK" >> "$results" <<'PY'
import json, sys
out = sys.argv[1]
try:
    hold = json.loads(open(f"{out}/hold.json").read().strip().splitlines()[-1])
    rows = [l.split(", ") for l in open(f"{out}/smi.csv").read().strip().splitlines()]
    plain = {l.split(", ")[0]: l.split(", ") for l in open(f"{out}/smi-plain.csv").read().strip().splitlines()}
    mine = [r for r in rows if r[0].lower() == hold["uuid"].lower()]
    others_unchanged = all(plain[r[0]][1] == r[1] for r in rows if r[0].lower() != hold["uuid"].lower())
    total, used = int(mine[0][1]), int(mine[0][2])
    # nvidia-smi prints MiB; used is the group's usage (holder: 512 MiB + its context), within the slice
    ok = total == 2048 and 512 <= used <= 2048 and abs(used * 2**20 - hold["slice_used"]) <= 2**20 and others_unchanged
    detail = {"nvidia_smi": mine[0], "holder": hold, "other_gpus_unchanged": others_unchanged}
except Exception as e:
    ok, detail = False, {"error": repr(e)}
print(json.dumps({"check": "nvidia-smi (NVML only) under the library shows the slice and the group's usage", "ok": ok, "detail": detail}))
PY

# Scrubbing, and its control run without it.
run scrub GPUSHARE_MEMORY_LIMIT=2Gi GPUSHARE_SCRUB=1 PYTORCH_NO_CUDA_MEMORY_CACHING=1 -- "${MEMCHECK[@]}" scrub on
run scrub-control GPUSHARE_MEMORY_LIMIT=2Gi PYTORCH_NO_CUDA_MEMORY_CACHING=1 -- "${MEMCHECK[@]}" scrub off

# Overhead (skipped with SKIP_BENCH=1): the same program with and without the library,
# alternated, 7 runs each, pinned to one core (each run keeps its best of 9 repetitions).
[ "${SKIP_BENCH:-0}" = 1 ] || for i in 1 2 3 4 5 6 7; do
  taskset -c 3 "$GPUBIN/bench_launch" | sed 's/^/{"bench":"launch","lib":false,"data":/; s/$/}/' >> "$OUT/bench.jsonl"
  LD_PRELOAD="$LIB" taskset -c 3 "$GPUBIN/bench_launch" | sed 's/^/{"bench":"launch","lib":true,"data":/; s/$/}/' >> "$OUT/bench.jsonl"
done
[ "${SKIP_BENCH:-0}" = 1 ] || for i in 1 2 3; do
  python3 scripts/gpu/bench_torch.py | sed 's/^/{"bench":"torch","lib":false,"data":/; s/$/}/' >> "$OUT/bench.jsonl"
  GPUSHARE_MEMORY_LIMIT=16Gi LD_PRELOAD="$LIB" python3 scripts/gpu/bench_torch.py | sed 's/^/{"bench":"torch","lib":true,"data":/; s/$/}/' >> "$OUT/bench.jsonl"
done
touch "$OUT/bench.jsonl"
python3 scripts/gpu/summarize.py "$results" "$OUT/bench.jsonl" | tee "$OUT/table.md"
for f in "$WORK"/*.err; do echo "== $(basename "$f")"; tail -n 20 "$f"; done > "$OUT/stderr.txt" 2>/dev/null
