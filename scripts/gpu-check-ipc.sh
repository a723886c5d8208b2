#!/usr/bin/env bash
# Real-GPU check of CUDA IPC under slice swap (issue 22 item 2, native/shim/SWAP.md "Sharing memory
# between processes"): with swap on (the daemon's default) every large cudaMalloc is VMM memory,
# which the driver's own cuIpcGetMemHandle refuses; libgpushare serves those handles. PyTorch
# multiprocessing (spawn: parent -> child with the child's write seen, a view at an offset,
# child -> parent), the raw driver path (ctypes), a swap-out refused while a child maps the
# parent's tensor and done once it is gone, the cost of an open, and (informative, without the
# library) what the driver says of VMM memory and of an interior pointer. About 1 minute.
# Needs build/native/libgpushare.so (npm run build: plain C) and Python with PyTorch. Prints a
# table; results.json and table.md go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-ipc}
mkdir -p "$OUT"
LIB=$PWD/build/native/libgpushare.so
[ -f "$LIB" ] || { echo "missing $LIB: run npm run build first"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
SWAPDIR=$(mktemp -d)
trap 'rm -rf "$SWAPDIR"' EXIT
LD_PRELOAD=$LIB GPUSHARE_SWAP=$SWAPDIR timeout 300 python3 scripts/gpu/ipc_check.py "$LIB" "$OUT"
rc=$?
[ $rc = 124 ] && echo "ipc check: timed out after 300 s"
exit $rc
