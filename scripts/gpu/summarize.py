"""Prints the memory-isolation checks and the overhead benchmarks as Markdown tables."""
import json
import statistics
import sys

checks = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
print("| check | result | detail |\n| --- | --- | --- |")
for c in checks:
    print(f"| {c.get('check', '?')} | {'pass' if c.get('ok') else '**FAIL**'} | `{json.dumps(c.get('detail', c))}` |")
print(f"\n{sum(1 for c in checks if c.get('ok'))} of {len(checks)} checks passed\n")

rows = [json.loads(l) for l in open(sys.argv[2]) if l.strip().startswith("{")]


def median(bench, lib, key):
    values = [r["data"][key] for r in rows if r["bench"] == bench and r["lib"] == lib and key in r.get("data", {})]
    return statistics.median(values) if values else None, len(values)


print("| benchmark | without library (median) | with library (median) | ratio | budget |\n| --- | --- | --- | --- | --- |")
for bench, key, higher_better, budget in [("launch", "launches_per_s", True, "<= 2% slower"), ("launch", "alloc_free_us", False, "-"), ("launch", "graph_launches_per_s", True, "-"), ("torch", "iters_per_s", True, "<= 1% slower (limits set)")]:
    base, n0 = median(bench, False, key)
    lib, n1 = median(bench, True, key)
    if base is None or lib is None:
        print(f"| {bench} {key} | {base} | {lib} | - | {budget} |")
        continue
    slower = (base / lib - 1) if higher_better else (lib / base - 1)
    print(f"| {bench} {key} (n={n0}/{n1}) | {base:.3f} | {lib:.3f} | {100 * slower:+.2f}% slower | {budget} |")
