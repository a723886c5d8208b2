"""monitor_task.py: a limited PyTorch task for scripts/gpu-check-monitor.sh.

    python3 monitor_task.py --steps 0.3,0.6,0.9 --step-seconds 6 --hold-seconds 30 [--n 4096]

Inside a slice (GPUSHARE_MEMORY_LIMIT set by the daemon), holds a growing share of the slice's
memory: each fraction of --steps in turn (one tensor per step, so the region's memory rises in
steps a monitor can see), running bf16 N x N matmuls throughout, --step-seconds per step, then
--hold-seconds at the last one (the monitor scrapes then: memory stands still). Needs
PYTORCH_NO_CUDA_MEMORY_CACHING=1 so each tensor is one cuMemAlloc of exactly its size.
Prints one JSON line per step and a last one with the matmul rate.
"""
import argparse
import json
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="0.3,0.6,0.9")
    ap.add_argument("--step-seconds", type=float, default=6.0)
    ap.add_argument("--hold-seconds", type=float, default=30.0)
    ap.add_argument("--n", type=int, default=4096)
    args = ap.parse_args()
    import torch

    limit = int(os.environ.get("GPUSHARE_MEMORY_LIMIT", "0").split(",")[0] or 0)
    if limit <= 0:
        raise SystemExit("monitor_task: no GPUSHARE_MEMORY_LIMIT: run it as a gpushare task with --mem")
    a = torch.randn(args.n, args.n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(args.n, args.n, device="cuda", dtype=torch.bfloat16)
    torch.cuda.synchronize()
    held, done = [], 0
    t0 = time.time()

    def spin(seconds):
        nonlocal done
        end = time.time() + seconds
        while time.time() < end:
            for _ in range(4):
                a @ b
            torch.cuda.synchronize()
            done += 4

    for fraction in [float(x) for x in args.steps.split(",")]:
        want = int(limit * fraction)
        have = sum(t.numel() for t in held)
        # The matrices and the context count against the limit too: hold what the step asks beyond them.
        extra = want - have - 2 * a.numel() * a.element_size()
        if extra > 0:
            held.append(torch.empty(extra, dtype=torch.uint8, device="cuda"))
        torch.cuda.synchronize()
        print(json.dumps({"step": fraction, "held": sum(t.numel() for t in held), "limit": limit, "at": time.time()}), flush=True)
        spin(args.step_seconds)
    spin(args.hold_seconds)
    seconds = time.time() - t0
    print(json.dumps({"done": True, "matmuls": done, "per_s": done / seconds, "tflops": done * 2 * args.n ** 3 / seconds / 1e12}), flush=True)


if __name__ == "__main__":
    main()
