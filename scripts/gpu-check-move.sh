#!/usr/bin/env bash
# Real-GPU check of moving a slice to another GPU (issue 22 item 5, native/shim/SWAP.md "Moving a
# slice"). NEEDS 2 GPUs OF THE SAME MODEL (e.g. nvidia-h100-x2) and driver >= 580 (the checkpoint
# API's GPU pairs). A PyTorch task holding about 11 GiB on GPU 0 under libgpushare is moved to GPU 1
# the way the daemon moves it: slice swap out (the library), lock + checkpoint of the rest, restore
# with the GPU pair 0 -> 1, unlock, swap in (on GPU 1) - side by side with a move of the same task
# by the checkpoint API alone (lock, checkpoint, restore with the pair, unlock), against an
# undisturbed run: seconds per step, the GPUs' memory before and after, on which GPU nvidia-smi
# sees the task afterwards, identical parameters and ballast at the end. About 4 minutes.
# Needs build/native/libgpushare.so (npm run build: plain C), Python with PyTorch. BALLAST_GIB (11).
# Prints a table; results.json, table.md and the task logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-move}
mkdir -p "$OUT"
LIB=$PWD/build/native/libgpushare.so
[ -f "$LIB" ] || { echo "missing $LIB: run npm run build first"; exit 1; }
nvidia-smi --query-gpu=index,name,uuid,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
[ "$(wc -l < "$OUT/gpu.txt")" -ge 2 ] || { echo "needs 2 GPUs of the same model; this machine has $(wc -l < "$OUT/gpu.txt")"; exit 2; }
timeout 330 python3 scripts/gpu/move_check.py "$LIB" "$OUT" "${BALLAST_GIB:-11}"
rc=$?
[ $rc = 124 ] && echo "move check: timed out after 330 s (task logs in $OUT)"
exit $rc
