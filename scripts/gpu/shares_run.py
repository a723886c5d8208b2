"""shares_run.py: throughput-true compute shares on a real GPU (issue 21, item 1), for
scripts/gpu-check-shares.sh. Prints one markdown report; raw JSON lines go to OUT/shares.jsonl.

    python3 shares_run.py OUT LIB BURN

For each program (compute_burn: a compute-bound kernel; compute_torch.py burn: 8192x8192 bf16
matmuls, power-limited on an H100/H200; compute_torch.py train: a transformer training step,
power-limited real work), round by round: the program unlimited without the
library (that round's baseline), then under libgpushare alone at 10/25/50/75/90% and in the
pairs 30+70 and 50+50, once with each GPUSHARE_COMPUTE_ACCOUNTING of ACCOUNTINGS (default
"throughput gpu time": throughput, the default, confines a hard process to its own window even
alone; gpu is what throughput was before, clock-weighted GPU time only; the accountings rotate
which goes first, round by round). For the matmul loop alone, also
throughput accounting with the saturated clock set (GPUSHARE_COMPUTE_CLOCK) to the SM clock
of that round's unlimited run: what clock weighting gives when the saturated clock is right,
apart from how well the library learns it. A run's achieved share is its mean 1 s window
(compute_summary.py's windows, after its SKIP) over the round's baseline; the table gives the
median over rounds and the range, and for throughput runs what the library's exit line says
(busy time charged at x, the saturated clock it used). Then one 50% matmul run (time
accounting) with the SM clock by phase of the library's 1 s period, and SM partitions with the
matmul loop: unlimited, 50%, 40% and 25% partitions alone, and side by side on disjoint SMs
under an MPS daemon of our own (50+40, as issue 21 measured through the daemon, and 50+25),
each against its speed alone.

nvidia-smi samples the SM clock and the SW power cap every 25 ms for the whole run.

Time: ROUNDS_BURN and ROUNDS_TORCH (default 2 each) rounds of SECS (default 3) s runs;
a round that would end past BUDGET_S (default 380) s is not started, and the report says so.
Each run's processes start while the run before measures (pipelined), with their measured
loops from its end.

One file of about 400 lines on purpose: the GPU machine runs it as it is, beside the workloads it
drives (compute_burn, compute_torch.py, partition_torch.py), with nothing to install.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compute_summary import SKIP, windows  # noqa: E402  the same 1 s windows as gpu-check-compute.sh

HERE = os.path.dirname(os.path.abspath(__file__))
SECS = float(os.environ.get("SECS", "3"))
ROUNDS = {"burn": int(os.environ.get("ROUNDS_BURN", "2")), "torch": int(os.environ.get("ROUNDS_TORCH", "2")),
          "train": int(os.environ.get("ROUNDS_TRAIN", "1"))}
BUDGET_S = float(os.environ.get("BUDGET_S", "380"))
TARGETS = [int(x) for x in os.environ.get("TARGETS", "10 25 50 75 90").split()]
PAIRS = [tuple(int(v) for v in p.split(":")) for p in os.environ.get("PAIRS", "30:70 50:50").split()]
LEAD = {"burn": 2.0, "torch": 9.0, "train": 25.0}  # partitions: seconds from start to the pair's start: start-up and warm-up
STARTUP_S = {"burn": 2.0, "torch": 8.0, "train": 25.0}  # at least this long from a process's start to its measured loop
DEPTH = 3  # slots started at once: one measuring, the next ones starting up
GAP_S = 0.5  # between one slot's end and the next one's start (a limited run's last batch may
# wait up to (1 - share) s for its window: inside the next slot's first SKIP s, never measured)
LATE_S = 0.3  # a loop that began later than this after its START_AT is dropped
POLICIES = tuple(os.environ.get("ACCOUNTINGS", "throughput gpu time").split())
if not POLICIES or any(p not in ("throughput", "gpu", "time") for p in POLICIES):
    sys.exit(f"ACCOUNTINGS={os.environ.get('ACCOUNTINGS')!r}: expected some of throughput, gpu, time")
SET = "throughput, clock set"  # throughput accounting, GPUSHARE_COMPUTE_CLOCK = the unlimited run's clock
NAMES = {"burn": "compute-bound kernel", "torch": "bf16 8192 matmul (torch)", "train": "transformer training step (torch)"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Clocks:
    """nvidia-smi sampling the SM clock and the SW power cap every 25 ms into a file."""

    def __init__(self, work):
        self.path = os.path.join(work, "clocks.csv")
        self.mono_minus_wall = time.monotonic() - time.time()
        # the field's name before "event reasons" (NVML 12.2) was "throttle reasons"
        query = "timestamp,clocks.sm,clocks_event_reasons.sw_power_cap"
        try:
            if subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"], capture_output=True).returncode != 0:
                query = "timestamp,clocks.sm,clocks_throttle_reasons.sw_power_cap"
            self.proc = subprocess.Popen(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits", "-lms", "25"],
                                         stdout=open(self.path, "w"), stderr=subprocess.DEVNULL)
        except OSError as e:
            log(f"nvidia-smi sampling unavailable ({e})")
            self.proc = None

    def samples(self, t0, t1):
        """(wall time, MHz, power-capped) between t0 and t1 (Unix time)."""
        out = []
        try:
            lines = open(self.path).read().splitlines()
        except OSError:
            return out
        for line in lines:
            try:
                ts, mhz, cap = [x.strip() for x in line.split(",")]
                whole, frac = ts.split(".")
                wall = time.mktime(time.strptime(whole, "%Y/%m/%d %H:%M:%S")) + float("0." + frac)
                if t0 <= wall <= t1:
                    out.append((wall, float(mhz), cap.lower() == "active"))
            except ValueError:
                continue
        return out

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()


class Runner:
    def __init__(self, out, lib, burn):
        self.out, self.lib, self.burn = out, lib, burn
        self.work = tempfile.mkdtemp(prefix="shares-")
        self.results = open(os.path.join(out, "shares.jsonl"), "w")
        self.t0 = time.time()
        cal = json.loads(subprocess.run([burn, "calibrate", "2"], capture_output=True, text=True, check=True).stdout)
        self.iters = cal["iters"]
        # a fixed grid for every run (MPS clients see fewer SMs), as gpu-check-compute.sh does
        self.base_env = dict(os.environ, BURN_BLOCKS=str(8 * cal["sms"]), PYTHONUNBUFFERED="1")
        log(f"compute_burn: {cal}")
        self.clocks = Clocks(self.work)
        self.saturated = {}  # program -> the SM clock of the latest unlimited run (MHz)
        self.late = []  # runs dropped for a late start

    def cmd(self, prog):
        if prog == "burn":
            return [self.burn, "burn", str(SECS), str(self.iters)]
        return [sys.executable, os.path.join(HERE, "compute_torch.py"), "train" if prog == "train" else "burn", str(SECS)]

    def env(self, prog, limit, policy, start_at):
        e = dict(self.base_env, START_AT=f"{start_at:.3f}")
        if limit:
            # debug: the library's exit lines say how busy time was charged (throughput accounting)
            e.update(LD_PRELOAD=self.lib, GPUSHARE_COMPUTE_LIMIT=str(limit), GPUSHARE_LOG_LEVEL="debug",
                     GPUSHARE_COMPUTE_ACCOUNTING="throughput" if policy == SET else policy)
            if policy == SET:
                e["GPUSHARE_COMPUTE_CLOCK"] = str(round(self.saturated[prog]))
        return e

    def charged(self, tag, i):
        """What the library's exit line says of a run: (charged / busy, saturated MHz), or None."""
        try:
            text = open(os.path.join(self.work, f"{tag}-{i}.err")).read()
        except OSError:
            return None
        m = re.search(r"throughput shares: busy ([\d.]+) ms charged as ([\d.]+) ms, saturated clock (\d+) MHz", text)
        if not m or float(m[1]) <= 0:
            return None
        return float(m[2]) / float(m[1]), int(m[3])

    def start(self, prog, runs, tag, start_at):
        """Starts runs [(limit or 0, policy)] of prog, their measured loops from start_at (Unix
        time); each slot meets on a board directory of its own, so a slot starting up (CUDA,
        warm-up) while the one before measures is never laid out beside it. None: a run of
        policy SET before the program's saturated clock is known."""
        if any(p == SET for _, p in runs) and prog not in self.saturated:
            return None
        board = os.path.join(self.work, f"board-{tag}")
        os.makedirs(board, exist_ok=True)
        procs = []
        for i, (limit, policy) in enumerate(runs):
            env = self.env(prog, limit, policy, start_at)
            env["GPUSHARE_COMPUTE_DIR"] = board
            err = open(os.path.join(self.work, f"{tag}-{i}.err"), "w")
            procs.append(subprocess.Popen(self.cmd(prog), env=env, stdout=subprocess.PIPE, stderr=err, text=True))
        return procs

    def finish(self, procs, tag, n, start_at):
        """The throughputs (kernels per 1 s window, mean) of started runs, in order; None for a
        failed run, and for one whose loop began more than LATE_S after start_at (its start-up
        took longer than the pipeline gave it: it may have measured beside the next slot)."""
        if procs is None:
            return [None] * n
        got = []
        for i, p in enumerate(procs):
            out, _ = p.communicate()
            try:
                res = json.loads(out.strip().splitlines()[-1])
                late = res.get("start", start_at) - start_at
                if late > LATE_S:
                    log(f"  [{tag} run {i}] began {late:.2f} s late: dropped")
                    self.late.append(f"{tag} run {i} ({late:.2f} s)")
                    got.append(None)
                    continue
                w = windows(res["bins"], int(SKIP * 10))
                got.append(statistics.mean(w) if w else None)
            except Exception as e:  # noqa: BLE001 - a failed run is reported, not fatal
                tail = open(os.path.join(self.work, f"{tag}-{i}.err")).read().strip().splitlines()[-2:]
                log(f"  [{tag} run {i}] no result ({e}): {tail}")
                got.append(None)
        return got

    def slots(self, prog, slots):
        """Runs slots [(runs, tag, done(got, start_at))] one after the other, pipelined: while
        one measures, the next ones' processes start up (CUDA, warm-up: a few kernels is all they
        put beside it), each given at least STARTUP_S[prog] before its measured loop, which begins
        GAP_S after the one before ends. done gets each slot's throughputs when it ends."""
        gap = SECS + GAP_S
        queue = []  # started slots: (procs, start_at, i)
        at = time.time()
        nxt = 0
        for i, (runs, tag, done) in enumerate(slots):
            while nxt < len(slots) and len(queue) < DEPTH:
                at = max(at + gap, time.time() + STARTUP_S[prog]) if nxt else time.time() + STARTUP_S[prog]
                queue.append((self.start(prog, slots[nxt][0], slots[nxt][1], at), at, nxt))
                nxt += 1
            procs, cur_at, _ = queue.pop(0)
            done(self.finish(procs, tag, len(runs), cur_at), cur_at)

    def record(self, **row):
        self.results.write(json.dumps(row) + "\n")
        self.results.flush()


