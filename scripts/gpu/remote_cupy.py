"""CuPy over the remote client (scripts/gpu-check-remote.sh): an elementwise kernel and a matmul
on fixed inputs, run natively and remotely; prints one JSON line with the results' SHA-256
(compared bit for bit by the script) or the error and the stage it happened in (copy in,
elementwise, cublas handle: cuBLAS's start alone, matmul, copy out). Usage: remote_cupy.py MODE"""
import hashlib
import json
import sys
import time

mode = sys.argv[1] if len(sys.argv) > 1 else "native"
stage = "import"
try:
    import cupy as cp
except Exception as e:  # not installed on this machine: the case is skipped, not failed
    print(json.dumps({"case": "cupy", "mode": mode, "skip": f"cupy not importable: {e}"}))
    sys.exit(0)
try:
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024), dtype=np.float32)
    b = rng.standard_normal((1024, 1024), dtype=np.float32)
    t0 = time.perf_counter()
    stage = "copy in"
    da, db = cp.asarray(a), cp.asarray(b)
    stage = "elementwise"
    saxpy = cp.ElementwiseKernel("float32 x, float32 y", "float32 z", "z = 2.5f * x + y", "gs_saxpy")
    e = saxpy(da, db)
    cp.cuda.Device().synchronize()
    stage = "cublas handle"  # cublasCreate alone, before any GEMM
    cp.cuda.device.get_cublas_handle()
    stage = "matmul"
    m = da @ db
    cp.cuda.Device().synchronize()
    elapsed = time.perf_counter() - t0
    stage = "copy out"
    h = hashlib.sha256()
    h.update(cp.asnumpy(e).tobytes())
    h.update(cp.asnumpy(m).tobytes())
    ok = bool(np.array_equal(cp.asnumpy(e), np.float32(2.5) * a + b))
    print(json.dumps({"case": "cupy", "mode": mode, "sha256": h.hexdigest(), "elementwise_matches_numpy": ok,
                      "seconds": round(elapsed, 3), "device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode()}))
except Exception as e:
    print(json.dumps({"case": "cupy", "mode": mode, "stage": stage,
                      "error": f"{stage}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}))
    sys.exit(1)
