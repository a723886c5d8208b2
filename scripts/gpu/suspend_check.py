"""Drives scripts/gpu-check-suspend.sh's scenario against a running gpushare daemon on a real GPU.

    suspend_check.py SOCKET OUT_DIR NODE

Tasks are submitted, suspended and resumed with the real CLI (NODE bin/gpushare.js ...);
state is read from the API over the Unix socket. Writes OUT_DIR/results.json and prints a
table. Every number printed here is measured on this machine's GPU.
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import time

SOCK, OUT, NODE = sys.argv[1], sys.argv[2], sys.argv[3]
GiB = 1 << 30
TRAIN_ENV = ["-e", "CUBLAS_WORKSPACE_CONFIG=:4096:8", "-e", "PYTHONUNBUFFERED=1"]
SCRIPT = "scripts/gpu/suspend_train.py"


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=120)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def api(method, path):
    c = UnixConnection(SOCK)
    c.request(method, path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return json.loads(body) if body else None


def gs(*args):
    t0 = time.monotonic()
    r = subprocess.run([NODE, "bin/gpushare.js", *args], capture_output=True, text=True, env={**os.environ, "GPUSHARE_HOST": SOCK})
    if r.returncode != 0:
        print(f"gpushare {' '.join(args[:3])}... failed ({r.returncode}): {r.stderr.strip()}", flush=True)
    return r.stdout.strip(), round((time.monotonic() - t0) * 1000)


def task(tid):
    return api("GET", f"/v1/tasks/{tid}")


def lines(tid):
    t = task(tid)
    try:
        text = open(t["stdoutPath"]).read()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def wait(what, cond, timeout=300):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def has_event(tid, name):
    return any(l.get("event") == name for l in lines(tid))


def cuda_pid(tid):
    """The task's python process: the child of gpushare-exec (the task's pid)."""
    wrapper = task(tid)["pid"]
    kids = subprocess.run(["pgrep", "-P", str(wrapper)], capture_output=True, text=True).stdout.split()
    return int(kids[0]) if kids else None


def gpu_mib(pid):
    """This process's GPU memory as nvidia-smi reports it (MiB); 0 when it is not listed."""
    r = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"], capture_output=True, text=True)
    for row in r.stdout.splitlines():
        parts = [p.strip() for p in row.split(",")]
        if len(parts) == 2 and parts[0] == str(pid):
            return int(parts[1])
    return 0


def events(tid):
    return [e for e in api("GET", "/v1/events?since=0&limit=10000") if e["taskId"] == tid]


def final(tid):
    for l in reversed(lines(tid)):
        if l.get("event") == "final":
            return l
    return None


def ended(tid):
    return task(tid)["state"] in ("exited", "killed", "failed", "lost")


results = {"scenario": {}, "sweep": []}

# ---- 1. two training tasks share the GPU; a high-priority task preempts the low one ----------
low, _ = gs("run", "-d", "--mem", "60Gi", "--priority", "low", *TRAIN_ENV, "--", "python3", SCRIPT, "train", "400", "40")
ref, _ = gs("run", "-d", "--mem", "30Gi", "--priority", "normal", *TRAIN_ENV, "--", "python3", SCRIPT, "train", "400", "8")
wait("both training tasks to train", lambda: any(l.get("step", 0) >= 10 for l in lines(low)) and any(l.get("step", 0) >= 10 for l in lines(ref)))
low_pid = cuda_pid(low)
before_mib = gpu_mib(low_pid)
starts = {t: next(l for l in lines(t) if l.get("event") == "start") for t in (low, ref)}
high, _ = gs("run", "-d", "--mem", "90Gi", "--priority", "high", *TRAIN_ENV, "--", "python3", SCRIPT, "hold", "60", "8")
wait("the low task to be suspended", lambda: task(low)["state"] == "suspended", 120)
time.sleep(1)
during_mib = gpu_mib(low_pid)
steps_at_suspend = max(l.get("step", 0) for l in lines(low))
wait("the high task to start", lambda: task(high)["state"] in ("running", "exited"), 120)
wait("the high task to end", lambda: ended(high), 300)
wait("the low task to resume", lambda: task(low)["state"] in ("running", "exited"), 120)
wait("both training tasks to end", lambda: ended(low) and ended(ref), 600)
ev = {e["type"]: e for e in events(low)}
fl, fr, fh = final(low), final(ref), final(high)
sc = {
    "low": low, "ref": ref, "high": high,
    "low_slice_total": starts[low]["slice_total"], "ref_slice_total": starts[ref]["slice_total"],
    "low_gpu_mib_before": before_mib, "low_gpu_mib_suspended": during_mib,
    "suspend_ms": ev.get("task.suspended", {}).get("data", {}).get("ms"),
    "suspend_region_bytes": ev.get("task.suspended", {}).get("data", {}).get("gpuBytes"),
    "resume_ms": ev.get("task.resumed", {}).get("data", {}).get("ms"),
    "preempted_by": ev.get("task.suspending", {}).get("data", {}).get("preemptedBy"),
    "steps_at_suspend": steps_at_suspend,
    "low_state": task(low)["state"], "low_exit": task(low)["exitCode"], "ref_exit": task(ref)["exitCode"], "high_exit": task(high)["exitCode"],
    "low_final": fl, "ref_final": fr, "high_final": fh,
    "same_params": bool(fl and fr and fl["params_sha"] == fr["params_sha"]),
    "ballast_ok": bool(fl and fl["ballast_ok"]),
}
results["scenario"] = sc
json.dump(results, open(os.path.join(OUT, "results.json"), "w"), indent=2)
print(json.dumps(sc), flush=True)