def timeslice(r, table, charged):
    """The time-slice rounds: table[(prog, case, target, policy)] = [achieved %], charged[same] =
    [(charged / busy, saturated MHz)] from the exit lines."""
    skipped = []
    for prog in ("burn", "torch", "train"):
        per_round_s = None
        for rnd in range(ROUNDS[prog]):
            if per_round_s is not None and time.time() - r.t0 + per_round_s > BUDGET_S:
                skipped.append(f"{prog} rounds {rnd + 1}-{ROUNDS[prog]} (time budget)")
                break
            t_round = time.time()
            base = {}

            def on_base(got, at, rnd=rnd):
                base["per_s"] = got[0]
                # the unlimited run's SM clock over its measured windows
                clk = [mhz for _, mhz, _ in r.clocks.samples(at + SKIP, at + SECS)]
                if clk:
                    r.saturated[prog] = statistics.mean(clk)
                r.record(kind="baseline", program=prog, round=rnd, per_s=got[0], sm_mhz=r.saturated.get(prog))

            def on_runs(got, at, cases, tag, policy, rnd=rnd):
                for i, ((case, target), g) in enumerate(zip(cases, got)):
                    if g is None or not base.get("per_s"):
                        continue
                    a = 100.0 * g / base["per_s"]
                    table.setdefault((prog, case, target, policy), []).append(a)
                    ch = r.charged(tag, i) if policy != "time" else None
                    if ch:
                        charged.setdefault((prog, case, target, policy), []).append(ch)
                    clk = [mhz for _, mhz, _ in r.clocks.samples(at + SKIP, at + SECS)]
                    r.record(kind="run", program=prog, round=rnd, policy=policy, case=case, target=target, achieved=a,
                             charged=ch, sm_mhz_mean=statistics.mean(clk) if clk else None)

            slots = [([(0, "")], f"{prog}-r{rnd}-base", on_base)]
            k = rnd % len(POLICIES)
            policies = list(POLICIES[k:] + POLICIES[:k])  # which goes first rotates
            for policy in policies + ([SET] if prog == "torch" else []):
                for t in TARGETS:
                    tag = f"{prog}-r{rnd}-{policy.replace(' ', '').replace(',', '-')}-{t}"
                    slots.append(([(t, policy)], tag, lambda got, at, c=[(f"alone {t}", t)], tag=tag, policy=policy: on_runs(got, at, c, tag, policy)))
                if policy == SET:
                    continue  # alone only: the pairs keep the GPU busy (no boost to correct)
                for a_pct, b_pct in PAIRS:
                    tag = f"{prog}-r{rnd}-{policy}-{a_pct}+{b_pct}"
                    same = a_pct == b_pct
                    cases = [(f"pair {a_pct}+{b_pct} ({a_pct}{' a' if same else ''})", a_pct),
                             (f"pair {a_pct}+{b_pct} ({b_pct}{' b' if same else ''})", b_pct)]
                    slots.append(([(a_pct, policy), (b_pct, policy)], tag, lambda got, at, c=cases, tag=tag, policy=policy: on_runs(got, at, c, tag, policy)))
            r.slots(prog, slots)
            per_round_s = time.time() - t_round
            log(f"{prog} round {rnd + 1} done at +{time.time() - r.t0:.0f} s ({per_round_s:.0f} s)")
    return skipped


