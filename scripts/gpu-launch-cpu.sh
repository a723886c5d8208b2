#!/usr/bin/env bash
# The compute gate's cost per launch as CPU time of the launching thread (bench_launch's
# launch_cpu_ns, best of 9 repetitions per run): no library / GPUSHARE_COMPUTE_LIMIT=100 /
# library without a limit, ROUNDS rounds (default 15) in rotated order, pinned to one core.
# Prints the raw lines, then per variant the best, lower quartile and median, and the best
# against no library. About 100 s on an H200. Needs build/gpu/bench_launch (scripts/gpu-build.sh)
# and build/native/libgpushare.so (npm run build); device carry ["build/gpu", "build/native/libgpushare.so"].
set -uo pipefail
cd "$(dirname "$0")/.."
LIB=$PWD/build/native/libgpushare.so
BENCH=$PWD/build/gpu/bench_launch
[ -x "$BENCH" ] && [ -f "$LIB" ] || { echo "missing $BENCH or $LIB (scripts/gpu-build.sh, npm run build)"; exit 1; }
pin=""; command -v taskset > /dev/null && pin="taskset -c 1"
raw=$(mktemp)
for r in $(seq "${ROUNDS:-15}"); do
  for j in 0 1 2; do
    case $(( (j + r) % 3 )) in
      0) echo "none $($pin "$BENCH")" ;;
      1) echo "limit100 $(GPUSHARE_COMPUTE_LIMIT=100 LD_PRELOAD=$LIB $pin "$BENCH")" ;;
      2) echo "nolimit $(LD_PRELOAD=$LIB $pin "$BENCH")" ;;
    esac
  done
done | tee "$raw"
python3 - "$raw" <<'PY'
import json, statistics, sys
by = {}
for line in open(sys.argv[1]):
    name, _, rest = line.partition(" ")
    try:
        by.setdefault(name, []).append(json.loads(rest)["launch_cpu_ns"])
    except (ValueError, KeyError):
        print("unreadable:", line.strip())
base = min(by.get("none", [float("nan")]))
print("\n| variant | runs | best (ns) | lower quartile | median | best vs no library |")
print("| --- | --- | --- | --- | --- | --- |")
for name in ("none", "nolimit", "limit100"):
    xs = sorted(by.get(name, []))
    if xs:
        print(f"| {name} | {len(xs)} | {xs[0]:.0f} | {xs[len(xs) // 4]:.0f} | {statistics.median(xs):.0f} | {xs[0] / base - 1:+.1%} |")
PY
