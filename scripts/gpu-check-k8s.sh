#!/usr/bin/env bash
# Issue 18's check on a GPU: Kubernetes' node side without Kubernetes. test/k8s/pods-run.ts
# starts the DRA kubelet plugin against a fake API server holding two ResourceClaims allocated
# on the node's GPU (pod-a 20 GiB + 30% of the cores, pod-b 40 GiB + 70%), calls
# NodePrepareResources over the plugin's socket as the kubelet does, applies the CDI specs it
# wrote as a container runtime would (src/k8s/cdi/apply*.ts: exact env, libgpushare mounted and
# preloaded through a mounted /etc/ld.so.preload, each pod in a private mount namespace), runs
# the pods at once, then NodeUnprepareResources and checks nothing is left. Twice:
#   1. k8s_probe pods (C): env exactly the edits', the preload, the mounts ro/rw, and CUDA
#      allocations to the limit and one 1 MiB step past it (out of memory);
#   2. PyTorch pods (k8s_pod.py): the same fill through torch, then a bf16 matmul loop at
#      once, each pod's throughput against one unlimited run alone (same script, before).
# Both Kubernetes paths, one after the other (K8S_PATHS, default "dra allocate"): DRA as above,
# and the classic path, where the device plugin (src/k8s/deviceplugin, over the kubelet's socket)
# answers Allocate for each decided pod and that answer is applied instead of the CDI edits.
# Prints markdown tables (k8s_summary.py); exits non-zero when a check fails. About 3 minutes.
# Needs root (mount namespaces). Everything goes under $OUT.
# Build machine: bash scripts/gpu-carry.sh && bash scripts/k8s-pods-bundle.sh
# Device call: command "bash scripts/gpu-check-k8s.sh", carry [".carry", "build/gpu"].
# DRY_RUN=1 (no GPU, this checkout built): the probe pods on the fake driver, 256/512 MiB.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-k8s}
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
fail() { echo "gpu-check-k8s: $*"; exit 2; }
[ "$(id -u)" = 0 ] || fail "needs root: each pod's mounts are made in a private mount namespace (unshare --mount)"
PODS=.carry/k8s/pods/pods-run.mjs
[ -s "$PODS" ] || fail "$PODS is missing: run bash scripts/k8s-pods-bundle.sh on the build machine and carry .carry and build/gpu"
SECONDS_LOOP=${SECONDS_LOOP:-8}
base_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if [ "${DRY_RUN:-0}" = 1 ]; then
  NODE=$(command -v node) || fail "no node"
  NVML=$PWD/build/native/fake/libnvidia-ml.so.1
  [ -f "$NVML" ] || fail "$NVML is missing: npm run build"
  probe_env=(--image-env "PATH=$base_path" --image-env HOME=/root --image-env "LD_LIBRARY_PATH=$PWD/build/native/fake" --image-env 'GPUSHARE_FAKE_CUDA={"contextBytes":4194304}')
  missing=report MEM_A=256Mi MEM_B=512Mi
else
  . scripts/gpu/unpack-carry.sh
  unpack_carry
  check_gpu_machine
  nvidia-smi --query-gpu=index,name,uuid,memory.total,driver_version --format=csv,noheader
  NVML=libnvidia-ml.so.1
  # The pods' image is this machine's: the usual PATH, HOME, and what its image sets for CUDA
  # programs when set here (the driver's library path, and NVLink multicast kept off, as this
  # machine asks of every program started with its own environment).
  probe_env=(--image-env "PATH=$base_path" --image-env HOME=/root)
  for v in LD_LIBRARY_PATH NCCL_NVLS_ENABLE TORCH_SYMM_MEM_DISABLE_MULTICAST NVSHMEM_DISABLE_NVLS; do
    [ -z "${!v:-}" ] || probe_env+=(--image-env "$v=${!v}")
  done
  # Missing device nodes are listed, and k8s_summary.py fails the check for any but
  # /dev/nvidia-uvm-tools, which the driver creates on demand (a runtime would refuse them all).
  missing=report MEM_A=20Gi MEM_B=40Gi
  export K8S_REQUIRE_DEVICES=1
fi
PROBE=$PWD/build/gpu/k8s_probe
if [ ! -x "$PROBE" ]; then
  PROBE=/tmp/k8s_probe
  cc -O2 -o "$PROBE" scripts/gpu/k8s_probe.c -ldl || fail "no build/gpu/k8s_probe and cannot build it here"
fi
pods=(--pod "pod-a:$MEM_A:30" --pod "pod-b:$MEM_B:70")
common=(--nvml "$NVML" --library "$PWD/build/native/libgpushare.so" --missing-devices "$missing")

PATHS=${K8S_PATHS:-dra allocate}
status=0
for path in $PATHS; do
  echo "== 1. [$path] probe pods (C), $MEM_A/30% and $MEM_B/70%"
  timeout 120 "$NODE" "$PODS" "${common[@]}" --path "$path" "${probe_env[@]}" "${pods[@]}" -- "$PROBE" --fill \
    /etc/ld.so.preload /usr/local/gpushare/lib/libgpushare.so /run/gpushare/claim /run/gpushare/compute > "$OUT/$path-probe.json" \
    || fail "the probe pods did not run on the $path path (see above)"
done
if [ "${DRY_RUN:-0}" = 1 ]; then
  for path in $PATHS; do
    python3 scripts/gpu/k8s_summary.py "$OUT/$path-probe.json" | tee -a "$OUT/table.md"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
  done
  exit "$status"
fi

PY=$(command -v python3)
# The PyTorch pods' image: the probe's with python's directory first in PATH, and PYTHONPATH when
# this machine's torch needs one. The pod spec's own env turns PyTorch's caching allocator off (each
# tensor one cuMemAlloc of its size: the fill reaches the limit to the MiB).
torch_env=(--image-env "PATH=$(dirname "$PY"):$base_path" "${probe_env[@]:2}")
[ -z "${PYTHONPATH:-}" ] || torch_env+=(--image-env "PYTHONPATH=$PYTHONPATH")
echo "== 2a. solo, unlimited, ${SECONDS_LOOP}s"
PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 120 "$PY" scripts/gpu/k8s_pod.py --name solo --solo --seconds "$SECONDS_LOOP" > "$OUT/solo.json" \
  || fail "the solo run failed"
for path in $PATHS; do
  echo "== 2b. [$path] PyTorch pods at once, $MEM_A/30% and $MEM_B/70%"
  barrier=$(mktemp -d)
  timeout 240 "$NODE" "$PODS" "${common[@]}" --path "$path" "${torch_env[@]}" --container-env PYTORCH_NO_CUDA_MEMORY_CACHING=1 "${pods[@]}" -- \
    "$PY" "$PWD/scripts/gpu/k8s_pod.py" --name '{pod}' --barrier "$barrier" --parties 2 --seconds "$SECONDS_LOOP" > "$OUT/$path-torch.json" \
    || fail "the PyTorch pods did not run on the $path path (see above)"
  rm -rf "$barrier"
  python3 scripts/gpu/k8s_summary.py "$OUT/$path-probe.json" "$OUT/solo.json" "$OUT/$path-torch.json" | tee -a "$OUT/table.md"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
done
exit "$status"
