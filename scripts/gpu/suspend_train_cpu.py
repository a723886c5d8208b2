"""A CPU stand-in for suspend_train.py, for dry runs of suspend_check.py without a GPU (the
simulated backend): the same command line and the same JSON lines, made-up work. Its numbers
mean nothing; it only exercises the driver's logic (BUDGET_S, phases, the table).

    SUSPEND_TRAIN=scripts/gpu/suspend_train_cpu.py python3 scripts/gpu/suspend_check.py SOCK OUT NODE
"""
import json
import os
import sys
import time


def say(**kv):
    kv["t"] = round(time.time(), 3)
    print(json.dumps(kv), flush=True)


limit = int(os.environ.get("GPUSHARE_MEMORY_LIMIT", "0") or 0)
share = float(os.environ.get("GPUSHARE_COMPUTE_LIMIT", "100") or 100) / 100
say(event="start", pid=os.getpid(), slice_free=limit, slice_total=limit)
mode = sys.argv[1]
if mode == "steady":
    say(event="memcheck", free=limit, total=limit, past_refused=True, within_ok=True)
    say(event="ready")
    end, steps, t0 = time.time() + float(sys.argv[2]), 0, time.time()
    while time.time() < end:
        time.sleep(0.5)
        steps = int((time.time() - t0) * 20 * share)
        say(event="tick", steps=steps)
    say(event="final", steps=steps)
elif mode == "train":
    say(event="ready")
    for s in range(1, int(sys.argv[2]) + 1):
        time.sleep(0.02)
        if s % 10 == 0 or s == 1:
            say(event="step", step=s, loss=1.0 / s)
    say(event="final", final=0.1, first=1.0, params_sha="cpu-stand-in", ballast_ok=True)
else:
    say(event="ready")
    time.sleep(float(sys.argv[3]))
    say(event="final", iterations=1, ballast_ok=True)
