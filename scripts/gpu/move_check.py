"""The driver of scripts/gpu-check-move.sh (issue 22 item 5): a PyTorch task holding about 11 GiB
(scripts/gpu/swap_task.py) under libgpushare on GPU 0 is moved to GPU 1 as the daemon moves it
(src/node/move.ts): the library swaps its memory out, the checkpoint API checkpoints the rest and
restores it with the GPU pair (old UUID -> new UUID), the library swaps the memory in on the new
GPU. Side by side: the same task moved by the checkpoint API alone. Against an undisturbed run.

    move_check.py LIB OUT [BALLAST_GIB]
"""
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time


from swap_driving import Control, Task

LIB, OUT = sys.argv[1], sys.argv[2]
BALLAST = int(sys.argv[3]) if len(sys.argv) > 3 else 11
STEPS = 3000
os.makedirs(OUT, exist_ok=True)


def gpus():
    out = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid,name,memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, timeout=20).stdout
    rows = [[c.strip() for c in line.split(",")] for line in out.strip().splitlines()]
    return [{"index": int(r[0]), "uuid": r[1], "name": r[2], "used_mib": int(r[3])} for r in rows]


def gpu_of(pid):
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,gpu_uuid", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=20).stdout
    return sorted({line.split(",")[1].strip() for line in out.strip().splitlines() if line.split(",")[0].strip() == str(pid)})


class Pair(ctypes.Structure):
    _fields_ = [("old", ctypes.c_ubyte * 16), ("new", ctypes.c_ubyte * 16)]


class RestoreArgs(ctypes.Structure):  # cuda.h (12.8, 13): 64 bytes, reserved fields zero
    _fields_ = [("gpuPairs", ctypes.POINTER(Pair)), ("gpuPairsCount", ctypes.c_uint),
                ("reserved", ctypes.c_char * 44), ("reserved1", ctypes.c_uint64)]


def uuid_bytes(u):
    return (ctypes.c_ubyte * 16)(*bytes.fromhex(u.replace("GPU-", "").replace("-", "")))


cuda = ctypes.CDLL("libcuda.so.1")
assert cuda.cuInit(0) == 0
api = {n: getattr(cuda, f"cuCheckpointProcess{n}") for n in ("Lock", "Checkpoint", "Restore", "Unlock")}
for f in api.values():
    f.argtypes = [ctypes.c_int, ctypes.c_void_p]


def checkpoint_move(pid, old, new):
    """lock + checkpoint, restore with the pair + unlock: (rcs, checkpoint s, restore s)."""
    t0 = time.perf_counter()
    rc = [api["Lock"](pid, None), api["Checkpoint"](pid, None)]
    t1 = time.perf_counter()
    pairs = (Pair * 1)(Pair(uuid_bytes(old), uuid_bytes(new)))
    args = RestoreArgs(ctypes.cast(pairs, ctypes.POINTER(Pair)), 1)
    rc += [api["Restore"](pid, ctypes.byref(args)), api["Unlock"](pid, None)]
    return rc, t1 - t0, time.perf_counter() - t1


g = gpus()
if len(g) < 2 or g[0]["name"] != g[1]["name"]:
    print(f"needs 2 GPUs of the same model: {g}")
    sys.exit(2)
A, B = g[0]["uuid"], g[1]["uuid"]
results = {"ballast_gib": BALLAST, "gpus": g}
env = {"CUDA_VISIBLE_DEVICES": f"{A},{B}"}  # both visible, the task on ordinal 0 (the pair remaps it)

ref = Task("reference", dict(env, GPUSHARE_SWAP=tempfile.mkdtemp(prefix="gs-move-")), LIB, OUT, STEPS, BALLAST)
ref.next_event("ready")
results["reference"] = ref.finish()

