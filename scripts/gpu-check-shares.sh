#!/usr/bin/env bash
# Real-GPU check of throughput-true compute shares (issue 21, item 1): what a hard limit of P%
# gets of the program's unlimited throughput, alone (10/25/50/75/90%) and in pairs (30+70,
# 50+50), for a compute-bound kernel (compute_burn) and a power-limited one (8192x8192 bf16
# matmuls, compute_torch.py; and a transformer training step, compute_torch.py train), under each
# GPUSHARE_COMPUTE_ACCOUNTING of ACCOUNTINGS (default "throughput gpu time", side by side), and for the
# matmul loop alone also throughput with the saturated clock set to its unlimited run's SM clock
# (GPUSHARE_COMPUTE_CLOCK: clock weighting apart from the learning); short rounds, medians; the
# library's own charge factor per case; then SM partitions with the matmul loop alone and side by
# side under MPS (their interference: they share the power budget). scripts/gpu/shares_run.py.
# Needs an NVIDIA GPU, PyTorch, build/native/libgpushare.so (npm run build) and
# build/gpu/compute_burn (scripts/gpu-build.sh, or built here when nvcc is present).
# Prints one markdown report (tables); raw JSON lines go to $OUT. At most about 8 minutes (a round
# that would end past BUDGET_S=380 s is skipped and named: with three accountings the default
# rounds do not all fit, so pick ROUNDS_* or ACCOUNTINGS for what is asked); each run's processes start
# while the one before measures, so start-up costs little. Also one 50% matmul run with the SM
# clock sampled every 25 ms, by phase of the library's 1 s period (TRACE=0 leaves it out).
#
#   bash scripts/gpu-check-shares.sh
#   ROUNDS_BURN=1 ROUNDS_TORCH=1 ROUNDS_TRAIN=0 PARTITIONS=0 TARGETS="50" PAIRS="" bash scripts/gpu-check-shares.sh   a smoke run
# ROUNDS_TRAIN (default 1): rounds of the transformer training step (compute_torch.py train).
# The training step (busy ~85% of the time unlimited) with the default (throughput: its own window
# binds it alone) and gpu (clock-weighted GPU time only) side by side, about 4 minutes:
#   SECS=6 ROUNDS_BURN=0 ROUNDS_TORCH=0 ROUNDS_TRAIN=1 TRACE=0 PARTITIONS=0 BUDGET_S=280 ACCOUNTINGS="throughput gpu" bash scripts/gpu-check-shares.sh
#
# Never changes GPU settings; MPS runs with a private pipe and log directory and is stopped.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-shares}
mkdir -p "$OUT"
LIB=$PWD/build/native/libgpushare.so
BURN=$PWD/build/gpu/compute_burn
[ -f "$LIB" ] || { echo "missing $LIB: run npm run build first"; exit 1; }
if [ ! -x "$BURN" ]; then
  mkdir -p build/gpu
  PATH=$PATH:/usr/local/cuda/bin nvcc -O2 -arch=sm_90 -o "$BURN" scripts/gpu/compute_burn.cu || { echo "compute_burn: build failed"; exit 1; }
fi
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader | tee "$OUT/device.txt"
python3 scripts/gpu/shares_run.py "$OUT" "$LIB" "$BURN" 2> >(tee "$OUT/progress.txt" >&2) | tee "$OUT/table.md"
