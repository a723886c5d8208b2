"""PyTorch matmul loop for scripts/gpu-check-partition.sh (knows nothing of gpushare).

    python3 partition_torch.py SECONDS [START_EPOCH_MS]

Runs bf16 8192x8192 matmuls back to back for SECONDS (from START_EPOCH_MS when given, so two
processes measure the same window) and prints one JSON line: matmuls per second, and the SMs
of the context PyTorch runs in (driver's cuCtxGetDevResource through ctypes).
"""
import ctypes
import json
import sys
import time

import torch

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
start_at = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0

a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
for _ in range(5):
    c = a @ b
torch.cuda.synchronize()


def ctx_sms():
    """SMs of the current context (the one PyTorch made current), or -1."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        ctx = ctypes.c_void_p()
        if cuda.cuCtxGetCurrent(ctypes.byref(ctx)) != 0 or not ctx.value:
            return -1
        res = (ctypes.c_ubyte * 144)()  # CUdevResource: type, 92 bytes, then the SM union
        if cuda.cuCtxGetDevResource(ctx, res, 1) != 0:
            return -1
        return int.from_bytes(bytes(res[96:100]), "little")
    except OSError:
        return -1


if start_at > 0:
    wait = start_at / 1e3 - time.time()
    if wait > 0:
        time.sleep(wait)
t0 = time.perf_counter()
n = 0
while time.perf_counter() - t0 < seconds:
    for _ in range(4):
        c = a @ b
    torch.cuda.synchronize()
    n += 4
elapsed = time.perf_counter() - t0
print(json.dumps({
    "device_sms": torch.cuda.get_device_properties(0).multi_processor_count,
    "ctx_sms": ctx_sms(),
    "matmuls": n,
    "seconds": round(elapsed, 3),
    "rate": n / elapsed,
    "tflops": n * 2 * 8192**3 / elapsed / 1e12,
}))
