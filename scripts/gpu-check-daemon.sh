#!/usr/bin/env bash
# Entry point on the lent GPU machine for the daemon's real-GPU checks (issue 6), from a clean
# checkout plus .carry/ (made here by scripts/gpu-carry.sh):
#   unpacks the carried node and app (dist/, build/native, bin/, production node_modules),
#   checks the machine (nvidia-smi, PyTorch, the carried node and native addons), then runs
#   scripts/gpu-check-suspend.sh: memory and compute limits of two training tasks, preemption
#   by suspension, suspend/resume time vs bytes, and (2+ GPUs and ALLOW_SECOND_GPU=1 only)
#   resume on the other GPU. Prints one markdown table; everything goes under $OUT.
# Device call: command "bash scripts/gpu-check-daemon.sh", carry [".carry"] (docs/benchmarks.md).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-daemon}
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
fail() { echo "gpu-check-daemon: $*"; exit 2; }

. scripts/gpu/unpack-carry.sh
unpack_carry
"$NODE" -e "require('better-sqlite3')(':memory:'); require('koffi').load('libc.so.6')" || fail "the carried native addons (better-sqlite3, koffi) do not load here"
if [ "${DRY_RUN:-0}" != 1 ]; then  # DRY_RUN=1: no GPU, see scripts/gpu-check-suspend.sh
  check_gpu_machine
  count=$(nvidia-smi -L | grep -c '^GPU ')
  echo "GPUs visible: $count; ALLOW_SECOND_GPU=${ALLOW_SECOND_GPU:-unset}"
  nvidia-smi -L
fi
# Over 8 minutes is a bug here (the device command's limit is 10): stop it with what it has.
timeout 470 bash scripts/gpu-check-suspend.sh
rc=$?
[ "$rc" = 124 ] && echo "gpu-check-daemon: stopped at 470 s; results so far in $OUT/results.json"
exit "$rc"
