#!/usr/bin/env bash
# Real-GPU check of libgpushare's SM-partition mode (issue 4, item 2): GPUSHARE_ISOLATION=
# sm-partition + GPUSHARE_COMPUTE_LIMIT=P gives an unchanged program a green context of
# P% of the SMs. Needs a Hopper or newer GPU, build/native/libgpushare.so (`npm run build`)
# and build/gpu/partition_check (`bash scripts/gpu-build.sh`, or built here when nvcc exists).
# Prints a markdown table; raw JSON lines and stderr tails go to $OUT. About 3 minutes
# (MPS_ONLY=1: only the side-by-side runs under MPS, under a minute).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-partition}
mkdir -p "$OUT"
WORK=$(mktemp -d)
LIB=$PWD/build/native/libgpushare.so
BIN=$PWD/build/gpu/partition_check
SEC=${SEC:-4}
[ -f "$LIB" ] || { echo "missing $LIB: run npm run build first"; exit 1; }
if [ ! -x "$BIN" ]; then
  mkdir -p build/gpu
  PATH=$PATH:/usr/local/cuda/bin nvcc -O2 -arch=sm_90 -o "$BIN" scripts/gpu/partition_check.cu -lcuda || { echo "partition_check: build failed"; exit 1; }
fi
results=$OUT/results.jsonl
: > "$results"
export PYTHONUNBUFFERED=1
PART=(LD_PRELOAD="$LIB" GPUSHARE_ISOLATION=sm-partition GPUSHARE_LOG_LEVEL=info)

# one NAME KIND ENV... : runs KIND (cu | torch) once; its JSON line goes to $results tagged NAME
one() {
  local name=$1 kind=$2; shift 2
  local cmd=("$BIN" "$SEC")
  [ "$kind" = torch ] && cmd=(python3 scripts/gpu/partition_torch.py "$SEC")
  env "$@" "${cmd[@]}" ${START:+"$START"} > "$WORK/$name.json" 2> "$WORK/$name.err"
  python3 - "$name" "$kind" "$WORK/$name.json" "$WORK/$name.err" >> "$results" <<'PY'
import json, sys
name, kind, out, err = sys.argv[1:5]
try:
    d = json.loads(open(out).read().strip().splitlines()[-1])
except Exception as e:
    d = {"error": f"no result ({e})"}
d.update(name=name, kind=kind, stderr=[l for l in open(err).read().splitlines() if "gpushare" in l][-3:])
print(json.dumps(d))
PY
}
# pair NAME KIND P1 P2 [OFFSET1 OFFSET2]: two processes side by side, measuring the same
# window; with offsets, each partition is placed there (GPUSHARE_SM_OFFSET)
pair() {
  local name=$1 kind=$2 p1=$3 p2=$4
  local start=$(( $(date +%s%3N) + $([ "$kind" = torch ] && echo 15000 || echo 4000) ))
  local e1=("${PART[@]}" GPUSHARE_COMPUTE_LIMIT="$p1") e2=("${PART[@]}" GPUSHARE_COMPUTE_LIMIT="$p2")
  [ $# -ge 6 ] && e1+=(GPUSHARE_SM_OFFSET="$5") && e2+=(GPUSHARE_SM_OFFSET="$6")
  [ "$p1" = 100 ] && e1=(GPUSHARE_UNUSED=1)
  [ "$p2" = 100 ] && e2=(GPUSHARE_UNUSED=1)
  START=$start one "$name-a" "$kind" "${e1[@]}" &
  START=$start one "$name-b" "$kind" "${e2[@]}" &
  wait
}

# Side by side under an MPS daemon of our own (private pipe/log dirs; the GPU's compute mode
# is not touched): without MPS the GPU time-slices between processes, so two partitions
# never run at the same time; MPS clients do run at once, on their partitions' SMs, which
# overlap unless placed apart (the "disjoint" pairs: GPUSHARE_SM_OFFSET 0/64 and 0/96). Each
# disjoint pair fits the SMs the driver can group (120 of 132 in groups of 8 on H100/H200):
# 64+64 or 96+32 do not, and libgpushare refuses the second partition at cudaSetDevice.
mps_pairs() {
  command -v nvidia-cuda-mps-control > /dev/null || { echo "no nvidia-cuda-mps-control: MPS pairs skipped"; return; }
  export CUDA_MPS_PIPE_DIRECTORY=$WORK/mps-pipe CUDA_MPS_LOG_DIRECTORY=$WORK/mps-log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  nvidia-cuda-mps-control -d || { echo "MPS daemon did not start"; return; }
  pair cu-mps-pair-50+50 cu 50 50
  pair cu-mps-disjoint-pair-50+25 cu 50 25 0 64
  pair cu-mps-pair-25+75 cu 25 75
  pair cu-mps-disjoint-pair-75+10 cu 75 10 0 96
  pair cu-mps-pair-100+100 cu 100 100
  echo quit | nvidia-cuda-mps-control
  unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
}

nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
if [ "${MPS_ONLY:-0}" = 1 ]; then  # only the MPS pairs, plus the alone runs they compare to
  one cu-unlimited cu GPUSHARE_UNUSED=1
  for p in 25 50 75; do one "cu-$p" cu "${PART[@]}" GPUSHARE_COMPUTE_LIMIT=$p; done
  mps_pairs
  python3 scripts/gpu/partition_summary.py "$results" | tee "$OUT/table.md"
  rm -rf "$WORK"
  exit 0
fi
for kind in cu torch; do
  one "$kind-unlimited" "$kind" GPUSHARE_UNUSED=1
  for p in 10 25 50 75 90; do one "$kind-$p" "$kind" "${PART[@]}" GPUSHARE_COMPUTE_LIMIT=$p; done
  pair "$kind-pair-50+50" "$kind" 50 50
done
one cu-hami-50 cu "${PART[@]}" CUDA_DEVICE_SM_LIMIT=50
pair cu-pair-25+75 cu 25 75
pair cu-pair-100+100 cu 100 100
mps_pairs
python3 scripts/gpu/partition_summary.py "$results" | tee "$OUT/table.md"
rm -rf "$WORK"
