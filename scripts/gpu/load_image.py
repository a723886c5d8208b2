"""Load module images the remote client dumped (GPUSHARE_REMOTE_DUMP) on this machine's real
driver, to tell an image cut short from one the worker's context will not take (issue 23,
cuBLAS's refused module): each refused-PID-N.bin alone, then with what lay past its end in the
client (refused-PID-N.past, the consecutive fatbin headers found there counted), through
cuModuleLoadData and cuLibraryLoadData, each from a fresh copy (the driver cannot read past it).
Prints one line per image and attempt. Usage: python3 load_image.py DIR"""
import ctypes
import glob
import os
import struct
import sys

FATBIN_MAGIC = 0xBA55ED50


def fatbin_parts(data):
    """The fatbins laid back to back from the start of data: [(offset, size, [entries])]."""
    parts, at = [], 0
    while at + 16 <= len(data) and struct.unpack_from("<I", data, at)[0] == FATBIN_MAGIC:
        header, fat = struct.unpack_from("<HQ", data, at + 6)
        end = min(len(data), at + header + fat)
        entries, e = [], at + header
        while e + 0x38 <= end:
            kind = struct.unpack_from("<H", data, e)[0]
            eh, payload = struct.unpack_from("<IQ", data, e + 4)
            sm = struct.unpack_from("<I", data, e + 0x1C)[0]
            flags = struct.unpack_from("<Q", data, e + 0x30)[0]
            if eh < 0x38 or e + eh + payload > end:
                entries.append("bad entry")
                break
            entries.append(f"k{kind}/sm{sm}/f{flags:#x}/{payload}")
            e += eh + payload
        parts.append((at, header + fat, entries))
        if header + fat == 0:
            break
        # a next fatbin starts after at most some padding, if any
        nxt = at + header + fat
        while nxt + 4 <= min(len(data), at + header + fat + 64) and struct.unpack_from("<I", data, nxt)[0] != FATBIN_MAGIC:
            nxt += 4
        at = nxt
    return parts


def main():
    d = sys.argv[1]
    files = sorted(glob.glob(os.path.join(d, "refused-*.bin")))
    if not files:
        print("load_image: no dumped images")
        return
    cuda = ctypes.CDLL("libcuda.so.1")
    def call(name, *args):
        return getattr(cuda, name)(*args)
    assert call("cuInit", 0) == 0
    dev = ctypes.c_int()
    call("cuDeviceGet", ctypes.byref(dev), 0)
    ctx = ctypes.c_void_p()
    assert call("cuDevicePrimaryCtxRetain", ctypes.byref(ctx), dev) == 0
    call("cuCtxSetCurrent", ctx)
    for f in files[:6]:
        data = open(f, "rb").read()
        past_path = f[:-4] + ".past"
        past = open(past_path, "rb").read() if os.path.exists(past_path) else b""
        parts = fatbin_parts(data + past)
        print(f"{os.path.basename(f)}: {len(data)} B sent, {len(past)} B readable past it; "
              f"{len(parts)} fatbin header(s) back to back from its start")
        for off, size, entries in parts[:8]:
            print(f"  at {off}: {size} B, {len(entries)} entries: {' '.join(entries[:12])}{' ...' if len(entries) > 12 else ''}")
        chained = b""
        if parts:
            last_off, last_size, _ = parts[-1]
            chained = (data + past)[: last_off + last_size]
        for label, blob in (("as sent", data), ("every header back to back", chained), ("as sent + 16 MiB past", data + past)):
            if not blob:
                continue
            buf = ctypes.create_string_buffer(blob, len(blob) + 1)
            m = ctypes.c_void_p()
            rc = call("cuModuleLoadData", ctypes.byref(m), buf)
            if rc == 0:
                call("cuModuleUnload", m)
            lib = ctypes.c_void_p()
            rc2 = call("cuLibraryLoadData", ctypes.byref(lib), buf, None, None, 0, None, None, 0)
            kernels = ""
            if rc2 == 0:
                # Where a library with no code for this GPU fails: its first kernel's function here.
                n = ctypes.c_uint()
                rc3 = call("cuLibraryGetKernelCount", ctypes.byref(n), lib)
                if rc3 == 0 and n.value:
                    ks = (ctypes.c_void_p * n.value)()
                    rc4 = call("cuLibraryEnumerateKernels", ks, n, lib)
                    f = ctypes.c_void_p()
                    rc5 = call("cuKernelGetFunction", ctypes.byref(f), ctypes.c_void_p(ks[0])) if rc4 == 0 else None
                    kernels = f"; {n.value} kernels, enumerate {rc4}, first kernel's function {rc5}"
                else:
                    kernels = f"; kernel count {rc3} ({n.value})"
                call("cuLibraryUnload", lib)
            print(f"  {label} ({len(blob)} B): cuModuleLoadData {rc}, cuLibraryLoadData {rc2}{kernels}")


if __name__ == "__main__":
    main()
