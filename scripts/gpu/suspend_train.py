"""A PyTorch training task for scripts/gpu-check-suspend.sh (run by the gpushare daemon).

    suspend_train.py train STEPS BALLAST_GIB   an MLP trained on fixed synthetic data, seed 0,
        deterministic kernels; holds BALLAST_GIB GiB of a known pattern on the GPU besides.
        Prints one JSON line per 10 steps and at the end {"final": ..., "params_sha": ...,
        "ballast_ok": ...}: two runs with the same STEPS must end with the same params_sha,
        whether or not one was suspended and resumed in between.
    suspend_train.py hold GIB SECONDS          holds GIB GiB (pattern), works for SECONDS,
        checks the pattern, prints {"final": ...}.

    suspend_train.py steady SECONDS            first probes the memory slice (an allocation of
        what mem_get_info says is free plus 256 MiB must fail with OutOfMemoryError; one of half
        the free memory must succeed), then trains a bf16 MLP (batch 8192, width 8192: every
        step is GPU-bound) for SECONDS, printing {"event": "tick", "steps": N} every 0.5 s.

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


def steady(seconds):
    free, total = torch.cuda.mem_get_info()
    say(event="start", pid=os.getpid(), slice_free=free, slice_total=total, device=torch.cuda.get_device_name())
    try:
        past = torch.empty(free + (256 << 20), dtype=torch.uint8, device="cuda")
        past_refused = False
        del past
    except torch.OutOfMemoryError as e:
        past_refused = True
        say(event="oom", message=str(e).splitlines()[0][:300])
    try:
        within = torch.empty(free // 2, dtype=torch.uint8, device="cuda")
        within[-1] = 1
        torch.cuda.synchronize()
        within_ok = True
        del within
    except torch.OutOfMemoryError:
        within_ok = False
    torch.cuda.empty_cache()
    say(event="memcheck", free=free, total=total, past_refused=past_refused, within_ok=within_ok)
    torch.manual_seed(0)
    width = 8192
    model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, 1)).cuda().to(torch.bfloat16)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    x = torch.randn(8192, width, device="cuda", dtype=torch.bfloat16)
    y = torch.randn(8192, 1, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):  # warm up: kernels chosen, memory pooled
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    torch.cuda.synchronize()
    say(event="ready", allocated=torch.cuda.memory_allocated())
    steps = 0
    end = time.time() + seconds
    next_tick = time.time() + 0.5
    while time.time() < end:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        torch.cuda.synchronize()
        steps += 1
        if time.time() >= next_tick:
            say(event="tick", steps=steps)
            next_tick += 0.5
    say(event="final", steps=steps)


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "steady":
        steady(float(sys.argv[2]))
    else:
        hold(int(sys.argv[2]), float(sys.argv[3]))
