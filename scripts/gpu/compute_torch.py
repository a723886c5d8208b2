"""compute_torch.py: a PyTorch matmul loop for the compute-isolation checks
(scripts/gpu-check-compute.sh). Prints one JSON line, in compute_burn's "burn" format.

    python3 compute_torch.py burn SECONDS [N]

bf16 N x N matmuls (default 8192: about 1.5 ms each on an H100/H200), a synchronize every 4,
completed matmuls counted in 100 ms bins of wall time.
"""
import json
import os
import sys
import time

import torch


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] != "burn":
        print("usage: compute_torch.py burn SECONDS [N]", file=sys.stderr)
        return 2
    seconds = float(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    c = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(4):  # warm: cuBLAS picks its kernel
        torch.matmul(a, b, out=c)
    torch.cuda.synchronize()
    start_at = os.environ.get("START_AT")  # co-located runs start their loops together
    if start_at is not None:
        wait = float(start_at) - time.time()
        if 0 < wait < 60:
            time.sleep(wait)
    bins = [0] * int(seconds * 10)
    total = 0
    start = time.time()  # when the measured loop began: shares_run.py checks that none began late
    t0 = time.perf_counter()
    while True:
        for _ in range(4):
            torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
        t = time.perf_counter() - t0
        if t >= seconds:
            break
        bins[int(t * 10)] += 4
        total += 4
    print(json.dumps({"mode": "burn", "n": n, "kernels": total, "start": round(start, 3), "bin_s": 0.1, "bins": bins}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
