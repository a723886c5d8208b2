"""The driver of scripts/gpu-check-swap.sh (issue 22): a PyTorch task holding about 11 GiB
(scripts/gpu/swap_task.py) under libgpushare, suspended and resumed while it trains, by slice
swap (the library's control socket, native/shim/SWAP.md) and by the CUDA checkpoint API, side
by side, against an undisturbed run of the same task.

    swap_check.py LIB OUT [BALLAST_GIB] [ROUNDS]

For each path: seconds from the request to the GPU memory being free (out) and to the task
running again (in), as the daemon sees them (the request's wall clock) and, for swap, as the
library reports them; GB/s; the GPU's used memory before and while out (nvidia-smi); whether
the task ended with the undisturbed run's parameters (sha256) and its ballast intact. Prints a
table (also OUT/table.md) and writes OUT/results.json.
"""
import ctypes
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import swap_driving

LIB, OUT = sys.argv[1], sys.argv[2]
BALLAST = int(sys.argv[3]) if len(sys.argv) > 3 else 11
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
STEPS = 4000  # about 50 s of training: room for every round of either path
BUDGET_S = 0.5
os.makedirs(OUT, exist_ok=True)
Control = swap_driving.Control


def Task(name, env):
    return swap_driving.Task(name, env, LIB, OUT, STEPS, BALLAST)


def gpu_used_mib():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=20).stdout
        return int(out.split()[0])
    except Exception:
        return None


def checkpoint_api():
    cuda = ctypes.CDLL("libcuda.so.1")
    assert cuda.cuInit(0) == 0
    fns = {}
    for n in ("Lock", "Checkpoint", "Restore", "Unlock"):
        f = getattr(cuda, f"cuCheckpointProcess{n}")
        f.argtypes = [ctypes.c_int, ctypes.c_void_p]
        fns[n] = f
    return fns


def gbps(b, s):
    return round(b / s / 1e9, 2) if s else None


results = {"ballast_gib": BALLAST, "rounds": ROUNDS, "budget_s": BUDGET_S}

# 1. undisturbed (swap on, never asked): the reference parameters
sockdir = tempfile.mkdtemp(prefix="gs-swap-")
ref = Task("reference", {"GPUSHARE_SWAP": sockdir})
ref.next_event("ready")
ref_final = ref.finish()
results["reference"] = ref_final

# 2. slice swap: stage ahead, then ROUNDS x (out, SIGSTOP, pause, SIGCONT, in)
sw = Task("swap", {"GPUSHARE_SWAP": sockdir})
ready = sw.next_event("ready")
ctl = Control(os.path.join(sockdir, f"{sw.p.pid}.sock"))
status = ctl.ask("status")
stage = ctl.ask("stage")
rounds = []
for r in range(ROUNDS):
    time.sleep(1.0)
    before = gpu_used_mib()
    out = ctl.ask("out")
    during = gpu_used_mib()
    os.kill(sw.p.pid, signal.SIGSTOP)
    time.sleep(1.0)
    os.kill(sw.p.pid, signal.SIGCONT)
    inn = ctl.ask("in")
    rounds.append({"out": out, "in": inn, "gpu_used_before_mib": before, "gpu_used_out_mib": during})
sw_final = sw.finish()
results["swap"] = {"status": status, "stage": stage, "rounds": rounds, "final": sw_final, "ready": ready, "unasked": ctl.events}

# 3. checkpoint API: the same task without swap, locked + checkpointed, restored + unlocked
# (SKIP_CHECKPOINT=1 leaves it out: a re-check of the swap path alone, a minute shorter)
ck_final, ck_rounds = None, []
ck = None if os.environ.get("SKIP_CHECKPOINT") == "1" else Task("checkpoint", {})
if ck is not None:
    ck.next_event("ready")
    api = checkpoint_api()
