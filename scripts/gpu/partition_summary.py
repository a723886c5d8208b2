"""Markdown table of scripts/gpu-check-partition.sh's results.jsonl (one JSON line per run)."""
import json
import sys

rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line:
        d = json.loads(line)
        rows[d["name"]] = d


def get(name):
    return rows.get(name, {"error": "missing"})


def cell(d, key, fmt="{}"):
    return fmt.format(d[key]) if key in d else "-"


for kind, what in (("cu", "compute-bound CUDA kernel (kernels/s)"), ("torch", "PyTorch bf16 8192² matmul (matmuls/s)")):
    base = get(f"{kind}-unlimited")
    b = base.get("rate")
    print(f"\n### {what}\n")
    print("| run | SMs granted (ctx) | distinct SMs used | rate | relative to unlimited | SMs / device SMs | stderr |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    names = [f"{kind}-unlimited"] + [f"{kind}-{p}" for p in (10, 25, 50, 75, 90)]
    if kind == "cu":
        names.append("cu-hami-50")
    names += [n for n in rows if n.startswith((f"{kind}-pair-", f"{kind}-mps-"))]
    for n in names:
        d = get(n)
        if "error" in d:
            print(f"| {n} | error: {d['error']} | | | | | |")
            continue
        rel = f"{d['rate'] / b:.3f}" if b else "-"
        share = f"{d['ctx_sms'] / d['device_sms']:.3f}" if d.get("ctx_sms", -1) > 0 else "-"
        err = "; ".join(d.get("stderr", []))[:160].replace("|", "/")
        print(f"| {n} | {cell(d, 'ctx_sms')} | {cell(d, 'distinct_sms')} | {d['rate']:.2f} | {rel} | {share} | {err} |")

# Pairs: each side against the same partition alone.
print("\n### Side by side: each process vs the same partition alone\n")
print("| pair | side | alone rate | side-by-side rate | ratio |")
print("| --- | --- | --- | --- | --- |")
for n, d in rows.items():
    if "-pair-" not in n or "error" in d:
        continue
    kind = d["kind"]
    spec = n.split("-pair-")[1].rsplit("-", 1)
    p1, p2 = spec[0].split("+")
    p = p1 if spec[1] == "a" else p2
    alone = get(f"{kind}-unlimited" if p in ("unlimited", "100") else f"{kind}-{p}")
    if p == "unlimited":
        alone = get(f"{kind}-unlimited")
    if "rate" in alone:
        print(f"| {spec[0]} ({kind}{', MPS' if '-mps-' in n else ''}{', disjoint offsets' if '-disjoint-' in n else ''}) | {spec[1]}: {p}% | {alone['rate']:.2f} | {d['rate']:.2f} | {d['rate'] / alone['rate']:.3f} |")