def clock_trace(r):
    """The SM clock through the period of a 50% matmul loop (time accounting: the boost it
    leaves uncorrected): mean MHz and the share of samples under the SW power cap, by 50 ms of
    the period's phase (CLOCK_MONOTONIC seconds, as the library's periods). How fast the power
    cap pulls the clock down is what GS_CLOCK_SETTLE_NS (60 ms) assumes."""
    span = {}
    r.slots("torch", [([(50, "time")], "trace-50", lambda got, at: span.update(at=at))])
    buckets = {}
    for wall, mhz, capped in r.clocks.samples(span["at"] + SKIP, span["at"] + SECS):
        phase = (wall + r.clocks.mono_minus_wall) % 1.0
        buckets.setdefault(int(phase * 20), []).append((mhz, capped))
    return [(b * 50, statistics.mean(m for m, _ in v), 100.0 * sum(c for _, c in v) / len(v), len(v))
            for b, v in sorted(buckets.items())]


def partitions(r):
    """SM partitions with the matmul loop (scripts/gpu/partition_torch.py): speeds in matmuls/s."""
    script = os.path.join(HERE, "partition_torch.py")
    part = {"LD_PRELOAD": r.lib, "GPUSHARE_ISOLATION": "sm-partition"}

    def go(specs, tag):
        start_ms = int((time.time() + LEAD["torch"]) * 1000) if len(specs) > 1 else None
        procs = []
        for i, extra in enumerate(specs):
            env = dict(r.base_env, **extra)
            argv = [sys.executable, script, str(max(SECS, 3))] + ([str(start_ms)] if start_ms else [])
            procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                          stderr=open(os.path.join(r.work, f"part-{tag}-{i}.err"), "w"), text=True))
        out = []
        for p in procs:
            o, _ = p.communicate()
            try:
                d = json.loads(o.strip().splitlines()[-1])
                out.append((d.get("rate"), d))
            except Exception as e:  # noqa: BLE001
                log(f"  [partition {tag}] no result ({e})")
                out.append((None, {}))
        return out

    rows = []
    unl = go([{}], "unlimited")[0]
    alone = {p: go([dict(part, GPUSHARE_COMPUTE_LIMIT=str(p))], str(p))[0] for p in (50, 40, 25)}
    r.record(kind="partition", case="unlimited", result=unl[1])
    for p, res in alone.items():
        r.record(kind="partition", case=f"alone {p}", result=res[1])
        rows.append((f"{p}% partition alone", res[0], unl[0], None, res[1].get("ctx_sms")))
    pipe = os.path.join(r.work, "mps-pipe")
    logd = os.path.join(r.work, "mps-log")
    os.makedirs(pipe)
    os.makedirs(logd)
    mps_env = dict(os.environ, CUDA_MPS_PIPE_DIRECTORY=pipe, CUDA_MPS_LOG_DIRECTORY=logd)
    try:
        subprocess.run(["nvidia-cuda-mps-control", "-d"], env=mps_env, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        log(f"MPS did not start ({e}): no side-by-side partitions")
        return rows
    r.base_env.update(CUDA_MPS_PIPE_DIRECTORY=pipe, CUDA_MPS_LOG_DIRECTORY=logd)
    try:
        # disjoint SMs (the first at SM 0, the second at SM 64), as the daemon places them: what
        # is left between them is the power budget and the memory system
        for a_pct, b_pct in ((50, 40), (50, 25)):
            res = go([dict(part, GPUSHARE_COMPUTE_LIMIT=str(a_pct), GPUSHARE_SM_OFFSET="0"),
                      dict(part, GPUSHARE_COMPUTE_LIMIT=str(b_pct), GPUSHARE_SM_OFFSET="64")], f"mps-{a_pct}+{b_pct}")
            r.record(kind="partition", case=f"{a_pct}+{b_pct} side by side, disjoint SMs (MPS)", result=[x[1] for x in res])
            for pct, (v, d) in zip((a_pct, b_pct), res):
                rows.append((f"{a_pct}+{b_pct} side by side on disjoint SMs (MPS): the {pct}", v, unl[0], alone[pct][0], d.get("ctx_sms")))
    finally:
        subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, env=mps_env)
        for k in ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY"):
            r.base_env.pop(k, None)
    return rows


