"""k8s_pod.py: a PyTorch "pod" for scripts/gpu-check-k8s.sh, started by test/k8s/pods-run.ts as
the process its claim's CDI edits describe (or alone, unlimited, for the solo baseline).

    python3 k8s_pod.py --name NAME [--barrier DIR --parties N] [--seconds S] [--n N]

1. Memory: what CUDA shows (torch.cuda.mem_get_info: inside a slice, its total is the slice's
   limit), then fills what is free (1 GiB tensors, then the rest in one) and asks one step past
   it (1 MiB more), which must be CUDA's out of memory. Needs PYTORCH_NO_CUDA_MEMORY_CACHING=1
   (the pod's own env), so each tensor is one cuMemAlloc of exactly its size. Skipped with --solo
   (an unlimited run has the whole GPU, and other pods may be on it).
2. Compute: frees it all, waits at the barrier (a file per pod in DIR: the pods' loops start
   together), then bf16 N x N matmuls for S seconds, a synchronize every 4.
Prints one JSON line.
"""
import argparse
import json
import os
import time

MiB = 1 << 20
GiB = 1 << 30


def is_oom(err):
    return "out of memory" in str(err).lower()


def fill(torch):
    free, total = torch.cuda.mem_get_info()
    held, got, error = [], 0, None
    try:
        while free - got >= GiB:
            held.append(torch.empty(GiB, dtype=torch.uint8, device="cuda"))
            got += GiB
        rest = torch.cuda.mem_get_info()[0]
        if rest > 0:
            held.append(torch.empty(rest, dtype=torch.uint8, device="cuda"))
            got += rest
    except RuntimeError as e:
        error = str(e).splitlines()[0]
    free_after, _ = torch.cuda.mem_get_info()
    try:
        held.append(torch.empty(MiB, dtype=torch.uint8, device="cuda"))
        step_past = "succeeded"
    except RuntimeError as e:
        step_past = "oom" if is_oom(e) else f"error: {str(e).splitlines()[0]}"
    del held
    torch.cuda.synchronize()
    return {"total": total, "free_before": free, "allocated": got, "fill_error": error, "free_after": free_after, "step_past": step_past}


def barrier(directory, name, parties, timeout=90.0):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"{name}.ready"), "w") as f:
        f.write(str(time.time()))
    deadline = time.time() + timeout
    while len([f for f in os.listdir(directory) if f.endswith(".ready")]) < parties:
        if time.time() > deadline:
            return False
        time.sleep(0.005)
    return True


def burn(torch, n):
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    c = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(4):  # cuBLAS picks its kernel
        torch.matmul(a, b, out=c)
    torch.cuda.synchronize()
    return a, b, c


def loop(torch, operands, seconds):
    a, b, c = operands
    count = 0
    t0 = time.perf_counter()
    while True:
        for _ in range(4):
            torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
        count += 4
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return count, elapsed


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--barrier")
    p.add_argument("--parties", type=int, default=1)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--n", type=int, default=8192)
    p.add_argument("--solo", action="store_true")
    args = p.parse_args()
    import torch
    torch.cuda.init()
    out = {"pod": args.name, "limit_env": os.environ.get("GPUSHARE_MEMORY_LIMIT"), "cores_env": os.environ.get("GPUSHARE_COMPUTE_LIMIT"),
           "caching_off": os.environ.get("PYTORCH_NO_CUDA_MEMORY_CACHING") == "1"}
    with open("/proc/self/maps") as f:
        out["library_mapped"] = "libgpushare" in f.read()
    if not args.solo:
        out["memory"] = fill(torch)
    operands = burn(torch, args.n)
    out["barrier"] = barrier(args.barrier, args.name, args.parties) if args.barrier else None
    count, elapsed = loop(torch, operands, args.seconds)
    out.update({"matmuls": count, "seconds": elapsed, "per_s": count / elapsed, "tflops": 2 * args.n ** 3 * count / elapsed / 1e12})
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
