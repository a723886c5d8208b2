"""Does pinning host memory stall a training loop in the same process? (issue 22: staging pinned
ahead paused the task for the whole pinning, 4.8-5.6 s for 13 GB on an H100, though the library
lets go of its own lock between 64 MiB chunks.)

    pin_stall.py [GIB]

A PyTorch loop (bf16 matmuls, synchronized each step) runs on the main thread while a second
thread pins GIB (default 8) of host memory in 64 MiB chunks with the driver API (ctypes lets go of
the GIL), one variant at a time:
  none          no pinning: the loop's own step time and longest gap
  hostalloc     cuMemHostAlloc chunks back to back (what swap.c's stage did)
  hostalloc-1ms the same with 1 ms asleep between chunks
  hostalloc-5ms the same with 5 ms asleep between chunks
  register      malloc'd chunks touched then pinned with cuMemHostRegister
  register-1ms  the same with 1 ms asleep between chunks
For each: the pinning's seconds, the loop's longest gap between steps while pinning, and its
steps/s then against `none`. Prints a table; the pinned memory is freed after each variant.
"""
import ctypes
import statistics
import sys
import threading
import time

import torch

GIB = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
CHUNK = 64 << 20
N = int(GIB * (1 << 30) // CHUNK)
cuda = ctypes.CDLL("libcuda.so.1")
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
cuda.cuMemHostAlloc.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t, ctypes.c_uint]
cuda.cuMemFreeHost.argtypes = [ctypes.c_void_p]
cuda.cuMemHostRegister_v2.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint]
cuda.cuMemHostUnregister.argtypes = [ctypes.c_void_p]
cuda.cuCtxGetCurrent.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
cuda.cuCtxSetCurrent.argtypes = [ctypes.c_void_p]

a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
b = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
torch.cuda.synchronize()
ctx = ctypes.c_void_p()
assert cuda.cuCtxGetCurrent(ctypes.byref(ctx)) == 0 and ctx.value


def step():
    c = a
    for _ in range(4):
        c = c @ b
    torch.cuda.synchronize()


def pinner(kind, sleep_s, out):
    assert cuda.cuCtxSetCurrent(ctx) == 0
    held = []
    t0 = time.perf_counter()
    for _ in range(N):
        if kind == "hostalloc":
            p = ctypes.c_void_p()
            rc = cuda.cuMemHostAlloc(ctypes.byref(p), CHUNK, 1)  # PORTABLE, as swap.c
            if rc != 0:
                out["error"] = f"cuMemHostAlloc {rc}"
                break
            held.append(p.value)
        else:
            p = libc.malloc(CHUNK)
            libc.memset(p, 0, CHUNK)
            rc = cuda.cuMemHostRegister_v2(p, CHUNK, 1)
            if rc != 0:
                out["error"] = f"cuMemHostRegister {rc}"
                libc.free(p)
                break
            held.append(p)
        if sleep_s:
            time.sleep(sleep_s)
    out["pin_s"] = time.perf_counter() - t0
    out["held"] = held


def run(variant):
    kind, _, nap = variant.partition("-")
    sleep_s = {"": 0, "1ms": 0.001, "5ms": 0.005}[nap]
    out = {}
    th = None if kind == "none" else threading.Thread(target=pinner, args=(kind, sleep_s, out))
    for _ in range(5):
        step()
    gaps, last, t0 = [], time.perf_counter(), time.perf_counter()
    if th:
        th.start()
    while (th and th.is_alive()) or (not th and time.perf_counter() - t0 < 3.0):
        step()
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    wall = time.perf_counter() - t0
    if th:
        th.join()
        t1 = time.perf_counter()
        for p in out.get("held", []):
            if kind == "hostalloc":
                cuda.cuMemFreeHost(ctypes.c_void_p(p))
            else:
                cuda.cuMemHostUnregister(ctypes.c_void_p(p))
                libc.free(ctypes.c_void_p(p))
        out["free_s"] = time.perf_counter() - t1
    return {"variant": variant, "pin_s": out.get("pin_s"), "free_s": out.get("free_s"), "error": out.get("error"),
            "steps": len(gaps), "steps_per_s": len(gaps) / wall, "max_gap_s": max(gaps) if gaps else None,
            "median_gap_s": statistics.median(gaps) if gaps else None}


rows = [run(v) for v in ("none", "hostalloc", "hostalloc-1ms", "hostalloc-5ms", "register", "register-1ms", "none")]
base = statistics.median(r["steps_per_s"] for r in rows if r["variant"] == "none")
print(f"{torch.cuda.get_device_name()}: pinning {N} chunks of 64 MiB ({N * CHUNK / 1e9:.1f} GB) beside a bf16 matmul loop")
print("| variant | pin s | free s | loop steps/s (vs none) | longest gap ms | median gap ms | error |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    f = lambda x, k=1: "-" if x is None else f"{x * k:.3f}"  # noqa: E731
    print(f"| {r['variant']} | {f(r['pin_s'])} | {f(r['free_s'])} | {r['steps_per_s']:.1f} ({r['steps_per_s'] / base:.2f}) | "
          f"{f(r['max_gap_s'], 1000)} | {f(r['median_gap_s'], 1000)} | {r['error'] or ''} |")
