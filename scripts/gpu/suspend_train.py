"""A PyTorch training task for scripts/gpu-check-suspend.sh (run by the gpushare daemon).

    suspend_train.py train STEPS BALLAST_GIB   an MLP trained on fixed synthetic data, seed 0,
        deterministic kernels; holds BALLAST_GIB GiB of a known pattern on the GPU besides.
        Prints one JSON line per 10 steps and at the end {"final": ..., "params_sha": ...,
        "ballast_ok": ...}: two runs with the same STEPS must end with the same params_sha,
        whether or not one was suspended and resumed in between.
    suspend_train.py hold GIB SECONDS          holds GIB GiB (pattern), works for SECONDS,
        checks the pattern, prints {"final": ...}.

The slice (GPUSHARE_MEMORY_LIMIT) is what torch.cuda.mem_get_info reports under libgpushare;
it is printed at the start.
"""
import hashlib
import json
import os
import sys
import time

import torch

GiB = 1 << 30


def say(**kv):
    kv["t"] = round(time.time(), 3)
    print(json.dumps(kv), flush=True)


STEP = 1 << 27  # elements per chunk: every kernel stays far below 2**31 elements


def chunk(i, n):
    return torch.arange(i, min(i + STEP, n), dtype=torch.int64, device="cuda").mul_(2654435761).remainder_(1 << 31)


def pattern(gib):
    """GIB GiB of int64s whose values depend on their index: any lost or moved byte shows.
    Built and checked chunk by chunk with the same kernels, so both sides compute alike."""
    n = gib * GiB // 8
    x = torch.empty(n, dtype=torch.int64, device="cuda")
    for i in range(0, n, STEP):
        x[i : i + STEP] = chunk(i, n)
    return x


def check(x):
    n = x.numel()
    ok = True
    for i in range(0, n, STEP):
        ok = ok and bool(torch.equal(x[i : i + STEP], chunk(i, n)))
    return ok


def train(steps, ballast_gib):
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    free, total = torch.cuda.mem_get_info()
    say(event="start", pid=os.getpid(), slice_free=free, slice_total=total, device=torch.cuda.get_device_name())
    ballast = pattern(ballast_gib) if ballast_gib > 0 else None
    torch.cuda.synchronize()
    g = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(8192, 2048, device="cuda", generator=g)
    w_true = torch.randn(2048, 1, device="cuda", generator=g)
    y = torch.tanh(x @ w_true)
    model = torch.nn.Sequential(torch.nn.Linear(2048, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 1)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    say(event="ready", allocated=torch.cuda.memory_allocated(), reserved=torch.cuda.memory_reserved())
    first = None
    for s in range(1, steps + 1):
        for i in range(0, 8192, 1024):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(x[i : i + 1024]), y[i : i + 1024])
            loss.backward()
            opt.step()
        if s % 10 == 0 or s == 1:
            value = loss.item()
            first = first if first is not None else value
            say(event="step", step=s, loss=value)
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().numpy().tobytes())
    ballast_ok = check(ballast) if ballast is not None else None
    say(event="final", final=loss.item(), first=first, params_sha=h.hexdigest()[:16], ballast_ok=ballast_ok)


def hold(gib, seconds):
    free, total = torch.cuda.mem_get_info()
    say(event="start", pid=os.getpid(), slice_free=free, slice_total=total)
    x = pattern(gib)
    a = torch.randn(4096, 4096, device="cuda")
    torch.cuda.synchronize()
    say(event="ready", allocated=torch.cuda.memory_allocated())
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        a = torch.tanh(a @ a * 1e-3)
        n += 1
    torch.cuda.synchronize()
    say(event="final", iterations=n, ballast_ok=check(x))


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(int(sys.argv[2]), int(sys.argv[3]))
    else:
        hold(int(sys.argv[2]), float(sys.argv[3]))
