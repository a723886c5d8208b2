"""CUDA IPC of swappable memory on a real GPU (issue 22 item 2, native/shim/SWAP.md "Sharing memory
between processes"): with slice swap on, every large cudaMalloc is VMM memory, which the driver's own
cuIpcGetMemHandle refuses; libgpushare serves those handles itself. This checks that PyTorch's
multiprocessing (CUDA tensors sent between processes, spawn) and the raw driver path work under
libgpushare with swap on, bytes and results exact, and what the swap does while a tensor is shared.

    ipc_check.py LIB OUT

Run it as scripts/gpu-check-ipc.sh does: under LD_PRELOAD=LIB with GPUSHARE_SWAP=<dir> (the
spawned children inherit both). Rows (each PASS/FAIL with what was seen):
  library          libgpushare is loaded and the parent's tensor is swappable (its control socket's
                   status counts it)
  torch p->c       a tensor sent to a spawned child: the child's checksum equals the parent's; the
                   child's in-place write is seen by the parent
  torch view       a view at a storage offset (x[1000:3000]) sent: the child sees exactly those values
  torch c->p       a tensor made in a child, sent to the parent: the parent's checksum equals the child's
  swap exported    while a child holds the parent's tensor: the swap-out is refused (code exported);
                   after the child is gone: swapped out and in, every byte the same
  driver p->c      cuMemAlloc + cuIpcGetMemHandle (ctypes) in this process, cuIpcOpenMemHandle in a
                   plain subprocess under the library: bytes both ways
  open cost        milliseconds of one cuIpcOpenMemHandle + close through libgpushare (median of 5)
  driver refuses   (informative, a subprocess WITHOUT libgpushare) the driver's cuIpcGetMemHandle on
                   cuMemCreate memory: its error code, i.e. why the library serves these handles
  driver interior  (informative, without libgpushare) the driver's own handle of an interior pointer
                   (base + 1 MiB) opens at: "base" or "base+offset" (libgpushare returns base+offset)
Writes results.json and table.md to OUT; exit 1 if a PASS/FAIL row failed.
"""
import ctypes
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import torch
import torch.multiprocessing as mp

MiB = 1 << 20


