"""A PyTorch task for scripts/gpu-check-timeshare.sh: grows a ballast of BALLAST_GIB GiB of a known
pattern on the GPU, 1 GiB at a time at GROW_GIB_PER_S (the daemon sees real use by sampling, so
a slice that grows faster than its look plus the headroom could meet the card first: README,
"Memory overcommit"), then trains an MLP for DURATION_S seconds of wall time.

    timeshare_task.py BALLAST_GIB DURATION_S GROW_GIB_PER_S

Prints {"event": "ready", ...} when the ballast is whole, {"event": "tick", "t": ..., "steps": ...}
every half second, and {"event": "final", "steps": ..., "ballast_ok": ...} at the end.
"""
import json
import os
import sys
import time

import torch

GiB = 1 << 30


def say(**kw):
    print(json.dumps(kw), flush=True)


def main():
    ballast_gib, duration, rate = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    torch.manual_seed(0)
    ballast = []
    for i in range(ballast_gib):
        t = torch.empty(GiB // 4, dtype=torch.int32, device="cuda")
        t.copy_(torch.arange(GiB // 4, dtype=torch.int32, device="cuda") ^ i)
        ballast.append(t)
        time.sleep(1.0 / rate)
    width = 4096
    model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, width)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    x = torch.randn(8192, width, device="cuda")
    torch.cuda.synchronize()
    say(event="ready", pid=os.getpid(), t=time.time(), reserved=torch.cuda.memory_reserved())
    start = last = time.time()
    steps = 0
    while time.time() - start < duration:
        opt.zero_grad(set_to_none=True)
        loss = model(x).square().mean()
        loss.backward()
        opt.step()
        steps += 1
        if steps % 10 == 0:
            torch.cuda.synchronize()
            now = time.time()
            if now - last >= 0.5:
                say(event="tick", t=now, steps=steps)
                last = now
    torch.cuda.synchronize()
    # Checked a slice at a time, after the model is gone: a whole GiB of reference on top of the
    # ballast met the task's own memory limit on the H100 (2026-12-07), after the training itself ran.
    del model, opt, x, loss
    torch.cuda.empty_cache()
    n, step = GiB // 4, (64 << 20) // 4
    ok = all(bool(torch.equal(t[lo:lo + step], torch.arange(lo, min(lo + step, n), dtype=torch.int32, device="cuda") ^ i))
             for i, t in enumerate(ballast) for lo in range(0, n, step))
    say(event="final", t=time.time(), steps=steps, ballast_ok=ok)


if __name__ == "__main__":
    main()