for r in range(min(ROUNDS, 2) if ck is not None else 0):  # 10 s a round
    time.sleep(1.0)
    before = gpu_used_mib()
    t0 = time.perf_counter()
    rc = [api["Lock"](ck.p.pid, None)]
    rc.append(api["Checkpoint"](ck.p.pid, None))
    t_out = time.perf_counter() - t0
    during = gpu_used_mib()
    time.sleep(1.0)
    t0 = time.perf_counter()
    rc.append(api["Restore"](ck.p.pid, None))
    rc.append(api["Unlock"](ck.p.pid, None))
    t_in = time.perf_counter() - t0
    ck_rounds.append({"rc": rc, "out_s": t_out, "in_s": t_in, "gpu_used_before_mib": before, "gpu_used_out_mib": during})
if ck is not None:
    ck_final = ck.finish()
results["checkpoint"] = {"rounds": ck_rounds, "final": ck_final}

# ---- the table ----
nbytes = status.get("bytes", 0)


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 3) if xs else None


ok_swap = all(r["out"].get("ok") and r["in"].get("ok") for r in rounds)
sw_out = med([r["out"]["wall_s"] for r in rounds])
sw_in = med([r["in"]["wall_s"] for r in rounds])
ck_out = med([r["out_s"] for r in ck_rounds])
ck_in = med([r["in_s"] for r in ck_rounds])
same = lambda f: bool(f and ref_final and f.get("params_sha") == ref_final.get("params_sha"))  # noqa: E731
rows = [
    ("path", "bytes moved", "out s (median)", "in s (median)", "out GB/s", "in GB/s", "GPU MiB before -> out",
     "params = undisturbed", "ballast intact", "max pause seen by task s"),
    ("slice swap" + ("" if ok_swap else " (FAILED: see results.json)"), nbytes, sw_out, sw_in, gbps(nbytes, sw_out),
     gbps(nbytes, sw_in), f"{med([r['gpu_used_before_mib'] for r in rounds])} -> {med([r['gpu_used_out_mib'] for r in rounds])}",
     same(sw_final), bool(sw_final and sw_final.get("ballast_ok")), sw_final and sw_final.get("max_gap_s")),
    ("checkpoint API", "(all)", ck_out, ck_in, gbps(nbytes, ck_out), gbps(nbytes, ck_in),
     f"{med([r['gpu_used_before_mib'] for r in ck_rounds])} -> {med([r['gpu_used_out_mib'] for r in ck_rounds])}",
     same(ck_final), bool(ck_final and ck_final.get("ballast_ok")), ck_final and ck_final.get("max_gap_s")),
]
lines = ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
lines.insert(1, "|" + "---|" * len(rows[0]))
lib_out = med([r["out"].get("seconds") for r in rounds])
lib_in = med([r["in"].get("seconds") for r in rounds])
lines.append("")
lines.append(f"swap as the library times it (request to done): out {lib_out} s, in {lib_in} s; staging pinned ahead in "
             f"{stage.get('pinSeconds')} s ({stage.get('pinnedBytes')} bytes of host memory); budget {BUDGET_S} s each: "
             f"{'MET' if sw_out is not None and sw_in is not None and sw_out <= BUDGET_S and sw_in <= BUDGET_S else 'NOT MET'}")
lines.append(f"reference run: {ref_final and ref_final.get('params_sha', '')[:16]}; swap run: "
             f"{sw_final and sw_final.get('params_sha', '')[:16]}; checkpoint run: {ck_final and ck_final.get('params_sha', '')[:16]}")
# Each round as the library answered it: a refused request says why here, not only in results.json.
for i, r in enumerate(rounds):
    for op in ("out", "in"):
        a = r[op]
        lines.append(f"round {i + 1} {op}: " + (f"ok, {a.get('seconds')} s (wall {round(a['wall_s'], 3)} s)" if a.get("ok") else
                     f"REFUSED {a.get('code')}: {a.get('message')} (wall {round(a['wall_s'], 3)} s)") +
                     (f", GPU MiB {r['gpu_used_before_mib']} -> {r['gpu_used_out_mib']}" if op == "out" else ""))
table = "\n".join(lines)
print(table)
with open(os.path.join(OUT, "table.md"), "w") as f:
    f.write(table + "\n")
with open(os.path.join(OUT, "results.json"), "w") as f:
    json.dump(results, f, indent=1, default=str)
good = ok_swap and same(sw_final) and bool(sw_final and sw_final.get("ballast_ok"))
sys.exit(0 if good else 1)
