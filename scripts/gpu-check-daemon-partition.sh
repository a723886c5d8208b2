#!/usr/bin/env bash
# Real-GPU check that the node daemon delivers SM partitions that do not slow each other:
# starts `gpushare serve --backend nvml --mps on` (its own MPS control daemon, private pipe and
# log directories under its state dir; the GPU's compute mode is not touched), then submits
# sm-partition tasks running build/gpu/partition_check: 25/40/50/65% alone, then 50+40 and
# 25+65 side by side (pairs that fit in the SMs the driver groups: 120 of an H200's 132). The
# daemon gives each a disjoint SM range (GPUSHARE_SM_OFFSET) and the MPS pipe. Prints each task's range, the SMs its kernels ran on, and its throughput relative to
# the same share alone (disjoint partitions under MPS: ~1.0 each). About 3 minutes.
# Needs: a Hopper or newer GPU, driver >= 12.4 with nvidia-cuda-mps-control on PATH, dist/ and
# build/native/ (npm run build), node_modules (fastify, better-sqlite3, pino...), and node:
# NODE=path, or node on PATH, or .carry/node.xz (unpacked to /tmp/node). nvcc builds
# partition_check here when it is missing or older than its source. Results go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-daemon-partition}
SEC=${SEC:-6}
mkdir -p "$OUT"
if [ -z "${NODE:-}" ]; then
  if command -v node > /dev/null; then
    NODE=node
  elif [ -s .carry/node.xz ]; then
    xz -dc .carry/node.xz > /tmp/node && chmod +x /tmp/node && NODE=/tmp/node
  else
    echo "no node: set NODE, put node on PATH or carry .carry/node.xz"; exit 1
  fi
fi
for need in dist/cli/main.js build/native/libgpushare.so build/native/gpushare-exec node_modules/fastify node_modules/better-sqlite3 node_modules/pino; do
  [ -e "$need" ] || { echo "missing $need (npm run build here; carry node_modules)"; exit 1; }
done
command -v nvidia-cuda-mps-control > /dev/null || { echo "no nvidia-cuda-mps-control on PATH: partitions cannot run side by side"; exit 1; }
BIN=$PWD/build/gpu/partition_check
# Rebuilt when older than its source or built before it printed its SM set (sm_set).
if [ ! -x "$BIN" ] || [ scripts/gpu/partition_check.cu -nt "$BIN" ] || ! grep -q sm_set "$BIN"; then
  mkdir -p build/gpu
  PATH=$PATH:/usr/local/cuda/bin nvcc -O2 -arch=sm_90 -o "$BIN" scripts/gpu/partition_check.cu -lcuda || { echo "partition_check: build failed"; exit 1; }
fi
nvidia-smi --query-gpu=name,driver_version,compute_mode --format=csv,noheader | tee "$OUT/gpu.txt"
STATE=$(mktemp -d)
SOCK=$STATE/api.sock
# --sandbox off: these checks measure limits, preemption and MPS with tasks as the daemon's user,
# as before tenant isolation (docs/security.md; MPS does not serve tenants' users yet).
"$NODE" bin/gpushare.js serve --backend nvml --mps on --sandbox off --state-dir "$STATE/state" --listen "$SOCK" --log-level info > "$OUT/daemon.out" 2> "$OUT/daemon.log" &
DAEMON=$!
for _ in $(seq 1 150); do [ -S "$SOCK" ] && break; kill -0 "$DAEMON" 2> /dev/null || break; sleep 0.2; done
cat "$OUT/daemon.out"
if [ ! -S "$SOCK" ]; then
  echo "the daemon did not start:"; tail -20 "$OUT/daemon.log"; exit 1
fi
python3 scripts/gpu/daemon_partition_check.py "$SOCK" "$OUT" "$NODE" "$BIN" "$SEC" | tee "$OUT/table.md"
rc=${PIPESTATUS[0]}
kill "$DAEMON" 2> /dev/null
wait "$DAEMON" 2> /dev/null
# The daemon quits its MPS control daemon on shutdown (no partition tasks are left).
if [ -e "$STATE/state/mps/pipe/control" ] && CUDA_MPS_PIPE_DIRECTORY=$STATE/state/mps/pipe nvidia-cuda-mps-control <<< get_server_list > /dev/null 2>&1; then
  echo "MPS control daemon still running after the daemon stopped: quitting it"; rc=1
  CUDA_MPS_PIPE_DIRECTORY=$STATE/state/mps/pipe nvidia-cuda-mps-control <<< quit
fi
cp -r "$STATE/state/mps/log" "$OUT/mps-log" 2> /dev/null
for d in "$STATE"/state/tasks/*/; do
  id=$(basename "$d")
  cp "$d/stdout.log" "$OUT/task-$id.stdout" 2> /dev/null
  cp "$d/stderr.log" "$OUT/task-$id.stderr" 2> /dev/null
done
grep -h '"msg":"\(MPS control daemon[^"]*\|task started\)"' "$OUT/daemon.log" | head -20
rm -rf "$STATE"
exit "$rc"
