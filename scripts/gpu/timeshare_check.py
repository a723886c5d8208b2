"""Time-sharing two big training tasks by slice swap (issue 22 item 4), on the real GPU under the
daemon started by scripts/gpu-check-timeshare.sh (--swap, overcommit 2x, 30 s quantum).

    timeshare_check.py SOCKET OUT_DIR NODE

1. solo: one task (FRACTION of the card's memory) trains alone for SOLO_S s: steps/s.
2. pair: two such tasks, which cannot both be resident, train for PAIR_S s each: their steps/s
   over the window where both run, against solo (budget, issue 22 scaled: >= 47% each), the
   turns (task.swapped-out reason turn), the swap seconds and the lost share per turn, the
   longest wait, and every ballast intact; each hand-over's split (the outgoing slice's swap-out,
   the incoming one's swap-in, of it the wait for the outgoing one's releases, and the wall time
   of the two overlapped: task.swapped-in's `handover`, native/shim/SWAP.md "Hand-over"); and no
   out-of-memory: an allocation the card cannot
   hold while the other task is resident waits for the room the daemon makes (task.wants-room,
   task.room-made; native/shim/SWAP.md "Waiting for room") instead of failing, so neither task's
   stderr says out of memory and no wait is refused (task.wants-room-refused).
Writes results.json and table.md to OUT_DIR and prints the table.
"""
import json
import os
import subprocess
import sys
import time

from daemon_client import api_client

SOCK, OUT, NODE = sys.argv[1], sys.argv[2], sys.argv[3]
FRACTION = float(os.environ.get("FRACTION", "0.55"))
SOLO_S = float(os.environ.get("SOLO_S", "40"))
PAIR_S = float(os.environ.get("PAIR_S", "150"))
GROW = os.environ.get("GROW_GIB_PER_S", "4")
BUDGET = 0.47
api = api_client(SOCK)


def gs(*args):
    r = subprocess.run([NODE, os.environ.get("GPUSHARE_CLI", "bin/gpushare.js"), *args], capture_output=True, text=True, env={**os.environ, "GPUSHARE_HOST": SOCK})
    if r.returncode != 0:
        print(f"gpushare {' '.join(args[:4])} failed ({r.returncode}): {r.stderr.strip()}", flush=True)
    return r.stdout.strip()


def lines(tid):
    try:
        text = open(api("GET", f"/v1/tasks/{tid}")["stdoutPath"]).read()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def wait_end(tid, timeout):
    end = time.time() + timeout
    while time.time() < end:
        t = api("GET", f"/v1/tasks/{tid}")
        if t["state"] in ("exited", "failed", "killed", "lost"):
            return t
        time.sleep(1)
    raise TimeoutError(f"task {tid} still {t['state']} after {timeout} s")


def submit(gib, duration):
    out = gs("run", "-d", "--mem", f"{gib + 3}Gi", "--", "python3", "scripts/gpu/timeshare_task.py", str(gib), str(duration), GROW)
    if not out:
        raise SystemExit("could not submit")
    return out.split()[-1]


def ticks_of(tid):
    return [(l["t"], l["steps"]) for l in lines(tid) if l.get("event") == "tick"]


def steps_at(ticks, t):
    """Steps done by time t: the last tick at or before it (0 before the first)."""
    done = 0
    for when, steps in ticks:
        if when > t:
            break
        done = steps
    return done


def rate(tid, lo, hi):
    """Steps gained between lo and hi over hi - lo: a task held at either edge of the window is
    charged for it (not measured from its first tick inside the window)."""
    ticks = ticks_of(tid)
    if hi <= lo or not ticks:
        return None
    return (steps_at(ticks, hi) - steps_at(ticks, lo)) / (hi - lo)


def active(ticks, gap=1.5):
    """The stretches in which a task trained: ticks less than `gap` seconds apart (one comes
    about every 0.5 s while it runs; a held task prints none)."""
    spans = []
    for when, _ in ticks:
        if spans and when - spans[-1][1] <= gap:
            spans[-1][1] = when
        else:
            spans.append([when, when])
    return spans


def idle_both(ticks_a, ticks_b, lo, hi):
    """Seconds of [lo, hi] in which neither task trained (the swaps between turns), and how many
    hand-overs there were: the time-sharing's own cost, whatever the window's edges."""
    spans = sorted(s for s in active(ticks_a) + active(ticks_b) if s[1] > lo and s[0] < hi)
    covered, end, handovers = 0.0, lo, 0
    for a, b in spans:
        a, b = max(a, lo), min(b, hi)
        if b > end:
            covered += b - max(a, end)
            end = b
    for i in range(1, len(spans)):
        handovers += spans[i][0] > spans[i - 1][1]
    return (hi - lo) - covered, handovers


