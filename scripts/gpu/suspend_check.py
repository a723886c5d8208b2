"""Drives scripts/gpu-check-suspend.sh's scenario against a running gpushare daemon on a real GPU.

    suspend_check.py SOCKET OUT_DIR NODE

Tasks are submitted, suspended and resumed with the real CLI (NODE bin/gpushare.js ...);
state is read from the API over the Unix socket. Every number printed is measured on this
machine's GPU. Phases (the whole run is budgeted to finish in under 8 minutes; a phase that
would start past BUDGET_S seconds is skipped and says so):

  A. limits: a training program alone (no compute limit) for the baseline, then two of it at
     once with --mem 20Gi --cores 30 and --mem 20Gi --cores 60. Memory: each sees a 20 GiB
     GPU in torch.cuda.mem_get_info and an allocation past it fails. Compute: each one's
     throughput relative to running alone, and the achieved share the daemon reports from
     the task's region (`gpushare gpus --json`, slices[].computeShare), within 5 points.
  B. preemption: two deterministic training tasks with memory and compute limits, then a
     high-priority task that does not fit: the low one is suspended, the high one runs, the
     low one resumes and ends with the same parameters as the never-suspended reference.
  C. suspend/resume time vs bytes moved (through the CLI's --json).
  D. only with 2+ GPUs visible AND ALLOW_SECOND_GPU=1: a suspended task resumes on the other GPU.

Writes OUT_DIR/results.json and OUT_DIR/table.md, prints the table; exits 1 if any check failed.
SUSPEND_TRAIN overrides the task program (a CPU stand-in for dry runs of this driver); PHASES
(default ABCD) selects phases; BUDGET_S (default 420) is the time budget.
"""
import json
import os
import subprocess
import sys
import time

from daemon_client import api_client

SOCK, OUT, NODE = sys.argv[1], sys.argv[2], sys.argv[3]
GiB = 1 << 30
MiB = 1 << 20
TRAIN_ENV = ["-e", "CUBLAS_WORKSPACE_CONFIG=:4096:8", "-e", "PYTHONUNBUFFERED=1"]
SCRIPT = os.environ.get("SUSPEND_TRAIN", "scripts/gpu/suspend_train.py")
ALLOW_SECOND_GPU = os.environ.get("ALLOW_SECOND_GPU") == "1"
BUDGET_S = float(os.environ.get("BUDGET_S", "420"))
PHASES = os.environ.get("PHASES", "ABCD")  # a subset, to re-run only some phases
T0 = time.monotonic()
TOLERANCE = 5.0  # points, for compute shares


api = api_client(SOCK)


def gs(*args):
    """Runs the CLI; returns (stdout, ms). A failure is printed, not raised: the caller's check fails."""
    t0 = time.monotonic()
    r = subprocess.run([NODE, os.environ.get("GPUSHARE_CLI", "bin/gpushare.js"), *args], capture_output=True, text=True, env={**os.environ, "GPUSHARE_HOST": SOCK})
    if r.returncode != 0:
        print(f"gpushare {' '.join(args[:4])}... failed ({r.returncode}): {r.stderr.strip()}", flush=True)
    return r.stdout.strip(), round((time.monotonic() - t0) * 1000)


def submit(*args):
    out, _ = gs("run", "-d", *args)
    if not out:
        raise SystemExit(f"could not submit: {args}")
    return out.split()[-1]


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


def stderr_tail(tid):
    try:
        return open(task(tid)["stderrPath"]).read()[-2000:]
    except OSError:
        return ""


def wait(what, cond, timeout=300):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def has_event(tid, name):
    return any(l.get("event") == name for l in lines(tid))


def first(tid, name):
    return next((l for l in lines(tid) if l.get("event") == name), None)


def cuda_pid(tid):
    """The task's python process: the child of gpushare-exec (the task's pid)."""
    wrapper = task(tid)["pid"]
    kids = subprocess.run(["pgrep", "-P", str(wrapper)], capture_output=True, text=True).stdout.split()
    return int(kids[0]) if kids else None


def proc_uid(pid):
    """The real uid of a process, from /proc; None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("Uid:"))
    except (OSError, StopIteration, TypeError):
        return None


def smi_apps():
    try:
        r = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory,gpu_uuid", "--format=csv,noheader,nounits"], capture_output=True, text=True)
    except OSError:
        return []
    return [[p.strip() for p in row.split(",")] for row in r.stdout.splitlines() if row.count(",") == 2]


def gpu_mib(pid):
    """This process's GPU memory as nvidia-smi reports it (MiB); 0 when it is not listed."""
    return next((int(p[1]) for p in smi_apps() if p[0] == str(pid)), 0)