def digest(t):
    return hashlib.sha256(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()[:16]


class Ctl:
    """This process's swap control socket, one connection held open: a slice left swapped out
    when its connection closes is swapped back in by the library (native/shim/SWAP.md), so a
    swap-out and its swap-in go over one connection, as the daemon sends them."""

    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(os.path.join(os.environ["GPUSHARE_SWAP"], f"{os.getpid()}.sock"))
        self.f = self.s.makefile()

    def __call__(self, cmd):
        """One command; the answer line (events skipped)."""
        self.s.sendall((cmd + "\n").encode())
        while True:
            line = self.f.readline()
            if not line or not line.startswith('{"event":'):
                return json.loads(line) if line else {}

    def close(self):
        self.f.close()
        self.s.close()


def ctl(cmd):
    """One command on a connection of its own (status; never a swap-out left open)."""
    c = Ctl()
    try:
        return c(cmd)
    finally:
        c.close()


# ---- children (spawned: fresh processes, under the same LD_PRELOAD) -------------------------

def child_read_write(q_in, q_out):
    x = q_in.get()
    q_out.put(("digest", digest(x), float(x.double().sum())))
    x[:1000] = 7.0
    torch.cuda.synchronize()
    q_out.put(("wrote",))
    q_in.get()  # hold the tensor (and its mapping) until told


def child_view(q_in, q_out):
    v = q_in.get()
    q_out.put(("view", v.tolist()))


def child_make(q_out, q_done):
    torch.manual_seed(7)
    y = torch.randn(8 * MiB // 4, device="cuda")
    q_out.put((y, digest(y)))
    q_done.get()  # the producer keeps the tensor alive until the consumer is done


# ---- the raw driver path (ctypes) -------------------------------------------------------------

DRIVER_CHILD = r"""
import ctypes, sys, time
cu = ctypes.CDLL("libcuda.so.1")
h = bytes.fromhex(sys.argv[1]); n = int(sys.argv[2]); mode = sys.argv[3]
class H(ctypes.Structure): _fields_ = [("r", ctypes.c_char * 64)]
assert cu.cuInit(0) == 0
dev = ctypes.c_int(); ctx = ctypes.c_void_p()
assert cu.cuDeviceGet(ctypes.byref(dev), 0) == 0
assert cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev) == 0 and cu.cuCtxSetCurrent(ctx) == 0
hh = H.from_buffer_copy(h)
p = ctypes.c_uint64()
if mode == "cost":
    ts = []
    for _ in range(5):
        t0 = time.perf_counter(); r = cu.cuIpcOpenMemHandle_v2(ctypes.byref(p), hh, 1)
        assert r == 0, r
        assert cu.cuIpcCloseMemHandle(p) == 0
        ts.append((time.perf_counter() - t0) * 1e3)
    print(" ".join(f"{t:.3f}" for t in ts)); sys.exit(0)
r = cu.cuIpcOpenMemHandle_v2(ctypes.byref(p), hh, 1)
if r != 0: print("open-error", r); sys.exit(2)
buf = (ctypes.c_ubyte * n)()
assert cu.cuMemcpyDtoH_v2(buf, p, ctypes.c_size_t(n)) == 0
print("read", bytes(buf[:32]).hex(), sum(buf) % 1000003)
if mode == "write":
    w = (ctypes.c_ubyte * 4096)(*([0xA5] * 4096))
    assert cu.cuMemcpyHtoD_v2(p, w, ctypes.c_size_t(4096)) == 0 and cu.cuCtxSynchronize() == 0
assert cu.cuIpcCloseMemHandle(p) == 0
"""

DRIVER_ONLY = r"""
import ctypes, json, subprocess, sys
cu = ctypes.CDLL("libcuda.so.1")
class H(ctypes.Structure): _fields_ = [("r", ctypes.c_char * 64)]
class Loc(ctypes.Structure): _fields_ = [("type", ctypes.c_int), ("id", ctypes.c_int)]
class Prop(ctypes.Structure): _fields_ = [("type", ctypes.c_int), ("handles", ctypes.c_int), ("loc", Loc), ("win32", ctypes.c_void_p), ("flags", ctypes.c_ubyte * 8)]
class Acc(ctypes.Structure): _fields_ = [("loc", Loc), ("flags", ctypes.c_int)]
assert cu.cuInit(0) == 0
dev = ctypes.c_int(); ctx = ctypes.c_void_p()
assert cu.cuDeviceGet(ctypes.byref(dev), 0) == 0
assert cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev) == 0 and cu.cuCtxSetCurrent(ctx) == 0
out = {}
# VMM memory: what the driver's IPC says of it
prop = Prop(1, 1, Loc(1, 0)); g = ctypes.c_size_t()
assert cu.cuMemGetAllocationGranularity(ctypes.byref(g), ctypes.byref(prop), 0) == 0
size = 16 * g.value; h = ctypes.c_uint64(); va = ctypes.c_uint64()
assert cu.cuMemCreate(ctypes.byref(h), ctypes.c_size_t(size), ctypes.byref(prop), ctypes.c_ulonglong(0)) == 0
assert cu.cuMemAddressReserve(ctypes.byref(va), ctypes.c_size_t(size), ctypes.c_size_t(0), ctypes.c_uint64(0), ctypes.c_ulonglong(0)) == 0
assert cu.cuMemMap(va, ctypes.c_size_t(size), ctypes.c_size_t(0), h, ctypes.c_ulonglong(0)) == 0
acc = Acc(Loc(1, 0), 3)
assert cu.cuMemSetAccess(va, ctypes.c_size_t(size), ctypes.byref(acc), ctypes.c_size_t(1)) == 0
hh = H()
out["vmm"] = cu.cuIpcGetMemHandle(ctypes.byref(hh), va)
# an interior pointer of plain memory: where does the driver's open put it?
p = ctypes.c_uint64(); n = 4 << 20
assert cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(n)) == 0
pat = b"".join(bytes([(k % 251)]) * 4096 for k in range(n // 4096))
assert cu.cuMemcpyHtoD_v2(p, ctypes.create_string_buffer(pat, n), ctypes.c_size_t(n)) == 0
r = cu.cuIpcGetMemHandle(ctypes.byref(hh), ctypes.c_uint64(p.value + (1 << 20)))
if r != 0:
    out["interior"] = f"refused ({r})"
else:
    c = subprocess.run([sys.executable, "-c", sys.argv[1], bytes(hh).hex(), "16", "read"], capture_output=True, text=True, timeout=60)
    first = c.stdout.split()[1][:2] if c.stdout.startswith("read") else None
    at_base, at_off = f"{pat[0]:02x}", f"{pat[1 << 20]:02x}"
    out["interior"] = "base" if first == at_base else "base+offset" if first == at_off else f"unclear ({c.stdout.strip()} {c.stderr.strip()[-200:]})"
print(json.dumps(out))
"""


def driver_rows(rows):
    cu = ctypes.CDLL("libcuda.so.1")

    class H(ctypes.Structure):
        _fields_ = [("r", ctypes.c_char * 64)]

    torch.cuda.init()
    torch.zeros(1, device="cuda")  # the primary context, current on this thread
    n = 32 * MiB
    p = ctypes.c_uint64()
    assert cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(n)) == 0
    pat = bytes((i * 7 + 3) % 256 for i in range(4096)) * (n // 4096)
    src = ctypes.create_string_buffer(pat, n)
    assert cu.cuMemcpyHtoD_v2(p, src, ctypes.c_size_t(n)) == 0
    h = H()
    r = cu.cuIpcGetMemHandle(ctypes.byref(h), p)
    if r != 0:
        rows.append(("driver p->c", False, f"cuIpcGetMemHandle: CUDA error {r}"))
        return
    env = dict(os.environ)
    c = subprocess.run([sys.executable, "-c", DRIVER_CHILD, bytes(h).hex(), str(n), "write"], capture_output=True, text=True, env=env, timeout=120)
    back = ctypes.create_string_buffer(n)
    assert cu.cuMemcpyDtoH_v2(back, p, ctypes.c_size_t(n)) == 0
    want_sum = sum(pat) % 1000003
    seen = c.stdout.split()
    ok_read = c.returncode == 0 and len(seen) >= 3 and int(seen[2]) == want_sum
    ok_write = back.raw[:4096] == b"\xa5" * 4096 and back.raw[4096:] == pat[4096:]
    rows.append(("driver p->c", ok_read and ok_write, f"child read {'ok' if ok_read else 'WRONG ' + c.stdout.strip() + c.stderr.strip()[-300:]}; its write {'seen' if ok_write else 'NOT seen'}"))
    c = subprocess.run([sys.executable, "-c", DRIVER_CHILD, bytes(h).hex(), str(n), "cost"], capture_output=True, text=True, env=env, timeout=120)
    if c.returncode == 0:
        ts = [float(t) for t in c.stdout.split()]
        rows.append(("open cost", None, f"open+close {statistics.median(ts):.3f} ms median of 5 (first {ts[0]:.3f} ms)"))
    else:
        rows.append(("open cost", False, c.stderr.strip()[-300:]))
    assert cu.cuMemFree_v2(p) == 0
    bare = {k: v for k, v in env.items() if k not in ("LD_PRELOAD", "GPUSHARE_SWAP")}
    c = subprocess.run([sys.executable, "-c", DRIVER_ONLY, DRIVER_CHILD], capture_output=True, text=True, env=bare, timeout=120)
    if c.returncode == 0:
        d = json.loads(c.stdout.strip().splitlines()[-1])
        rows.append(("driver refuses", None, f"the driver's cuIpcGetMemHandle on cuMemCreate memory: CUDA error {d['vmm']}"))
        rows.append(("driver interior", None, f"the driver's handle of base+1MiB opens at: {d['interior']}"))
    else:
        rows.append(("driver refuses", None, "probe failed: " + c.stderr.strip()[-300:]))


def main():
    lib, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    rows = []
    ctx = mp.get_context("spawn")
    torch.manual_seed(1)
    x = torch.randn(64 * MiB // 4, device="cuda")
    torch.cuda.synchronize()
    loaded = any("libgpushare" in line for line in open("/proc/self/maps"))
    st = ctl("status") if loaded else {}
    rows.append(("library", loaded and st.get("bytes", 0) >= 64 * MiB, f"loaded={loaded}, swappable bytes {st.get('bytes')} (status)"))

    # parent -> child, the child's write seen here; the child holds it for the swap row
    q_in, q_out = ctx.Queue(), ctx.Queue()
    want = digest(x)
    want_sum = float(x.double().sum())
    p = ctx.Process(target=child_read_write, args=(q_in, q_out))
    p.start()
    q_in.put(x)
    got = q_out.get(timeout=120)
    wrote = q_out.get(timeout=120)
    torch.cuda.synchronize()
    seen = bool((x[:1000] == 7.0).all()) and wrote == ("wrote",)
    rows.append(("torch p->c", got[1] == want and got[2] == want_sum and seen, f"child digest {'=' if got[1] == want else '!='} parent's; its write {'seen' if seen else 'NOT seen'}"))

    # swap while the child maps the tensor: refused; after it is gone, out and in, bytes the same
    before = digest(x)
    swap = Ctl()
    r1 = swap("out")
    refused = r1.get("ok") is False and r1.get("code") == "exported"
    q_in.put("done")
    p.join(60)
    r2 = {}
    for _ in range(50):
        r2 = swap("out")
        if r2.get("ok"):
            break
        time.sleep(0.1)
    r3 = swap("in") if r2.get("ok") else {}
    swap.close()
    same = digest(x) == before
    rows.append(("swap exported", refused and r2.get("ok") is True and r3.get("ok") is True and same,
                 f"while shared: {r1.get('code') or r1.get('ok')}; after: out {r2.get('ok')} ({r2.get('seconds')} s), in {r3.get('ok')}, bytes {'same' if same else 'DIFFER'}"))

    # a view at a storage offset
    q_in, q_out = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=child_view, args=(q_in, q_out))
    p.start()
    v = x[1000:3000]
    q_in.put(v)
    kind, vals = q_out.get(timeout=120)
    p.join(60)
    rows.append(("torch view", vals == v.tolist(), f"{len(vals)} values at storage offset {v.storage_offset()}: {'equal' if vals == v.tolist() else 'DIFFER'}"))

    # child -> parent
    q_out, q_done = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=child_make, args=(q_out, q_done))
    p.start()
    y, yd = q_out.get(timeout=120)
    ok = digest(y) == yd
    del y
    q_done.put("done")
    p.join(60)
    rows.append(("torch c->p", ok, f"parent digest {'=' if ok else '!='} child's"))

    driver_rows(rows)

    failed = [r for r in rows if r[1] is False]
    lines = ["| check | result | seen |", "|---|---|---|"]
    for name, ok, what in rows:
        lines.append(f"| {name} | {'PASS' if ok else 'FAIL' if ok is False else 'info'} | {what} |")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"rows": [{"check": n, "ok": o, "seen": w} for n, o, w in rows], "torch": torch.__version__, "lib": lib}, f, indent=1)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