def cycle_window(ticks_a, ticks_b, lo, hi):
    """The longest stretch of [lo, hi] made of whole turn cycles: from the start of one task's
    turn to the start of a later turn of the same task. Over it both tasks had the same number
    of turns, so their shares can be compared with the budget; a window cut elsewhere splits
    unevenly (three 30 s turns in a 90 s window are two of one task's and one of the other's).
    None when neither task started two turns inside [lo, hi]."""
    best = None
    for ticks in (ticks_a, ticks_b):
        starts = [a for a, _ in active(ticks) if lo <= a <= hi]
        if len(starts) >= 2 and (best is None or starts[-1] - starts[0] > best[1] - best[0]):
            best = (starts[0], starts[-1])
    return best


def out_of_memory(tid):
    """The out-of-memory lines of the task's stderr (PyTorch's OutOfMemoryError, the driver's error)."""
    try:
        text = open(api("GET", f"/v1/tasks/{tid}")["stderrPath"]).read()
    except OSError:
        return []
    return [l for l in text.splitlines() if "out of memory" in l.lower() or "OutOfMemoryError" in l][-3:]


def events(tid):
    return [e for e in api("GET", "/v1/events?since=0&limit=10000") if e.get("taskId") == tid]


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def split_rows(evs):
    """The overlapped hand-overs (task.swapped-in with `handover`) of both tasks: how many, and
    the median (max) of each side's seconds and the wall time."""
    hs = [e["data"]["handover"] for e in evs if e["type"] == "task.swapped-in" and "handover" in e["data"]]
    ins = [e for e in evs if e["type"] == "task.swapped-in"]
    cols = ("outSeconds", "inSeconds", "waitSeconds", "wallSeconds")
    fig = {k: (median([h[k] for h in hs]), max((h[k] for h in hs), default=None)) for k in cols}
    text = " / ".join(f"{m:.2f} ({x:.2f})" if m is not None else "-" for m, x in fig.values())
    serial = [h["outSeconds"] + h["inSeconds"] for h in hs]
    return hs, [
        ("pair", "swap-ins overlapped with the other's swap-out / all swap-ins", ">= 1", f"{len(hs)} / {len(ins)}", len(hs) >= 1),
        ("pair", "hand-over, median (max) s: out / in / in's wait for room / wall", "-", text, True),
        ("pair", "hand-over wall vs out + in one after the other, median s", "wall < out + in",
         f"{median([h['wallSeconds'] for h in hs]):.2f} vs {median(serial):.2f}" if hs else "-",
         bool(hs) and median([h["wallSeconds"] for h in hs]) < median(serial)),
    ]


