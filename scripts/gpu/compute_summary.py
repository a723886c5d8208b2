"""compute_summary.py RESULTS.jsonl: the markdown tables of scripts/gpu-check-compute.sh.

Each line of RESULTS.jsonl is {"suite", "program", "case", "target", "result"} where result is
a compute_burn / compute_torch JSON line ("burn": 100 ms bins of completed kernels; "latency":
percentiles), or {"suite": "launch", ...} for the launch-rate runs.

Throughput of a run = completed kernels per 1 s window; windows start after SKIP s. Achieved =
mean window / the same program's unlimited baseline (no library, no MPS), in percent.
Spread = the lowest and highest 1 s window (same unit). Settle = the start of the first
sliding 1 s window (100 ms steps) from which every later window is within 5 points of the
target ("-" when none is).
"""
import json
import statistics
import sys

SKIP = 1.0
TOL = 5.0


def windows(bins, start, step=10):
    """Sums of 10 consecutive 100 ms bins, starting at bin `start`, every `step` bins."""
    out = []
    i = start
    while i + 10 <= len(bins):
        out.append(sum(bins[i:i + 10]))
        i += step
    return out


def main() -> int:
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    base = {}
    for r in rows:
        res = r.get("result", {})
        if r["suite"] == "baseline" and res.get("mode") == "burn":
            w = windows(res["bins"], int(SKIP * 10))
            base[r["program"]] = statistics.mean(w) if w else float("nan")
    print("| program | isolation | case | target | achieved | error (points) | 1 s windows (min - max) | settle (s) | SM clock (MHz), power (W) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        res = r.get("result", {})
        if res.get("mode") != "burn" or r["suite"] not in ("gpushare", "mps"):
            continue
        b = base.get(r["program"])
        if not b:
            continue
        w = [100.0 * x / b for x in windows(res["bins"], int(SKIP * 10))]
        if not w:
            continue
        mean = statistics.mean(w)
        target = r["target"]
        slide = [100.0 * x / b for x in windows(res["bins"], 0, 1)]
        settle = "-"
        if target:
            for i in range(len(slide)):
                if all(abs(x - target) <= TOL for x in slide[i:]):
                    settle = f"{i / 10:.1f}"
                    break
        err = f"{mean - target:+.1f}" if target else "-"
        clk = f"{r['sm_mhz']}, {r['power_w']}" if "sm_mhz" in r else "-"
        print(f"| {r['program']} | {r['suite']} | {r['case']} | {target or '-'} | {mean:.1f}% | {err} | "
              f"{min(w):.1f} - {max(w):.1f} | {settle} | {clk} |")
    for r in rows:
        if r["suite"] == "baseline" and r.get("result", {}).get("mode") == "burn":
            clk = f" (SM clock {r['sm_mhz']} MHz, {r['power_w']} W)" if "sm_mhz" in r else ""
            print(f"\nbaseline {r['program']} (no library, unlimited): {base[r['program']]:.0f} kernels/s{clk}", end="")
    print("\n")
    lat = [r for r in rows if r.get("result", {}).get("mode") == "latency"]
    if lat:
        print("| priority case | requests | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | low-priority job's throughput |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in lat:
            x = r["result"]
            other = "-"
            for o in rows:
                if o.get("pair_of") == r["case"] and o.get("result", {}).get("mode") == "burn" and base.get(o["program"]):
                    w = windows(o["result"]["bins"], int(SKIP * 10))
                    other = f"{100.0 * statistics.mean(w) / base[o['program']]:.1f}%" if w else "-"
            print(f"| {r['case']} | {x['requests']} | {x['p50_ms']:.2f} | {x['p90_ms']:.2f} | {x['p99_ms']:.2f} | "
                  f"{x['max_ms']:.2f} | {other} |")
        print()
    launch = [r for r in rows if r["suite"] == "launch"]
    if launch:
        by = {}
        for r in launch:
            by.setdefault(r["case"], []).append(r["result"])
        ref = by.get("no library")
        print("| launch-rate microbenchmark (best of runs) | launches/s | vs no library | graph launches/s | vs no library |")
        print("| --- | --- | --- | --- | --- |")
        best = {k: (max(x.get("launches_per_s", 0) for x in v), max(x.get("graph_launches_per_s", 0) for x in v))
                for k, v in by.items()}
        l0, g0 = best.get("no library", (0, 0))
        for k, (l, g) in best.items():
            print(f"| {k} | {l:.0f} | {l / l0 if l0 else float('nan'):.3f} | {g:.0f} | {g / g0 if g0 else float('nan'):.3f} |")
        # Round by round: each run against the no-library run of its own round (drift between
        # rounds then cancels); the median ratio is the number, the range its noise.
        rounds = {}
        for r in launch:
            if "round" in r:
                rounds.setdefault(r["round"], {})[r["case"]] = r["result"]
        if len(rounds) > 1:
            print()
            print(f"| variant, vs no library in the same round ({len(rounds)} rounds) | launches: median | min | max | "
                  "graph launches: median | min | max |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            for k in by:
                if k == "no library":
                    continue
                lr, gr = [], []
                for rd in rounds.values():
                    a, b = rd.get(k), rd.get("no library")
                    if a and b and b.get("launches_per_s") and a.get("launches_per_s"):
                        lr.append(a["launches_per_s"] / b["launches_per_s"])
                    if a and b and b.get("graph_launches_per_s") and a.get("graph_launches_per_s"):
                        gr.append(a["graph_launches_per_s"] / b["graph_launches_per_s"])
                if lr:
                    g = (f"{statistics.median(gr):.3f} | {min(gr):.3f} | {max(gr):.3f}" if gr else "- | - | -")
                    print(f"| {k} | {statistics.median(lr):.3f} | {min(lr):.3f} | {max(lr):.3f} | {g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