def gpu_of(pid):
    return next((p[2] for p in smi_apps() if p[0] == str(pid)), None)


def events(tid):
    return [e for e in api("GET", "/v1/events?since=0&limit=10000") if e["taskId"] == tid]


def final(tid):
    return next((l for l in reversed(lines(tid)) if l.get("event") == "final"), None)


def ended(tid):
    return task(tid)["state"] in ("exited", "killed", "failed", "lost")


def gpus_json():
    out, _ = gs("gpus", "--json")
    v = json.loads(out) if out else []
    return v["gpus"] if isinstance(v, dict) else v


def elapsed():
    return time.monotonic() - T0


results = {"rows": [], "limits": {}, "scenario": {}, "sweep": [], "other_gpu": None, "errors": []}
rows = results["rows"]


def save():
    json.dump(results, open(os.path.join(OUT, "results.json"), "w"), indent=2)


def row(phase, check, target, measured, ok):
    rows.append({"phase": phase, "check": check, "target": target, "measured": measured, "ok": ok})
    print(f"[{elapsed():5.0f} s] {phase} | {check} | {target} | {measured} | {'ok' if ok else 'FAILED' if ok is False else '-'}", flush=True)
    save()


def phase(name, need_s, fn):
    """Runs a phase unless it would end past the budget; an exception fails the phase, not the run."""
    if name[0] not in PHASES:
        row(name, "phase", f"in PHASES={PHASES}", "not selected", None)
        return
    if elapsed() + need_s > BUDGET_S:
        row(name, "phase", f"fits the {BUDGET_S:.0f} s budget", f"skipped at {elapsed():.0f} s (needs about {need_s} s)", False)
        return
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - recorded, and the run goes on to the next phase
        results["errors"].append(f"{name}: {type(e).__name__}: {e}")
        row(name, "phase ran to its end", "no error", f"{type(e).__name__}: {e}", False)


def kill(*ids):
    for t in ids:
        if t and not ended(t):
            gs("kill", t)


def ticks(tid):
    return [(l["t"], l["steps"]) for l in lines(tid) if l.get("event") == "tick"]


def rate(ts, lo, hi):
    """Steps per second between the first and last tick inside [lo, hi]."""
    inside = [x for x in ts if lo <= x[0] <= hi]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


# ---- GPUs: which ones this run may use ----------------------------------------------------------
gpus = gpus_json()
results["gpus"] = [{"index": g.get("index"), "uuid": g.get("uuid"), "name": g.get("name"), "memoryTotalBytes": g.get("memoryTotalBytes")} for g in gpus]
blocker = None
if len(gpus) > 1:
    # Every phase but D runs on one GPU: a reservation-only task (no CUDA) takes a whole other GPU.
    blocker = submit("--mem", "100%", "--", "sleep", "900")
    wait("the blocker to run", lambda: task(blocker)["state"] == "running", 60)
    if len(gpus) > 2:
        extra = [submit("--mem", "100%", "--", "sleep", "900") for _ in range(len(gpus) - 2)]
        results["extra_blockers"] = extra


