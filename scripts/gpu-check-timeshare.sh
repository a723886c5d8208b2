#!/usr/bin/env bash
# Real-GPU check of time-sharing big jobs by slice swap (issue 22 item 4): `gpushare serve --swap`
# with the GPU overcommitted 2x and a 30 s quantum, then scripts/gpu/timeshare_check.py: one
# PyTorch task holding FRACTION (default 0.55) of the card trains alone (its steps/s), then two
# such tasks, which cannot both be resident, train side by side; each must get >= 47% of its solo
# steps/s (issue 22's budget for two 50 GiB tasks on an 80 GB H100, scaled to the card), every
# ballast intact, and no out-of-memory: the second task's allocations that the card cannot hold
# while the first is resident wait for the room the daemon makes (native/shim/SWAP.md, "Waiting
# for room"). The ballast grows 1 GiB at a time (GROW_GIB_PER_S, default 4) and the daemon keeps
# 6 GiB of headroom: it sees real use by sampling (README, "Memory overcommit"). Each turn is an
# overlapped hand-over (native/shim/SWAP.md, "Hand-over"): the table splits it into the outgoing
# swap-out, the incoming swap-in (and its wait for the other's releases) and their wall time.
# SOLO_S (default 40) and PAIR_S (default 150) shorten it; QUANTUM_S (default 30) the turn.
# About 6 minutes. From a clean checkout plus .carry/ (scripts/gpu-carry.sh), as gpu-check-daemon.sh.
# Device call: command "bash scripts/gpu-check-timeshare.sh", carry [".carry"].
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-timeshare}
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
. scripts/gpu/unpack-carry.sh
unpack_carry
check_gpu_machine
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
STATE=$(mktemp -d)
SOCK=$STATE/api.sock
echo "{\"swap\": true, \"overcommit\": {\"gpus\": 2, \"timeshareQuantumSeconds\": ${QUANTUM_S:-30}, \"headroom\": \"6Gi\"}}" > "$STATE/config.json"
export GPUSHARE_CLI=$PWD/bin/gpushare.js
"$NODE" bin/gpushare.js serve --backend nvml --sandbox off --config "$STATE/config.json" --state-dir "$STATE/state" --listen "$SOCK" --log-level info > "$OUT/daemon.out" 2> "$OUT/daemon.log" &
DAEMON=$!
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.2; done
[ -S "$SOCK" ] || { echo "the daemon did not start:"; tail -20 "$OUT/daemon.log"; kill "$DAEMON"; exit 2; }
timeout 520 python3 scripts/gpu/timeshare_check.py "$SOCK" "$OUT" "$NODE"
rc=$?
[ $rc = 124 ] && echo "timeshare check: stopped at 520 s (logs in $OUT)"
kill "$DAEMON" 2>/dev/null
wait "$DAEMON" 2>/dev/null
for d in "$STATE"/state/tasks/*/; do
  id=$(basename "$d")
  cp "$d/stdout.log" "$OUT/task-$id.stdout" 2>/dev/null
  cp "$d/stderr.log" "$OUT/task-$id.stderr" 2>/dev/null
done
exit $rc
