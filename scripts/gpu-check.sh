#!/usr/bin/env bash
# Real-GPU checks for the inventory (issue 2): runs on a machine with an NVIDIA GPU, compares
# `gpushare gpus --json` with nvidia-smi field by field, and prints a table.
# On the lent GPU machine: unpack the carried node and app first (see docs/benchmarks.md).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-out}
mkdir -p "$OUT"
NODE=${NODE:-node}

nvidia-smi -L
# Keep a CUDA process alive and busy so the process list, utilization, power and clocks have
# something steady to agree on: it holds 1 GiB and runs matrix products.
python3 - <<'PY' &
import time, torch
hold = torch.empty(1 << 30, dtype=torch.uint8, device='cuda')
a = torch.randn(4096, 4096, device='cuda')
end = time.time() + 60
while time.time() < end:
    for _ in range(50):
        a = (a @ a).clamp_(-1, 1)
    torch.cuda.synchronize()
PY
load_pid=$!
sleep 12   # let the load reach steady clocks and utilization

fields=index,uuid,name,memory.total,memory.used,memory.free,memory.reserved,utilization.gpu,utilization.memory,temperature.gpu,power.draw,enforced.power.limit,clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,pci.bus_id,compute_cap,mig.mode.current,ecc.errors.corrected.volatile.total,ecc.errors.uncorrected.volatile.total,clocks_event_reasons.active
for round in 1 2 3; do
  nvidia-smi --query-gpu=$fields --format=csv,noheader,nounits > "$OUT/smi-gpu-$round.csv"
  "$NODE" bin/gpushare.js gpus --json --backend nvml > "$OUT/gpushare-$round.json" 2> "$OUT/gpushare-$round.err"
  nvidia-smi --query-compute-apps=gpu_uuid,pid,used_memory --format=csv,noheader,nounits > "$OUT/smi-apps-$round.csv"
done
nvidia-smi -q > "$OUT/nvidia-smi-q.txt"
kill "$load_pid" 2>/dev/null; wait "$load_pid" 2>/dev/null
cat "$OUT/gpushare-1.err"
"$NODE" scripts/gpu-check/compare-smi.mjs "$OUT" "$fields" | tee "$OUT/table.md"

# Our NVML declarations against the nvml.h of this machine's CUDA toolkit (newer than Debian's 11.8).
if [ -f /usr/local/cuda/include/nvml.h ] && command -v make >/dev/null; then
  NVML_INCLUDE_DIR=/usr/local/cuda/include make -s -C native check-headers 2>&1 | tail -3
fi