# ---- A. memory and compute limits of two training tasks sharing the GPU --------------------------
def limits():
    base = submit("--mem", "20Gi", *TRAIN_ENV, "--", "python3", SCRIPT, "steady", "20")
    wait("the baseline to end", lambda: ended(base), 120)
    bt = ticks(base)
    if len(bt) < 4:
        raise RuntimeError(f"baseline printed {len(bt)} ticks; stderr: {stderr_tail(base)}")
    alone = rate(bt, bt[0][0] + 3, bt[-1][0])
    a = submit("--mem", "20Gi", "--cores", "30", *TRAIN_ENV, "--", "python3", SCRIPT, "steady", "30")
    b = submit("--mem", "20Gi", "--cores", "60", *TRAIN_ENV, "--", "python3", SCRIPT, "steady", "30")
    wait("the limit tasks' programs", lambda: cuda_pid(a) is not None or ended(a), 60)
    uid = proc_uid(cuda_pid(a))
    sandboxed = os.environ.get("SANDBOX") == "on"
    row("A limits", "the task's program runs as", "an allocated user, not root (SANDBOX=on)" if sandboxed else "the daemon's user (SANDBOX=off)", f"uid {uid}", (uid is not None and uid != 0) if sandboxed else uid is not None)
    samples = []
    while not (ended(a) and ended(b)):
        now = time.time()
        for g in gpus_json():
            for s in g.get("slices", []):
                if s.get("taskId") in (a, b) and s.get("computeShare") is not None:
                    samples.append((now, s["taskId"], s["computeShare"]))
        time.sleep(1)
        if elapsed() > BUDGET_S + 60:
            raise TimeoutError("the limit tasks outlived the budget")
    ta, tb = ticks(a), ticks(b)
    if len(ta) < 4 or len(tb) < 4:
        raise RuntimeError(f"limit tasks printed {len(ta)}/{len(tb)} ticks; stderr: {stderr_tail(a)} {stderr_tail(b)}")
    # Both at once only: from 3 s after the later one's first tick to the earlier one's last.
    lo, hi = max(ta[0][0], tb[0][0]) + 3, min(ta[-1][0], tb[-1][0])
    lim = {"alone_steps_per_s": alone, "window": [lo, hi], "tasks": {}}
    for tid, target, ts in ((a, 30, ta), (b, 60, tb)):
        mc = first(tid, "memcheck") or {}
        st = first(tid, "start") or {}
        r = rate(ts, lo, hi)
        rel = 100 * r / alone if r and alone else None
        inside = [x[2] for x in samples if x[1] == tid and lo <= x[0] <= hi]
        share = 100 * sum(inside) / len(inside) if inside else None
        lim["tasks"][tid] = {"target": target, "slice_total": st.get("slice_total"), "memcheck": mc, "steps_per_s": r, "relative": rel, "region_share": share, "share_samples": len(inside)}
        name = f"--mem 20Gi --cores {target}"
        row("A limits", f"{name}: GPU memory torch sees (mem_get_info total)", "20 GiB (+/- 1 MiB)", f"{st.get('slice_total')} B", abs((st.get("slice_total") or 0) - 20 * GiB) <= MiB)
        row("A limits", f"{name}: allocation of free + 256 MiB", "refused (OutOfMemoryError)", "refused" if mc.get("past_refused") else "allowed", mc.get("past_refused") is True)
        row("A limits", f"{name}: allocation of half the free memory", "succeeds", "succeeds" if mc.get("within_ok") else "failed", mc.get("within_ok") is True)
        row("A limits", f"{name}: throughput vs alone ({alone:.2f} steps/s)", f"{target} +/- {TOLERANCE:.0f}", f"{rel:.1f}%" if rel is not None else "-", rel is not None and abs(rel - target) <= TOLERANCE)
        row("A limits", f"{name}: achieved share in the region (gpus --json, {len(inside)} samples)", f"{target} +/- {TOLERANCE:.0f}", f"{share:.1f}%" if share is not None else "-", share is not None and abs(share - target) <= TOLERANCE)
    results["limits"] = lim
    kill(a, b)


phase("A limits", 110, limits)


# ---- B. preemption by suspension ------------------------------------------------------------------
# Sizes by GPU memory: the high task fits only once the low task is out of the way, and
# suspending the reference task alone would not be enough (so the victim must be the low one).
# (low slice, low ballast, ref slice, ref ballast, high slice, high hold) in GiB.
_total_gib = min((g.get("memoryTotalBytes") or 0) for g in gpus) / GiB if gpus else 0
LOW, LOW_BALLAST, REF, REF_BALLAST, HIGH, HIGH_HOLD = (60, 24, 30, 8, 90, 60) if _total_gib >= 120 else (40, 16, 20, 5, 55, 40)


