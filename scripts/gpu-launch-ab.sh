#!/usr/bin/env bash
# What libgpushare adds to a kernel launch, measured inside one process (shim_bench launch_ab,
# native/shim/tests/shim_bench.c: an empty kernel launched alternately through the driver's own
# cuLaunchKernel and through the hooked one, 400 pairs of 1,000-launch batches, the median of the
# pairs' differences). Variants:
# no library (both paths are the driver's: the method's noise floor), the library without a
# limit, GPUSHARE_COMPUTE_LIMIT=100 (the whole gate runs, it never has to wait), and other builds'
# gates at 100 with BASE_LIBS="name=path name2=path2" (before/after a change); RUNS runs each (default 3), pinned
# to one core, in rotated order. Prints the raw lines, then a table. About 40 s on an H200.
# Needs build/gpu/empty.cubin (scripts/gpu-build.sh), build/native/libgpushare.so and
# build/native/shim/tests/shim_bench (npm run build; make -C native test builds shim_bench);
# device carry ["build/gpu", "build/native/libgpushare.so", "build/native/shim/tests/shim_bench"].
set -uo pipefail
cd "$(dirname "$0")/.."
LIB=$PWD/build/native/libgpushare.so
AB=$PWD/build/native/shim/tests/shim_bench
CUBIN=$PWD/build/gpu/empty.cubin
[ -x "$AB" ] && [ -f "$CUBIN" ] && [ -f "$LIB" ] || { echo "missing $AB, $CUBIN or $LIB (scripts/gpu-build.sh, npm run build)"; exit 1; }
. scripts/gpu-variants.sh
raw=$(mktemp)
rounds "${RUNS:-3}" "$AB" launch_ab 400 "$CUBIN" empty_kernel | tee "$raw"
python3 - "$raw" <<'PY'
import json, statistics, sys
by = {}
for line in open(sys.argv[1]):
    name, _, rest = line.partition(" ")
    try:
        r = json.loads(rest)
        by.setdefault(name, []).append(r) if "added_ns" in r else print("failed:", line.strip())
    except ValueError:
        print("unreadable:", line.strip())
print("\n| variant | runs | interposed | direct launch (ns, median) | added (ns, median of runs) | runs' added (ns) | added vs a direct launch |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for name in ["none", "nolimit", "limit100"] + sorted(n for n in by if n.startswith("limit100-")):
    rs = by.get(name, [])
    if rs:
        added = statistics.median(r["added_ns"] for r in rs)
        direct = statistics.median(r["direct_ns"] for r in rs)
        each = ", ".join(f"{r['added_ns']:.0f}" for r in rs)
        print(f"| {name} | {len(rs)} | {rs[0]['interposed']} | {direct:.0f} | {added:.0f} | {each} | {100 * added / direct:+.2f}% |")
PY
