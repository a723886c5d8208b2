#!/usr/bin/env bash
# The compute gate's cost per launch as CPU time of the launching thread (bench_launch's
# launch_cpu_ns, best of 9 repetitions per run): no library / GPUSHARE_COMPUTE_LIMIT=100 /
# library without a limit (/ other builds' gates at 100: BASE_LIBS="NAME=PATH ..."), ROUNDS rounds (default 15) in rotated order, pinned to one core.
# Prints the raw lines, then per variant and metric (CPU ns, cycles, instructions per launch) the
# best, lower quartile and median, and the best against no library. About 100 s on an H200. Needs build/gpu/bench_launch (scripts/gpu-build.sh)
# and build/native/libgpushare.so (npm run build); device carry ["build/gpu", "build/native/libgpushare.so"].
set -uo pipefail
cd "$(dirname "$0")/.."
LIB=$PWD/build/native/libgpushare.so
BENCH=$PWD/build/gpu/bench_launch
[ -x "$BENCH" ] && [ -f "$LIB" ] || { echo "missing $BENCH or $LIB (scripts/gpu-build.sh, npm run build)"; exit 1; }
. scripts/gpu-variants.sh
raw=$(mktemp)
rounds "${ROUNDS:-15}" "$BENCH" | tee "$raw"
# What the gate did in one more run of each limited variant (GPUSHARE_LOG_LEVEL=debug exit line).
for v in $variants; do
  case $v in limit100*) echo "$v: $(GPUSHARE_LOG_LEVEL=debug variant_run "$v" "$BENCH" 2>&1 | grep 'compute: device')" ;; esac
done
python3 - "$raw" <<'PY'
import json, statistics, sys
by = {}
for line in open(sys.argv[1]):
    name, _, rest = line.partition(" ")
    try:
        by.setdefault(name, []).append(json.loads(rest))
    except ValueError:
        print("unreadable:", line.strip())
# CPU time per launch depends on the CPU's clock speed (whole runs differ by 20-30%); cycles and
# instructions per launch (perf events, where the machine allows them) do not.
for metric, unit in (("launch_cpu_ns", "ns"), ("launch_cycles", "cycles"), ("launch_instructions", "instructions")):
    vals = {n: sorted(r[metric] for r in rs if r.get(metric, -1) >= 0) for n, rs in by.items()}
    if not vals.get("none"):
        print(f"\n{metric}: not measured here")
        continue
    base = vals["none"][0]
    print(f"\n{metric} per launch\n| variant | runs | best ({unit}) | lower quartile | median | best vs no library |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ["none", "nolimit", "limit100"] + sorted(n for n in by if n.startswith("limit100-")):
        xs = vals.get(name, [])
        if xs:
            print(f"| {name} | {len(xs)} | {xs[0]:.0f} | {xs[len(xs) // 4]:.0f} | {statistics.median(xs):.0f} | {xs[0] / base - 1:+.1%} |")
PY