def preemption():
    low = submit("--mem", f"{LOW}Gi", "--cores", "50", "--priority", "low", *TRAIN_ENV, "--", "python3", SCRIPT, "train", "400", str(LOW_BALLAST))
    ref = submit("--mem", f"{REF}Gi", "--cores", "40", "--priority", "normal", *TRAIN_ENV, "--", "python3", SCRIPT, "train", "400", str(REF_BALLAST))
    wait("both training tasks to train", lambda: any(l.get("step", 0) >= 10 for l in lines(low)) and any(l.get("step", 0) >= 10 for l in lines(ref)), 120)
    low_pid = cuda_pid(low)
    before_mib = gpu_mib(low_pid)
    starts = {t: first(t, "start") for t in (low, ref)}
    high = submit("--mem", f"{HIGH}Gi", "--cores", "50", "--priority", "high", *TRAIN_ENV, "--", "python3", SCRIPT, "hold", str(HIGH_HOLD), "8")
    wait("the low task to be suspended", lambda: task(low)["state"] == "suspended", 120)
    time.sleep(1)
    during_mib = gpu_mib(low_pid)
    steps_at_suspend = max(l.get("step", 0) for l in lines(low))
    wait("the high task to start", lambda: task(high)["state"] in ("running", "exited"), 120)
    wait("the high task to end", lambda: ended(high), 180)
    wait("the low task to resume", lambda: task(low)["state"] in ("running", "exited"), 120)
    wait("both training tasks to end", lambda: ended(low) and ended(ref), 240)
    ev = {e["type"]: e for e in events(low)}
    fl, fr, fh = final(low), final(ref), final(high)
    sc = {
        "low": low, "ref": ref, "high": high,
        "low_slice_total": starts[low] and starts[low]["slice_total"], "ref_slice_total": starts[ref] and starts[ref]["slice_total"],
        "low_gpu_mib_before": before_mib, "low_gpu_mib_suspended": during_mib,
        "suspend_ms": ev.get("task.suspended", {}).get("data", {}).get("ms"),
        "suspend_region_bytes": ev.get("task.suspended", {}).get("data", {}).get("gpuBytes"),
        "resume_ms": ev.get("task.resumed", {}).get("data", {}).get("ms"),
        "preempted_by": ev.get("task.suspending", {}).get("data", {}).get("preemptedBy"),
        "victims": ev.get("task.preempting", {}).get("data", {}).get("victims") or [e for e in events(high) if e["type"] == "task.preempting"],
        "steps_at_suspend": steps_at_suspend,
        "low_state": task(low)["state"], "low_exit": task(low)["exitCode"], "ref_exit": task(ref)["exitCode"], "high_exit": task(high)["exitCode"],
        "ref_suspensions": task(ref)["suspensions"],
        "low_final": fl, "ref_final": fr, "high_final": fh,
        "same_params": bool(fl and fr and fl.get("params_sha") == fr.get("params_sha")),
        "ballast_ok": bool(fl and fl.get("ballast_ok")),
    }
    results["scenario"] = sc
    row("B preemption", f"slices torch sees: low --mem {LOW}Gi --cores 50, ref --mem {REF}Gi --cores 40", f"{LOW:.2f} / {REF:.2f} GiB", f"{(sc['low_slice_total'] or 0) / GiB:.2f} / {(sc['ref_slice_total'] or 0) / GiB:.2f} GiB", abs((sc["low_slice_total"] or 0) - LOW * GiB) <= MiB and abs((sc["ref_slice_total"] or 0) - REF * GiB) <= MiB)
    row("B preemption", f"victim of the high task (--mem {HIGH}Gi --cores 50 --priority high)", "the low task, suspended", f"suspended by {sc['preempted_by']}; ref suspensions {sc['ref_suspensions']}", sc["preempted_by"] == high and sc["ref_suspensions"] == 0)
    row("B preemption", "victim's GPU memory (nvidia-smi) before / suspended", "0 MiB while suspended", f"{before_mib} / {during_mib} MiB (step {steps_at_suspend})", before_mib > 0 and during_mib == 0)
    row("B preemption", "high task", "exit 0, pattern intact", f"exit {sc['high_exit']}, intact {fh and fh.get('ballast_ok')}", sc["high_exit"] == 0 and bool(fh and fh.get("ballast_ok")))
    row("B preemption", f"victim after resume: exit, {LOW_BALLAST} GiB ballast, final parameters", f"exit 0, intact, = reference {fr and fr.get('params_sha')}", f"exit {sc['low_exit']}, intact {sc['ballast_ok']}, {fl and fl.get('params_sha')}", sc["low_exit"] == 0 and sc["ballast_ok"] and sc["same_params"])
    row("B preemption", "victim suspend / resume (daemon's times)", "-", f"{sc['suspend_ms']} / {sc['resume_ms']} ms, {(sc['suspend_region_bytes'] or 0) / GiB:.1f} GiB in its region", None)


phase("B preemption", 150, preemption)


