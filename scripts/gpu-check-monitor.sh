#!/usr/bin/env bash
# Issue 19's check on a GPU: monitoring people can trust, on real data. Starts `gpushare serve`
# on the machine's GPUs (TCP on loopback with an admin token, and the alert rules' slice-memory
# `for` shortened to 5 s), runs two limited PyTorch tasks (scripts/gpu/monitor_task.py: 20 GiB
# at 30% and 30 GiB at 60% of the compute, each holding 30%, 60%, then 90% of its slice while
# running bf16 matmuls), and while they hold still: scrapes /metrics and compares it with the
# tasks' regions (memory to the byte, compute share against the gate's busy time) and with
# nvidia-smi (scripts/gpu/monitor_compare.mjs), checks that the 85% slice-memory alert fired,
# reads a history range; then writes `gpushare report` (html, md, json) and copies the daemon's
# state (tasks, history, alerts) and a minute of its samples to $OUT, so a dashboard screenshot
# of this run can be taken where a browser is (scripts/monitor-screenshot.ts). About 2 minutes.
# Build machine: npm run build && bash scripts/gpu-carry.sh
# Device call: command "bash scripts/gpu-check-monitor.sh", carry [".carry"].
# DRY_RUN=1 (no GPU, this checkout built): the simulated backend, `sleep` tasks, no nvidia-smi.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-monitor}
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
fail() { echo "gpu-check-monitor: $*"; exit 2; }

if [ "${DRY_RUN:-0}" = 1 ]; then
  NODE=$(command -v node) || fail "no node"
  backend=(--backend simulated --simulate 1xH100-80GB)
else
  . scripts/gpu/unpack-carry.sh
  unpack_carry
  check_gpu_machine
  nvidia-smi --query-gpu=index,name,uuid,memory.total,driver_version --format=csv,noheader
  backend=(--backend nvml)
fi
G() { "$NODE" bin/gpushare.js --host "$sock" "$@"; }
state=$(mktemp -d)
sock=$state/api.sock
port=${PORT:-17979}
secret=monitor-check-$RANDOM$RANDOM
sha=$(printf %s "$secret" | sha256sum | cut -d' ' -f1)
cat > "$state/config.json" <<JSON
{"tokens": [{"sha256": "$sha", "tenant": "ops", "role": "admin"}],
 "alerts": {"rules": [{"name": "slice-memory-info", "for": "5s"}, {"name": "slice-memory-warning", "for": "5s"}, {"name": "slice-memory-critical", "for": "5s"}]}}
JSON
"$NODE" bin/gpushare.js serve "${backend[@]}" --state-dir "$state/state" --listen "$sock" --listen "127.0.0.1:$port" \
  --config "$state/config.json" --sandbox off > "$OUT/serve.log" 2>&1 &
daemon=$!
stop() { kill "$daemon" 2> /dev/null; wait "$daemon" 2> /dev/null; }
trap stop EXIT
for _ in $(seq 100); do G gpus > /dev/null 2>&1 && break; sleep 0.2; done
G gpus || fail "the daemon did not answer (see $OUT/serve.log)"

if [ "${DRY_RUN:-0}" = 1 ]; then
  a=$(G run -d --mem 20Gi --cores 30 -- sleep 40) && b=$(G run -d --mem 30Gi --cores 60 -- sleep 40) || fail "cannot submit"
  sleep 3
else
  task=(python3 "$PWD/scripts/gpu/monitor_task.py" --steps 0.3,0.6,0.9 --step-seconds 6 --hold-seconds 40)
  a=$(G run -d --mem 20Gi --cores 30 -e PYTORCH_NO_CUDA_MEMORY_CACHING=1 -- "${task[@]}") \
    && b=$(G run -d --mem 30Gi --cores 60 -e PYTORCH_NO_CUDA_MEMORY_CACHING=1 -- "${task[@]}") || fail "cannot submit"
  # Both at their last step (90%), plus the alert's 5 s and a sample or two.
  for _ in $(seq 120); do
    n=0; for t in "$a" "$b"; do G logs "$t" 2> /dev/null | grep -q '"step": 0.9' && n=$((n + 1)); done
    [ "$n" = 2 ] && break; sleep 0.5
  done
  [ "$n" = 2 ] || { G ps; G logs "$a"; G logs "$b"; fail "the tasks did not reach their last step"; }
  sleep 8
fi
echo "tasks: $a $b"
# A minute of samples for the screenshot, in the background while the checks run.
(curl -s -N --max-time 30 -H "Authorization: Bearer $secret" "http://127.0.0.1:$port/v1/monitor/stream" > "$OUT/samples.ndjson" || true) &
recorder=$!
status=0
"$NODE" scripts/gpu/monitor_compare.mjs "http://127.0.0.1:$port" "$secret" "$OUT" ${DRY_RUN:+--dry-run} || status=1
G top -o json > "$OUT/top.json" 2> /dev/null || true
G alerts --all > "$OUT/alerts.txt" 2>&1 || true
if [ "${DRY_RUN:-0}" != 1 ]; then
  # Wait for both to end (each holds 40 s at its last step).
  for _ in $(seq 160); do G ps -q 2> /dev/null | grep -q . || break; sleep 0.5; done
fi
for f in html md json; do G report --since 1h --format "$f" -o "$OUT/report.$f" || status=1; done
wait "$recorder"
G ps -a > "$OUT/ps.txt" 2>&1 || true
stop
trap - EXIT
mkdir -p "$OUT/state" && cp "$state/state"/*.sqlite* "$state/state"/*.db* "$OUT/state/" 2> /dev/null
# One archive for what a screenshot replays (the device tool brings back a few files only).
tar -czf "$OUT/replay.tar.gz" -C "$OUT" state samples.ndjson top.json serve.log && rm -rf "$OUT/state" "$OUT/samples.ndjson" "$OUT/top.json" "$OUT/serve.log"
ls -la "$OUT"
exit "$status"