# ---- 2. suspend/resume time vs size --------------------------------------------------------
for gib in (2, 8, 32):
    t, _ = gs("run", "-d", "--mem", f"{gib + 4}Gi", *TRAIN_ENV, "--", "python3", SCRIPT, "hold", str(gib), "4")
    wait(f"hold {gib} GiB ready", lambda: has_event(t, "ready"), 120)
    pid = cuda_pid(t)
    mib_before = gpu_mib(pid)
    _, cli_suspend_ms = gs("suspend", t)
    mib_during = gpu_mib(pid)
    time.sleep(1)
    _, cli_resume_ms = gs("resume", t)
    wait(f"hold {gib} GiB to end", lambda: ended(t), 120)
    e = {x["type"]: x for x in events(t)}
    f = final(t)
    results["sweep"].append({
        "gib": gib, "gpu_mib_before": mib_before, "gpu_mib_suspended": mib_during,
        "suspend_ms": e.get("task.suspended", {}).get("data", {}).get("ms"), "resume_ms": e.get("task.resumed", {}).get("data", {}).get("ms"),
        "cli_suspend_ms": cli_suspend_ms, "cli_resume_ms": cli_resume_ms,
        "exit": task(t)["exitCode"], "ballast_ok": bool(f and f["ballast_ok"]),
    })

json.dump(results, open(os.path.join(OUT, "results.json"), "w"), indent=2)

# ---- table ------------------------------------------------------------------------------------
print("\nPreemption by suspension (two PyTorch training tasks sharing the GPU, then a high-priority task)")
print(f"  low  (60Gi, priority low):    slice seen by torch {sc['low_slice_total'] / GiB:.1f} GiB, exit {sc['low_exit']}, params {fl and fl['params_sha']}, 40 GiB ballast intact: {sc['ballast_ok']}")
print(f"  ref  (30Gi, priority normal): slice seen by torch {sc['ref_slice_total'] / GiB:.1f} GiB, exit {sc['ref_exit']}, params {fr and fr['params_sha']} (never suspended)")
print(f"  high (90Gi, priority high):   exit {sc['high_exit']}, ballast ok {fh and fh['ballast_ok']}; preempted: {sc['preempted_by'] == high}")
print(f"  low task GPU memory (nvidia-smi): {sc['low_gpu_mib_before']} MiB before, {sc['low_gpu_mib_suspended']} MiB while suspended (at step {sc['steps_at_suspend']})")
print(f"  same final parameters as the uninterrupted run: {sc['same_params']}; final loss {fl and fl['final']:.6g} (first {fl and fl['first']:.6g})")
print()
print("| GPU memory of the process (nvidia-smi) | suspend (lock+checkpoint) | resume (restore+unlock) | suspend GB/s | resume GB/s | while suspended | result |")
print("| --- | --- | --- | --- | --- | --- | --- |")
rows = [("preemption victim", sc["low_gpu_mib_before"], sc["suspend_ms"], sc["resume_ms"], sc["low_gpu_mib_suspended"], sc["ballast_ok"] and sc["same_params"])]
rows += [(f"hold {r['gib']} GiB", r["gpu_mib_before"], r["suspend_ms"], r["resume_ms"], r["gpu_mib_suspended"], r["ballast_ok"] and r["exit"] == 0) for r in results["sweep"]]
for name, mib, s_ms, r_ms, dur, ok in rows:
    gb = mib * (1 << 20) / 1e9
    rate = lambda ms: f"{gb / (ms / 1000):.1f}" if ms else "-"
    print(f"| {name}: {mib} MiB | {s_ms} ms | {r_ms} ms | {rate(s_ms)} | {rate(r_ms)} | {dur} MiB | {'ok' if ok else 'FAILED'} |")