# ---- C. suspend/resume time vs bytes -------------------------------------------------------------
def sweep_one(gib):
    t = submit("--mem", f"{gib + 4}Gi", *TRAIN_ENV, "--", "python3", SCRIPT, "hold", str(gib), "4")
    wait(f"hold {gib} GiB ready", lambda: has_event(t, "ready"), 120)
    pid = cuda_pid(t)
    mib_before = gpu_mib(pid)
    s_out, cli_suspend_ms = gs("suspend", "--json", t)
    mib_during = gpu_mib(pid)
    time.sleep(1)
    r_out, cli_resume_ms = gs("resume", "--json", t)
    wait(f"hold {gib} GiB to end", lambda: ended(t), 120)
    s = (json.loads(s_out) or [{}])[0] if s_out else {}
    r = (json.loads(r_out) or [{}])[0] if r_out else {}
    f = final(t)
    rec = {
        "gib": gib, "gpu_mib_before": mib_before, "gpu_mib_suspended": mib_during,
        "suspend_ms": s.get("ms"), "resume_ms": r.get("ms"), "gpu_bytes": s.get("gpuBytes"),
        "cli_suspend_ms": cli_suspend_ms, "cli_resume_ms": cli_resume_ms,
        "exit": task(t)["exitCode"], "ballast_ok": bool(f and f.get("ballast_ok")),
    }
    results["sweep"].append(rec)
    gb = mib_before * MiB / 1e9
    rates = f"{gb / (rec['suspend_ms'] / 1000):.1f} / {gb / (rec['resume_ms'] / 1000):.1f} GB/s" if rec["suspend_ms"] and rec["resume_ms"] else "-"
    row("C time vs size", f"hold {gib} GiB ({mib_before} MiB on the GPU): suspend / resume", "0 MiB while suspended, data intact", f"{rec['suspend_ms']} / {rec['resume_ms']} ms ({rates}); {mib_during} MiB suspended; intact {rec['ballast_ok']}", mib_before > 0 and mib_during == 0 and rec["ballast_ok"] and rec["exit"] == 0)


for gib, need in ((2, 30), (8, 40), (24, 70)):
    phase("C time vs size", need, lambda gib=gib: sweep_one(gib))


# ---- D. resume on another GPU (two GPUs, and only when allowed) ----------------------------------
def other_gpu():
    x = submit("--mem", "12Gi", *TRAIN_ENV, "--", "python3", SCRIPT, "hold", "8", "20")
    wait("hold 8 GiB ready", lambda: has_event(x, "ready"), 120)
    pid = cuda_pid(x)
    own = task(x)["gpus"][0]["uuid"]
    before = gpu_of(pid)
    gs("suspend", "--json", x)
    # Take its GPU with a reservation, free the other one: it can only resume there.
    b2 = submit("--mem", "100%", "--", "sleep", "900")
    wait("the second blocker to run", lambda: task(b2)["state"] == "running", 60)
    kill(blocker)
    wait("the first blocker to end", lambda: ended(blocker), 60)
    r_out, _ = gs("resume", "--json", x)
    r = (json.loads(r_out) or [{}])[0] if r_out else {}
    after = gpu_of(pid)
    wait("hold 8 GiB to end", lambda: ended(x), 120)
    f = final(x)
    kill(b2)
    results["other_gpu"] = {"task": x, "own": own, "before": before, "after": after, "resume": r, "exit": task(x)["exitCode"], "final": f}
    row("D other GPU", "suspended on one GPU, resumed on the other (restore with GPU remapping)", "moved, exit 0, data intact", f"{before} -> {after}; moved {r.get('moved')}; {r.get('ms')} ms; exit {task(x)['exitCode']}; intact {f and f.get('ballast_ok')}", r.get("moved") is True and before != after and after is not None and task(x)["exitCode"] == 0 and bool(f and f.get("ballast_ok")))


if len(gpus) >= 2 and ALLOW_SECOND_GPU:
    phase("D other GPU", 60, other_gpu)
else:
    row("D other GPU", "resume on another GPU", "needs 2+ GPUs and ALLOW_SECOND_GPU=1", f"not run ({len(gpus)} GPU(s) visible, ALLOW_SECOND_GPU={'1' if ALLOW_SECOND_GPU else 'unset'})", None)

kill(blocker, *results.get("extra_blockers", []))
# Whatever a failed phase left behind ends with the run, not with the machine.
try:
    live, _ = gs("ps", "--json")
    kill(*[t["id"] for t in json.loads(live or "[]")])
except (ValueError, KeyError, TypeError) as e:
    results["errors"].append(f"cleanup: {e}")
save()

# ---- the table ----------------------------------------------------------------------------------
table = ["| phase | check | target | measured | result |", "| --- | --- | --- | --- | --- |"]
for r in rows:
    table.append(f"| {r['phase']} | {r['check']} | {r['target']} | {r['measured']} | {'ok' if r['ok'] else 'FAILED' if r['ok'] is False else '-'} |")
text = "\n".join(table)
open(os.path.join(OUT, "table.md"), "w").write(text + "\n")
print(f"\nGPU: {', '.join(str(g.get('name')) for g in gpus)}; {elapsed():.0f} s in all\n")
print(text)
failed = [r for r in rows if r["ok"] is False]
print(f"\n{len(failed)} check(s) failed" if failed else "\nall checks passed")
sys.exit(1 if failed else 0)
