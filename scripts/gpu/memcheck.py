"""Real-GPU checks of libgpushare's memory isolation (issue 3), one check per subcommand.

Each subcommand runs in its own process (started by scripts/gpu-check-memory.sh with
LD_PRELOAD and the limit in its environment) and prints one JSON line:
{"check": ..., "ok": bool, "detail": ...}. Sizes are kept small: never ask for more managed
memory than the card has free.
"""
import json
import os
import subprocess
import sys

MiB = 1 << 20
GiB = 1 << 30


def report(check, ok, **detail):
    print(json.dumps({"check": check, "ok": bool(ok), "detail": detail}), flush=True)


def limit_bytes():
    text = os.environ["GPUSHARE_MEMORY_LIMIT"]
    units = {"Gi": GiB, "Mi": MiB}
    return int(text[:-2]) * units[text[-2:]]


def is_oom(err):
    return "out of memory" in str(err).lower()


def torch_fill():
    """Fill the slice to the byte with the caching allocator off, then one byte more must fail."""
    import torch
    torch.cuda.init()
    free, total = torch.cuda.mem_get_info()
    limit = limit_bytes()
    held = []
    try:
        held.append(torch.empty(free, dtype=torch.uint8, device="cuda"))
        filled = True
    except RuntimeError as e:
        filled = False
        fill_error = str(e).splitlines()[0]
    free_after, _ = torch.cuda.mem_get_info()
    try:
        held.append(torch.empty(1, dtype=torch.uint8, device="cuda"))
        one_more = "succeeded"
    except RuntimeError as e:
        one_more = "oom" if is_oom(e) else f"error: {e}"
    ok = total == limit and filled and free_after == 0 and one_more == "oom"
    report("torch fills the slice to the byte, +1 byte fails", ok, total=total, limit=limit, free_before=free,
           filled=filled if filled else fill_error, free_after=free_after, one_byte_more=one_more)


def torch_meminfo():
    import torch
    free, total = torch.cuda.mem_get_info()
    smi = subprocess.run(["nvidia-smi", "--query-gpu=memory.total,memory.used,memory.free", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True).stdout.strip().splitlines()[0]
    smi_total = int(smi.split(",")[0]) * MiB
    limit = limit_bytes()
    report("mem_get_info and nvidia-smi inside show the slice", total == limit and smi_total == limit,
           torch_total=total, torch_free=free, nvidia_smi=smi, limit=limit)


def torch_expandable():
    """PyTorch's expandable segments allocate through cuMemCreate/cuMemMap (VMM)."""
    import torch
    limit = limit_bytes()
    chunks, got = [], 0
    err = None
    while got < 2 * limit:
        try:
            chunks.append(torch.empty(64 * MiB, dtype=torch.uint8, device="cuda"))
            got += 64 * MiB
        except RuntimeError as e:
            err = str(e).splitlines()[0]
            break
    report("expandable segments (cuMemCreate) stop at the limit", err is not None and is_oom(err) and got <= limit,
           allocated=got, limit=limit, error=err)


def torch_graph():
    """Memory allocated while capturing and replaying a CUDA graph counts against the limit."""
    import torch
    limit = limit_bytes()
    static_in = torch.zeros(16 * MiB // 4, device="cuda")
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = static_in * 2 + 1
    g.replay()
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    used = total - free
    try:
        big = torch.empty(limit - used + 64 * MiB, dtype=torch.uint8, device="cuda")
        over = "succeeded"
        del big
    except RuntimeError as e:
        over = "oom" if is_oom(e) else str(e)
    report("CUDA graph memory is counted", used >= 16 * MiB and over == "oom" and float(out[0]) == 1.0,
           used_after_graph=used, limit=limit, allocation_past_limit=over)


def torch_share(role):
    """Two processes with one region: the first holds 60% of the limit, so the second cannot."""
    import torch
    import time
    limit = limit_bytes()
    want = int(limit * 0.6)
    try:
        held = torch.empty(want, dtype=torch.uint8, device="cuda")  # noqa: F841 (kept alive while sleeping)
        result = "allocated"
    except RuntimeError as e:
        result = "oom" if is_oom(e) else str(e)
    print(json.dumps({"role": role, "result": result}), flush=True)
    if role == "first":
        time.sleep(8)


def cupy_fill():
    import cupy
    limit = limit_bytes()
    chunks, got, err = [], 0, None
    while got < 2 * limit:
        try:
            chunks.append(cupy.empty(32 * MiB, dtype=cupy.uint8))
            got += 32 * MiB
        except cupy.cuda.memory.OutOfMemoryError as e:
            err = str(e).splitlines()[0]
            break
    report("CuPy is caught", err is not None and got <= limit, allocated=got, limit=limit, error=err)


def oversubscribe():
    """With GPUSHARE_OVERSUBSCRIBE=1 a 2 GiB tensor lives in a 1 GiB slice (host-backed) and computes right."""
    import torch
    n = 2 * GiB // 4
    try:
        x = torch.ones(n, device="cuda")
        s = float(x.sum())
        free, total = torch.cuda.mem_get_info()
        # host-backed bytes are not the slice's: the slice still reports under its 1 GiB
        ok = s == float(n) and total == limit_bytes() and total - free < GiB
        detail = {"sum": s, "expected": float(n), "slice_total": total, "slice_used": total - free}
    except RuntimeError as e:
        ok, detail = False, {"error": str(e).splitlines()[0]}
    report("oversubscription: 2 GiB tensor in a 1 GiB slice", ok, **detail)


def hold(mib):
    """Holds `mib` MiB on CUDA device 0 for 15 s; prints its UUID and what it holds (for the nvidia-smi check)."""
    import time
    import torch
    x = torch.empty(int(mib) * MiB, dtype=torch.uint8, device="cuda")  # noqa: F841 (kept alive while sleeping)
    torch.cuda.synchronize()
    uuid = "GPU-" + str(torch.cuda.get_device_properties(0).uuid)
    free, total = torch.cuda.mem_get_info()
    print(json.dumps({"uuid": uuid, "held": int(mib) * MiB, "slice_used": total - free}), flush=True)
    time.sleep(15)


def scrub(expect_zero):
    """Freed memory handed out again reads 0 with GPUSHARE_SCRUB=1 (and still holds the old
    bytes without it: the control run, which shows the check can fail). Caching allocator off,
    so torch's frees reach cuMemFree."""
    import torch
    n = 256 * MiB
    x = torch.full((n,), 0xAB, dtype=torch.uint8, device="cuda")
    torch.cuda.synchronize()
    ptr = x.data_ptr()
    del x
    y = torch.empty(n, dtype=torch.uint8, device="cuda")
    same = y.data_ptr() == ptr
    nonzero = int((y != 0).sum())
    if expect_zero:
        report("GPUSHARE_SCRUB: freed memory reads 0 when handed out again", same and nonzero == 0, same_address=same,
               nonzero_bytes=nonzero)
    else:
        report("scrub control (off): old bytes are visible, so the check above can fail", same and nonzero > 0,
               same_address=same, nonzero_bytes=nonzero)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "share":
        torch_share(sys.argv[2])
    elif cmd == "hold":
        hold(sys.argv[2])
    elif cmd == "scrub":
        scrub(sys.argv[2] == "on")
    else:
        {"fill": torch_fill, "meminfo": torch_meminfo, "expandable": torch_expandable, "graph": torch_graph,
         "cupy": cupy_fill, "oversubscribe": oversubscribe}[cmd]()
