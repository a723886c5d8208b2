#!/usr/bin/env bash
# Real-GPU check of slice swap (issue 22 items 1-2, native/shim/SWAP.md): a PyTorch task holding
# about 11 GiB under libgpushare is swapped out and in while it trains (the library's control
# socket, as the daemon asks), side by side with the CUDA checkpoint API on the same task, and
# against an undisturbed run: seconds from the request to the memory being free / the task
# running again, GB/s, the GPU's memory while out, identical parameters and ballast. Budget
# (issue 22): each <= 0.5 s for 11 GiB. About 4 minutes.
# Needs build/native/libgpushare.so (npm run build: plain C), Python with PyTorch, driver >= 570
# (the checkpoint API). BALLAST_GIB (default 11: with the model, ~11.1 GiB
# swapped), ROUNDS (3). Prints a table; results.json, table.md and the task logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-swap}
mkdir -p "$OUT"
LIB=$PWD/build/native/libgpushare.so
[ -f "$LIB" ] || { echo "missing $LIB: run npm run build first"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 330 python3 scripts/gpu/swap_check.py "$LIB" "$OUT" "${BALLAST_GIB:-11}" "${ROUNDS:-3}"
rc=$?
[ $rc = 124 ] && echo "swap check: timed out after 330 s (task logs in $OUT)"
exit $rc
