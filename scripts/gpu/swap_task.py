"""A PyTorch task for scripts/gpu-check-swap.sh: holds BALLAST_GIB GiB of a known pattern on the
GPU and trains an MLP on fixed synthetic data (seed 0, deterministic kernels) for STEPS steps.

    swap_task.py STEPS BALLAST_GIB

Prints {"event": "ready", ...} once the ballast is made and the first step ran, a line per 20
steps, and at the end {"event": "final", "params_sha": ..., "ballast_ok": ..., "max_gap_s": ...}:
two runs with the same STEPS end with the same params_sha whether or not the task was swapped
out and in (or checkpointed) in between. max_gap_s: the longest wall-clock time between two
steps (the pause the program saw).
"""
import hashlib
import json
import os
import sys
import time

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
import torch  # noqa: E402

from suspend_train import GiB, check, pattern, say  # noqa: E402  the same known pattern and its check


def main():
    steps, ballast_gib = int(sys.argv[1]), int(sys.argv[2])
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    ballast = pattern(ballast_gib)
    width = 2048
    model = torch.nn.Sequential(
        torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, 16)
    ).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    g = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(4096, width, device="cuda", generator=g)
    y = torch.randn(4096, 16, device="cuda", generator=g)
    last, max_gap = None, 0.0
    for i in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if i % 20 == 0 or i == steps - 1:
            lv = float(loss.item())  # a device-to-host copy every 20 steps
            now = time.time()
            if i == 0:
                say(event="ready", pid=os.getpid(), allocated=torch.cuda.memory_allocated(), reserved=torch.cuda.memory_reserved())
            else:
                say(event="step", step=i, loss=lv)
        now = time.time()
        if last is not None:
            max_gap = max(max_gap, now - last)
        last = now
        time.sleep(0.01)  # ~50 s for 4000 steps: room for the swaps
    torch.cuda.synchronize()
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().numpy().tobytes())
    say(event="final", params_sha=h.hexdigest(), ballast_ok=check(ballast), max_gap_s=round(max_gap, 4), loss=float(loss.item()))


if __name__ == "__main__":
    main()
