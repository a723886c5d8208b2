"""k8s_summary.py: the checks and tables of scripts/gpu-check-k8s.sh.

    python3 k8s_summary.py PROBE_REPORT [SOLO_JSON TORCH_REPORT]

PROBE_REPORT and TORCH_REPORT are test/k8s/pods-run.ts's JSON (the flow's report); SOLO_JSON is
k8s_pod.py's line for the unlimited run. Prints markdown; exits 1 when a check fails.
"""
import json
import os
import sys

MiB = 1 << 20
SHARE_TOLERANCE = 5  # points: the budget (docs/DESIGN) is 3; the check fails past 5
CONTAINER_PATHS = {"/etc/ld.so.preload": True, "/usr/local/gpushare/lib/libgpushare.so": True, "/run/gpushare/claim": False, "/run/gpushare/compute": False}

failures = []
# Set by gpu-check-k8s.sh on a GPU machine: there, the GPU's device nodes must exist (a runtime refuses a container without them).
REQUIRE_DEVICES = os.environ.get("K8S_REQUIRE_DEVICES") == "1"


def check(ok, what):
    if not ok:
        failures.append(what)
    return "yes" if ok else "**NO**"


def env_of(plan, name):
    for e in plan["env"]:
        if e.startswith(name + "="):
            return e.split("=", 1)[1]
    return None


def cleanup(report):
    if report.get("path") == "allocate":
        return "n/a on the device-plugin path (the kubelet has no unprepare; the plugin forgets a container when its pod is gone)"
    left = report.get("afterUnprepare") or {}
    ok = left.get("cdiFiles") == [] and left.get("claimDirs") == [] and left.get("checkpointClaims") == 0 and left.get("prepared") == 0
    return check(ok, f"unprepare left {left}")


def pod_output(p):
    res = p.get("result") or {}
    try:
        return json.loads(res.get("stdout", "").strip().splitlines()[-1])
    except (ValueError, IndexError):
        failures.append(f"{p['pod']}: no JSON from the pod (exit {res.get('code')}): {res.get('stderr', '')[-500:]}")
        return None


def probe_table(report):
    how = "the device plugin's Allocate answer describes them" if report.get("path") == "allocate" else "the CDI edits describe them"
    print(f"### The pods' processes, as {how} (k8s_probe)\n")
    print("| pod | exit | env exactly the edits' | libgpushare preloaded | mounts (ro/rw as the spec) | CUDA total = limit | filled to the limit, next 1 MiB OOM | device nodes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for p in report["pods"]:
        out = pod_output(p) or {}
        limit = int(env_of(p["plan"], "GPUSHARE_MEMORY_LIMIT") or 0)
        fill = out.get("fill", {})
        mounts = out.get("mounts", {})
        mounts_ok = all(mounts.get(path, {}).get("mounted") and mounts[path].get("readOnly") == ro for path, ro in CONTAINER_PATHS.items())
        held = fill.get("total", 0) - fill.get("freeAfter", -1)
        filled = fill.get("lastResult") == 2 and fill.get("freeAfter", MiB) < MiB and abs(held - limit) < MiB
        devices = p.get("devices") or {}
        if REQUIRE_DEVICES:
            # The GPU's own node, nvidiactl and nvidia-uvm must be there; nvidia-uvm-tools is made by the driver on demand.
            essential = [d for d in devices.get("missing", []) if not d.endswith("nvidia-uvm-tools")]
            check(not essential, f"{p['pod']}: device nodes missing on this GPU machine: {essential}")
        print(f"| {p['pod']} | {check((p.get('result') or {}).get('code') == 0, p['pod'] + ': exit')} "
              f"| {check(out.get('env') == p['plan']['env'], p['pod'] + ': env differs from the plan')} "
              f"| {check(out.get('libraryMapped') is True and out.get('preloadFile') == '/usr/local/gpushare/lib/libgpushare.so', p['pod'] + ': not preloaded')} "
              f"| {check(mounts_ok, p['pod'] + ': mounts ' + json.dumps(mounts))} "
              f"| {check(fill.get('total') == limit, p['pod'] + ': CUDA total ' + str(fill.get('total')) + ' is not the limit ' + str(limit))} {fill.get('total', 0) // MiB} MiB "
              f"| {check(filled, p['pod'] + ': fill ' + json.dumps(fill))} {held // MiB} MiB, result {fill.get('lastResult')} "
              f"| {len(devices.get('present', []))} present{', missing: ' + ' '.join(devices['missing']) if devices.get('missing') else ''} |")
    print(f"\nAfter NodeUnprepareResources nothing is left (CDI specs, claim directories with their regions, ledger): {cleanup(report)}\n")


def torch_table(solo, report):
    print("### Two PyTorch pods at once on the GPU (k8s_pod.py), vs one unlimited run alone\n")
    print(f"Solo, unlimited: {solo['per_s']:.1f} matmuls/s ({solo['tflops']:.0f} TFLOP/s bf16).\n")
    print("| pod | memory limit | CUDA total | max allocated | over-limit refused? | cores | matmuls/s | TFLOP/s | achieved share | error (points) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    shares = []
    for p in report["pods"]:
        out = pod_output(p)
        if out is None:
            continue
        limit = int(env_of(p["plan"], "GPUSHARE_MEMORY_LIMIT") or 0)
        cores = int(env_of(p["plan"], "GPUSHARE_COMPUTE_LIMIT") or 100)
        mem = out.get("memory", {})
        held = mem.get("total", 0) - mem.get("free_after", 0)
        share = 100 * out["per_s"] / solo["per_s"]
        shares.append(share)
        err = share - cores
        check(out.get("library_mapped") and out.get("caching_off") and out.get("barrier"), f"{p['pod']}: preload/caching/barrier {out}")
        check(mem.get("fill_error") is None, f"{p['pod']}: the fill failed under the limit: {mem.get('fill_error')}")
        print(f"| {p['pod']} | {limit // MiB} MiB | {check(mem.get('total') == limit, p['pod'] + ': CUDA total is not the limit')} {mem.get('total', 0) // MiB} MiB "
              f"| {held // MiB} MiB ({check(mem.get('free_after', MiB) < MiB and abs(held - limit) < MiB, p['pod'] + ': not filled to the MiB')}) "
              f"| {check(mem.get('step_past') == 'oom', p['pod'] + ': one step past the limit: ' + str(mem.get('step_past')))} ({mem.get('step_past')}) "
              f"| {cores}% | {out['per_s']:.1f} | {out['tflops']:.0f} | {share:.1f}% | {err:+.1f} ({check(abs(err) <= SHARE_TOLERANCE, p['pod'] + f': share {share:.1f}% vs {cores}%')}) |")
    print(f"\nTogether: {sum(shares):.1f}% of the solo throughput. After NodeUnprepareResources nothing is left: {cleanup(report)}\n")


def main():
    probe = json.load(open(sys.argv[1]))
    gpus = ", ".join(f"{g['name']} ({g['uuid']}, {g['memoryTotalBytes'] // MiB} MiB)" for g in probe.get("gpus", []))
    path = "classic (device plugin v1beta1, Allocate)" if probe.get("path") == "allocate" else "DRA (NodePrepareResources, CDI)"
    print(f"## Path: {path}\n\nGPU(s) the kubelet plugin published: {gpus}\n")
    probe_table(probe)
    if len(sys.argv) > 3:
        torch_table(json.loads(open(sys.argv[2]).read().strip().splitlines()[-1]), json.load(open(sys.argv[3])))
    if failures:
        print("FAILED checks:\n" + "\n".join(f"- {f}" for f in failures))
        return 1
    print("All checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
