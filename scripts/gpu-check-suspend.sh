#!/usr/bin/env bash
# Real-GPU check of the daemon's limits, suspend, resume and preemption (issue 6): starts
# `gpushare serve` on the real GPU (NVML backend, libgpushare preloaded into tasks, the CUDA
# checkpoint API through koffi on the real libcuda) and runs scripts/gpu/suspend_check.py
# against it: two PyTorch training tasks with --mem 20Gi --cores 30 / --cores 60 (memory slice
# seen and enforced; throughput vs alone and the region's achieved share within 5 points), a
# high-priority task preempting a low-priority one by suspension (the low one must finish
# with the never-suspended reference's parameters and its ballast intact), suspend/resume
# time vs bytes, and with 2+ GPUs and ALLOW_SECOND_GPU=1 a resume on the other GPU.
# Needs: dist/, build/native/, node_modules (on the lent machine: scripts/gpu-check-daemon.sh
# unpacks them from .carry), Python with PyTorch, driver >= 570. NODE=path/to/node if node is
# not on PATH. Prints a table; results.json, table.md, the daemon's log and task logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-suspend}
NODE=${NODE:-node}
mkdir -p "$OUT"
STATE=$(mktemp -d)
SOCK=$STATE/api.sock
BACKEND=(--backend nvml)
if [ "${DRY_RUN:-0}" = 1 ]; then
  # No GPU: the simulated backend, the fake driver's checkpoint API, a CPU stand-in for the
  # training program. Checks the pipeline and the driver's logic only; its numbers mean nothing.
  # Tasks get no daemon variable unless passed on: their fake driver meets the daemon's there.
  BACKEND=(--backend simulated --simulate "${DRY_RUN_SIMULATE:-1xH200-141GB}" --pass-env GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR)
  export GPUSHARE_CUDA_PATH=$PWD/build/native/fake/libcuda.so.1 GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR=$STATE
  export SUSPEND_TRAIN=scripts/gpu/suspend_train_cpu.py
  echo "DRY RUN: simulated GPUs, CPU stand-in tasks; not GPU numbers" | tee "$OUT/gpu.txt"
else
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
fi
# SANDBOX=off (default): tasks run as the daemon's user, as before tenant isolation
# (docs/security.md). SANDBOX=on: as a root daemon's allocated users (each tenant its own uid,
# its own directory, a clean environment): the same checks then show the limits, suspension and
# preemption hold for sandboxed tasks. Their programs are copied where those users can read them.
SANDBOX=${SANDBOX:-off}
RUN_DIR=$PWD
if [ "$SANDBOX" = on ]; then
  RUN_DIR=$(mktemp -d /tmp/gs-sandboxed.XXXXXX)
  chmod 755 "$RUN_DIR"
  cp -r scripts "$RUN_DIR/"
  chmod -R a+rX "$RUN_DIR"
  echo "SANDBOX=on: tasks run as allocated users from $RUN_DIR" | tee -a "$OUT/gpu.txt"
fi
export GPUSHARE_CLI=$PWD/bin/gpushare.js
"$NODE" bin/gpushare.js serve "${BACKEND[@]}" --sandbox "$SANDBOX" --state-dir "$STATE/state" --listen "$SOCK" --log-level info > "$OUT/daemon.out" 2> "$OUT/daemon.log" &
DAEMON=$!
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.2; done
cat "$OUT/daemon.out"
[ -S "$SOCK" ] || { echo "the daemon did not start (no $SOCK after 20 s):"; tail -20 "$OUT/daemon.log"; kill "$DAEMON" 2>/dev/null; exit 2; }
(cd "$RUN_DIR" && python3 scripts/gpu/suspend_check.py "$SOCK" "$OUT" "$NODE")
rc=$?
kill "$DAEMON" 2>/dev/null
wait "$DAEMON" 2>/dev/null
# Keep the task logs for the record.
for d in "$STATE"/state/tasks/*/; do
  id=$(basename "$d")
  cp "$d/stdout.log" "$OUT/task-$id.stdout" 2>/dev/null
  cp "$d/stderr.log" "$OUT/task-$id.stderr" 2>/dev/null
done
grep -h '"msg":"\(task suspended\|task resumed\|preempting lower-priority tasks\|suspend failed.*\|resume failed.*\)"' "$OUT/daemon.log" | head -20 > "$OUT/daemon-suspend-lines.log"
exit $rc