def main():
    gpu = api("GET", "/v1/gpus")["gpus"][0]
    gib = int(gpu["memoryTotalBytes"] * FRACTION / 2**30)
    rows, results = [], {"gpu": gpu["name"], "ballastGiB": gib, "fraction": FRACTION, "soloS": SOLO_S, "pairS": PAIR_S}

    solo = submit(gib, SOLO_S)
    t = wait_end(solo, SOLO_S + 120)
    ready = next((l for l in lines(solo) if l.get("event") == "ready"), None)
    final = next((l for l in lines(solo) if l.get("event") == "final"), None)
    solo_rate = rate(solo, ready["t"] + 3, final["t"]) if ready and final else None
    results["solo"] = {"task": solo, "exitCode": t["exitCode"], "stepsPerS": solo_rate}
    rows.append(("solo", "steps/s alone", "-", f"{solo_rate:.2f}" if solo_rate else "none", bool(solo_rate)))

    a = submit(gib, PAIR_S)
    time.sleep(2)
    b = submit(gib, PAIR_S)
    ta, tb = wait_end(a, PAIR_S * 2 + 180), wait_end(b, PAIR_S * 2 + 180)
    readies = [next((l["t"] for l in lines(x) if l.get("event") == "ready"), None) for x in (a, b)]
    finals = [next((l for l in lines(x) if l.get("event") == "final"), None) for x in (a, b)]
    ok_all = True
    if None in readies or None in finals:
        rows.append(("pair", "both trained to the end", "yes", "no; " + " | ".join(" ".join(out_of_memory(x)) for x in (a, b)), False))
        ok_all = False
    else:
        lo, hi = max(readies), min(f["t"] for f in finals)
        cycles = cycle_window(ticks_of(a), ticks_of(b), lo, hi)
        results["cycles"] = {"fromS": cycles[0] - lo, "toS": cycles[1] - lo} if cycles else None
        for name, tid, f in (("A", a, finals[0]), ("B", b, finals[1])):
            r = rate(tid, lo, hi)
            share = r / solo_rate if r and solo_rate else None
            rc = rate(tid, *cycles) if cycles else None
            cycle_share = rc / solo_rate if rc and solo_rate else None
            ev = events(tid)
            turns = [e for e in ev if e["type"] == "task.swapped-out" and e["data"].get("reason") in ("turn", "bound")]
            ins = [e for e in ev if e["type"] == "task.swapped-in"]
            lost = [e["data"]["lostShare"] for e in ins if "lostShare" in e["data"]]
            outs = [e["data"]["swapSeconds"] for e in ev if e["type"] == "task.swapped-out"]
            waits = [e["data"]["waitedMs"] for e in ins]
            asked = [e for e in ev if e["type"] == "task.wants-room"]
            made = [e["data"]["waitedMs"] for e in ev if e["type"] == "task.room-made"]
            refused = [e["data"] for e in ev if e["type"] == "task.wants-room-refused"]
            oom = out_of_memory(tid)
            results[name] = {"task": tid, "stepsPerS": r, "shareOfSolo": share, "shareOfSoloOverCycles": cycle_share, "turnsGivenUp": len(turns), "swapOutSeconds": outs,
                             "swapInSeconds": [e["data"]["swapSeconds"] for e in ins], "lostShares": lost, "maxWaitMs": max(waits) if waits else None,
                             "ballastOk": f["ballast_ok"], "exitCode": (ta if tid == a else tb)["exitCode"],
                             "wantsRoom": len(asked), "roomWaitsMs": made, "roomRefused": refused, "outOfMemory": oom}
            ok = cycle_share is not None and cycle_share >= BUDGET
            span = f" ({cycles[1] - cycles[0]:.1f} s from +{cycles[0] - lo:.1f} s)" if cycles else ""
            rows.append((f"pair {name}", "share of solo steps/s over whole turn cycles" + span, f">= {BUDGET:.0%}",
                         f"{cycle_share:.1%}" if cycle_share else "none (no whole cycle: lengthen PAIR_S)", ok))
            rows.append((f"pair {name}", "share of solo steps/s over the whole window both run", "-", f"{share:.1%}" if share else "none", True))
            rows.append((f"pair {name}", "turns given up / lost share per turn", ">= 1", f"{len(turns)} / {', '.join(f'{x:.3f}' for x in lost) or '-'}", len(turns) >= 1))
            rows.append((f"pair {name}", "ballast intact, exit 0", "yes", f"{f['ballast_ok']}, {results[name]['exitCode']}", f["ballast_ok"] and results[name]["exitCode"] == 0))
            rows.append((f"pair {name}", "waits for room / longest (ms)", "-", f"{len(made)} / {max(made) if made else '-'}", True))
            no_oom = not oom and not refused
            rows.append((f"pair {name}", "no out-of-memory (stderr, refused waits)", "none", "; ".join(oom) or (f"{len(refused)} refused" if refused else "none"), no_oom))
            ok_all = ok_all and ok and f["ballast_ok"] and no_oom
        idle, handovers = idle_both(ticks_of(a), ticks_of(b), lo, hi)
        per = idle / handovers if handovers else None
        hs, split = split_rows(events(a) + events(b))
        results["pair"] = {"windowS": hi - lo, "idleBothS": idle, "handovers": handovers, "secondsPerHandover": per, "overlapped": hs}
        rows.append(("pair", "neither trains: seconds in the window / per hand-over", "-",
                     f"{idle:.1f} of {hi - lo:.1f} / {per:.2f}" if per is not None else f"{idle:.1f} of {hi - lo:.1f} / no hand-over", True))
        rows.extend(split)
    table = ["| phase | check | target | measured | ok |", "|---|---|---|---|---|"] + [f"| {p} | {c} | {t} | {m} | {'yes' if o else 'NO'} |" for p, c, t, m, o in rows]
    open(os.path.join(OUT, "table.md"), "w").write("\n".join(table) + "\n")
    json.dump(results, open(os.path.join(OUT, "results.json"), "w"), indent=2)
    print("\n".join(table), flush=True)
    sys.exit(0 if ok_all and all(r[4] for r in rows) else 1)


if __name__ == "__main__":
    main()
