#!/usr/bin/env bash
# Real-GPU check of suspend, resume and preemption (issue 6): starts `gpushare serve` on the
# real GPU (NVML backend, libgpushare preloaded into tasks, the CUDA checkpoint API through
# koffi on the real libcuda), runs two PyTorch training tasks sharing the GPU with memory
# limits, then a high-priority task that does not fit: the daemon suspends the low-priority
# one, runs the high one, resumes the low one, which must finish with the same parameters as
# the uninterrupted run and its 40 GiB ballast intact. Then suspend/resume times vs size.
# Needs: npm run build (dist/, build/native/), Python with PyTorch, driver >= 570.
# NODE=path/to/node if node is not on PATH. Prints a table; results.json and logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-suspend}
NODE=${NODE:-node}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
STATE=$(mktemp -d)
SOCK=$STATE/api.sock
"$NODE" bin/gpushare.js serve --backend nvml --state-dir "$STATE/state" --listen "$SOCK" --log-level info > "$OUT/daemon.out" 2> "$OUT/daemon.log" &
DAEMON=$!
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.2; done
cat "$OUT/daemon.out"
python3 scripts/gpu/suspend_check.py "$SOCK" "$OUT" "$NODE"
rc=$?
kill "$DAEMON" 2>/dev/null
wait "$DAEMON" 2>/dev/null
# Keep the task logs for the record.
for d in "$STATE"/state/tasks/*/; do
  id=$(basename "$d")
  cp "$d/stdout.log" "$OUT/task-$id.stdout" 2>/dev/null
  cp "$d/stderr.log" "$OUT/task-$id.stderr" 2>/dev/null
done
grep -h '"msg":"\(task suspended\|task resumed\|preempting lower-priority tasks\|suspend failed.*\|resume failed.*\)"' "$OUT/daemon.log" | head -20
exit $rc