# 1. the daemon's move: swap out, checkpoint the rest, restore onto B, swap in
sockdir = tempfile.mkdtemp(prefix="gs-move-")
mv = Task("move", dict(env, GPUSHARE_SWAP=sockdir), LIB, OUT, STEPS, BALLAST)
mv.next_event("ready")
ctl = Control(os.path.join(sockdir, f"{mv.p.pid}.sock"))
stage = ctl.ask("stage")
time.sleep(1.0)
before = {"gpus": gpus(), "task_on": gpu_of(mv.p.pid)}
t0 = time.perf_counter()
out = ctl.ask("out")
rc, ck_s, rs_s = checkpoint_move(mv.p.pid, A, B)
inn = ctl.ask("in")
total = time.perf_counter() - t0
after = {"gpus": gpus(), "task_on": gpu_of(mv.p.pid)}
mv_final = mv.finish()
results["move"] = {"stage": stage, "out": out, "rc": rc, "checkpoint_s": ck_s, "restore_s": rs_s, "in": inn,
                   "total_s": total, "before": before, "after": after, "final": mv_final}

# 2. the checkpoint API alone, the same task without swap
ck = Task("checkpoint", env, LIB, OUT, STEPS, BALLAST)
ck.next_event("ready")
time.sleep(1.0)
ck_before = {"gpus": gpus(), "task_on": gpu_of(ck.p.pid)}
t0 = time.perf_counter()
ck_rc, ck_ck_s, ck_rs_s = checkpoint_move(ck.p.pid, A, B)
ck_total = time.perf_counter() - t0
ck_after = {"gpus": gpus(), "task_on": gpu_of(ck.p.pid)}
ck_final = ck.finish()
results["checkpoint"] = {"rc": ck_rc, "checkpoint_s": ck_ck_s, "restore_s": ck_rs_s, "total_s": ck_total,
                         "before": ck_before, "after": ck_after, "final": ck_final}

same = lambda f: bool(f and results["reference"] and f.get("params_sha") == results["reference"].get("params_sha"))  # noqa: E731
r3 = lambda x: None if x is None else round(x, 3)  # noqa: E731
rows = [
    ("path", "swap out s", "checkpoint s", "restore s", "swap in s", "total s", "task on before -> after", "GPU0/GPU1 MiB after",
     "params = undisturbed", "ballast intact"),
    ("swap + checkpoint (the daemon's move)" + ("" if out.get("ok") and inn.get("ok") and rc == [0, 0, 0, 0] else f" (FAILED: rc {rc})"),
     r3(out.get("wall_s")), r3(ck_s), r3(rs_s), r3(inn.get("wall_s")), r3(total), f"{before['task_on']} -> {after['task_on']}",
     "/".join(str(x["used_mib"]) for x in after["gpus"][:2]), same(mv_final), bool(mv_final and mv_final.get("ballast_ok"))),
    ("checkpoint API alone" + ("" if ck_rc == [0, 0, 0, 0] else f" (FAILED: rc {ck_rc})"), "-", r3(ck_ck_s), r3(ck_rs_s), "-",
     r3(ck_total), f"{ck_before['task_on']} -> {ck_after['task_on']}", "/".join(str(x["used_mib"]) for x in ck_after["gpus"][:2]),
     same(ck_final), bool(ck_final and ck_final.get("ballast_ok"))),
]
lines = ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
lines.insert(1, "|" + "---|" * len(rows[0]))
lines.append("")
lines.append(f"swapped {out.get('bytes')} bytes; the swap-in's devices: {inn.get('devices')} (want {B}); staging pinned ahead in {stage.get('pinSeconds')} s")
table = "\n".join(lines)
print(table)
with open(os.path.join(OUT, "table.md"), "w") as f:
    f.write(table + "\n")
with open(os.path.join(OUT, "results.json"), "w") as f:
    json.dump(results, f, indent=1, default=str)
good = rc == [0, 0, 0, 0] and out.get("ok") and inn.get("ok") and same(mv_final) and after["task_on"] == [B]
sys.exit(0 if good else 1)