def fmt(v):
    if not v:
        return "-"
    return f"{statistics.median(v):.1f}% ({min(v):.1f}-{max(v):.1f})"


def err(v, target):
    return f"{statistics.median(v) - target:+.1f}" if v else "-"


def report(r, table, charged, skipped, trace, part_rows):
    print("\n| program | case | target | " + " | ".join(f"{p}: median (range) | error | charged x, clock used" for p in POLICIES)
          + " | throughput, clock set to the unlimited run's: median | error | charged x | rounds |")
    print("|" + " --- |" * (3 + 3 * len(POLICIES) + 4))
    seen = []
    for (prog, case, target, _) in table:
        if (prog, case, target) not in seen:
            seen.append((prog, case, target))
    for prog, case, target in seen:
        cols = [table.get((prog, case, target, p), []) for p in POLICIES]
        st = table.get((prog, case, target, SET), [])

        def ch(policy, clock):
            c = charged.get((prog, case, target, policy), [])
            if not c:
                return "-"
            x = f"x{statistics.median(v[0] for v in c):.3f}"
            return f"{x}, {statistics.median(v[1] for v in c):.0f} MHz" if clock else x

        rounds = max(len(v) for v in cols + [st])
        per = " | ".join(f"{fmt(v)} | {err(v, target)} | {ch(p, True)}" for p, v in zip(POLICIES, cols))
        print(f"| {NAMES[prog]} | {case} | {target} | {per} | {fmt(st)} | {err(st, target)} | {ch(SET, False)} | {rounds} |")
    for prog, mhz in r.saturated.items():
        print(f"\n{NAMES[prog]} unlimited (the latest round): SM clock {mhz:.0f} MHz", end="")
    print()
    if trace:
        print("\nSM clock through the period, bf16 matmul loop alone at 50% (time accounting; its window is the first 500 ms):")
        print("| phase (ms) | " + " | ".join(str(p) for p, _, _, _ in trace) + " |")
        print("| --- | " + " | ".join("---" for _ in trace) + " |")
        print("| SM MHz | " + " | ".join(f"{m:.0f}" for _, m, _, _ in trace) + " |")
        print("| SW power cap (% of samples) | " + " | ".join(f"{c:.0f}" for _, _, c, _ in trace) + " |")
    if part_rows:
        print("\n| SM partition, bf16 8192 matmul | SMs | speed / unlimited | speed / its speed alone |")
        print("| --- | --- | --- | --- |")
        for name, v, unl, alone, sms in part_rows:
            a = f"{100.0 * v / unl:.1f}%" if v and unl else "-"
            b = f"{v / alone:.3f}" if v and alone else "-"
            print(f"| {name} | {sms if sms is not None else '-'} | {a} | {b} |")
    for s in skipped:
        print(f"\nnot run: {s}")
    if r.late:
        print(f"\ndropped (began late, may have overlapped the next run): {', '.join(r.late)}")
    print(f"\n{SECS:g} s runs; achieved = mean 1 s window after {SKIP:g} s over the round's unlimited run; "
          f"total {time.time() - r.t0:.0f} s")


def main():
    out, lib, burn = sys.argv[1:4]
    r = Runner(out, lib, burn)
    table, charged = {}, {}
    try:
        skipped = timeslice(r, table, charged)
        trace = clock_trace(r) if os.environ.get("TRACE", "1") == "1" and ROUNDS["torch"] > 0 else []
        part_rows = partitions(r) if os.environ.get("PARTITIONS", "1") == "1" else []
    finally:
        r.clocks.stop()
    report(r, table, charged, skipped, trace, part_rows)


if __name__ == "__main__":
    main()
