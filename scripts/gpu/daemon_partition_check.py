"""Drives scripts/gpu-check-daemon-partition.sh against a running `gpushare serve --mps on`.

    daemon_partition_check.py SOCKET OUT_DIR NODE PARTITION_CHECK SECONDS

Submits sm-partition tasks running partition_check (an ordinary CUDA program) with the real
CLI: each share alone, then pairs side by side measuring the same window. The daemon places
each partition (GPUSHARE_SM_OFFSET) and runs them under its MPS control daemon. Prints, per
task: its share, the SM range the daemon gave it, the SMs its kernels ran on (%smid), and its
throughput relative to the same share alone. Disjoint partitions under MPS should each keep
~1.0 of their rate alone (partitions on the same SMs get ~0.5); the daemon's ranges must not
overlap. (%smid is printed but is not the physical SM under MPS.) Writes OUT_DIR/results.json.
Every number printed is measured on this machine's GPU.
"""
import json
import os
import subprocess
import sys
import time

from daemon_client import api_client

SOCK, OUT, NODE, BIN, SEC = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]


api = api_client(SOCK)


def submit(cores, *args):
    cmd = [NODE, "bin/gpushare.js", "run", "-d", "--mem", "8Gi"]
    if cores is not None:
        cmd += ["--isolation", "sm-partition", "--cores", str(cores)]
    r = subprocess.run([*cmd, "--", BIN, SEC, *args], capture_output=True, text=True, env={**os.environ, "GPUSHARE_HOST": SOCK})
    if r.returncode != 0:
        raise SystemExit(f"gpushare run failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout.strip()


def finish(tid, timeout=300):
    deadline = time.monotonic() + timeout
    while True:
        t = api("GET", f"/v1/tasks/{tid}")
        if t["state"] not in ("queued", "running", "suspending", "suspended", "resuming"):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"task {tid} still {t['state']} after {timeout} s")
        time.sleep(0.5)
    result = {"id": tid, "state": t["state"], "exitCode": t["exitCode"], "message": t["message"], "smRanges": t["smRanges"]}
    try:
        lines = [l for l in open(t["stdoutPath"]).read().splitlines() if l.startswith("{")]
        result.update(json.loads(lines[-1]))
    except (OSError, IndexError, ValueError) as e:
        result["error"] = f"no result line ({e})"
    try:
        result["stderr"] = [l for l in open(t["stderrPath"]).read().splitlines() if "gpushare" in l][-3:]
    except OSError:
        result["stderr"] = []
    return result


def sm_set(spec):
    out = set()
    for part in (spec or "").split(","):
        if "-" in part:
            a, b = part.split("-")
            out.update(range(int(a), int(b) + 1))
    return out


results = {"alone": {}, "pairs": []}
# The whole GPU (no partition, no MPS client) for scale, then each share alone.
results["whole"] = finish(submit(None))
for cores in (25, 40, 50, 65):
    results["alone"][cores] = finish(submit(cores))
# Pairs: both start measuring at the same moment (after both have made their contexts). Each
# pair fits in the SMs the driver groups (an H200: 120 of 132, 15 groups of 8): 50+40 is
# 64+56, 25+65 is 32+88. (50+50 would be 128: the daemon queues the second, see smgroups.ts.)
for pair in ((50, 40), (25, 65)):
    start = str(int(time.time() * 1000) + 20000)
    ids = [submit(c, start) for c in pair]
    results["pairs"].append({"cores": pair, "tasks": [finish(i) for i in ids]})

with open(os.path.join(OUT, "results.json"), "w") as f:
    json.dump(results, f, indent=2)

whole = results["whole"].get("rate")
print(f"\nwhole GPU, unpartitioned: {whole} kernels/s on {results['whole'].get('distinct_sms')} SMs\n")
print("| run | share | daemon's range | ctx SMs | SMs used (%smid) | kernels/s | vs same share alone | vs whole GPU |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")


def row(name, cores, r, alone):
    rng = r.get("smRanges") or []
    rs = ", ".join(f"{x['offset']}-{x['offset'] + x['count'] - 1}" for x in rng) or "-"
    rate = r.get("rate")
    rel = f"{rate / alone:.3f}" if rate and alone else "-"
    relw = f"{rate / whole:.3f}" if rate and whole else "-"
    err = f" ERROR {r.get('error')} {r.get('message') or ''} {r.get('stderr')}" if r.get("error") or r.get("exitCode") != 0 else ""
    print(f"| {name} | {cores}% | {rs} | {r.get('ctx_sms')} | {r.get('sm_set')} ({r.get('distinct_sms')}) | {rate} | {rel} | {relw} |{err}")


for cores, r in results["alone"].items():
    row("alone", cores, r, r.get("rate"))
ok = True
for p in results["pairs"]:
    name = "+".join(str(c) for c in p["cores"])
    for cores, r in zip(p["cores"], p["tasks"]):
        row(f"pair {name}", cores, r, results["alone"][cores].get("rate"))
    if any(not t.get("sm_set") for t in p["tasks"]):
        print(f"|   pair {name}: a task reported no SM set (failed, or an old partition_check): cannot tell | | | | | | | |")
        ok = False
        continue
    a, b = (sm_set(t.get("sm_set")) for t in p["tasks"])
    overlap = sorted(a & b)
    starts = [t.get("window_start_ms") for t in p["tasks"]]
    skew = abs(starts[0] - starts[1]) if None not in starts else None
    ranges = [(t.get("smRanges") or [{}])[0] for t in p["tasks"]]
    given_apart = all("offset" in r for r in ranges) and (
        ranges[0]["offset"] + ranges[0]["count"] <= ranges[1]["offset"] or ranges[1]["offset"] + ranges[1]["count"] <= ranges[0]["offset"])
    rel = [t.get("rate") / results["alone"][c].get("rate") for c, t in zip(p["cores"], p["tasks"]) if t.get("rate") and results["alone"][c].get("rate")]
    full_speed = len(rel) == 2 and min(rel) >= 0.95
    print(f"|   pair {name}: daemon's ranges {'disjoint' if given_apart else 'OVERLAP'}; each at {', '.join(f'{x:.3f}' for x in rel)} of its rate alone"
          f" ({'full speed' if full_speed else 'SLOWED'}); %smid values shared: {len(overlap)}; measuring windows {skew} ms apart | | | | | | | |")
    # Under MPS %smid is not the physical SM: a partition placed at SM 64 reads 0-55 there (seen
    # on the H200), so the %smid sets of two clients look alike even when they run apart. What
    # shows they share no SM is their speed: two compute-bound partitions on the same SMs run
    # at about half their rate alone (0.50 each, measured), apart at their full rate.
    if not (given_apart and full_speed):
        ok = False
print("\nresult:", "every pair got disjoint ranges and ran at full speed side by side" if ok else "NOT shown: overlapping ranges, a slowed partition or a failed task (see above)")
sys.exit(0 if ok else 1)
