"""Lockstep groups for the overhead harness (scripts/gpu-check-overhead.sh, issue 21 item 2).

Why: the GPU machines' speed drifts over seconds (a VM: CPU clock, neighbours), so two whole
processes run one after the other differ by 10-30% and cannot show 1%. Here the processes of a
round start together (one no-library control and one process per variant), each warms up, then
they take turns through pipes: one runs one short repetition while every other blocks on its
pipe, so each variant repetition is paired with a control repetition run milliseconds away, at
the same machine speed.

Turns. Per workload, cycles in which every process of the round (C the control and the
variants) runs one repetition, in an order drawn at random per cycle (seeded by round and
workload): no process has a special place, each runs once per cycle (about the same idle time
before each of its repetitions), always right after another process's (each pays the same
hand-over, a GPU context switch and colder CPU caches, once), and after a different one from
cycle to cycle; with two processes the order stays C v, which alternates. A variant's repetition is paired with the control's of the same cycle, which runs
before it in some cycles and after it in others (with two processes: the one before for even
cycles, after for odd), so a steady drift cancels. Under no difference, variant and control
repetitions are alike in distribution, so a pair's log-ratio is symmetric about 0 whatever the
noise's shape (stalls only ever slow), and the median of a round's pair ratios is unbiased; a
ratio of sums or a mean over neighbours is not (one stall moves it). (Session 26's first H100
pilot put the control between every two variant repetitions, so it ran twice as often as each
variant, and its decode-at-batch-1 control read -26 to -29%: the roles differed.) A "none2" variant (no
library again) measures the method's own bias: its interval must hold 0.

Usage:
  lockstep.py run --workloads W1,W2 [--pairs N] [--warmup N] [--timeout S] [--round R] \\
      NAME CMD... ::: NAME CMD... [::: ...]
    The first NAME is the control. Each CMD is started with LOCKSTEP_FDS="R,W" (its ends of two
    pipes) and LOCKSTEP_VARIANT=NAME in its environment, stdout sent to this process's stderr.
    Prints one JSON line: {"control", "variants", "workloads", "pairs_per_variant", "reps":
    {W: {NAME: [metrics, ...]}}, "pairs": {W: {VARIANT: [[i, j], ...]}}, "brief", "ready"}, where a
    pair [i, j] is reps[W][VARIANT][i] with reps[W][control][j]; or {"error": "..."}.
  lockstep.py busy [--iters N] [--slower NAME=FACTOR ...]
    A CPU worker for tests: a busy loop of N iterations per repetition (50,000: about 2 ms),
    FACTOR times as many when LOCKSTEP_VARIANT is NAME. Metrics per repetition: s, wall_s (seconds) and cpu_s (thread CPU).

Protocol (one JSON object or word per line): the worker writes {"ready": true, ...} once warmed
up; then reads "go WORKLOAD" and answers one repetition's metrics ({"s": 0.0041}: seconds per
unit) or {"error": "..."}, until "stop" or end of file. serve() is the Python side of it;
scripts/gpu/lockstep.h the C side (bench_launch.cu's lockstep mode).
"""
import json
import random
import os
import select
import statistics
import subprocess
import sys
import time


# ---- worker side ----------------------------------------------------------------------------
def serve(workloads, info=None):
    """Answers the coordinator: workloads maps a name to a function running one repetition and
    returning its metrics (a dict of numbers). Returns when told to stop or the pipe closes."""
    fds = os.environ.get("LOCKSTEP_FDS", "")
    try:
        rfd, wfd = (int(x) for x in fds.split(","))
    except ValueError:
        raise SystemExit(f"LOCKSTEP_FDS must be 'READ_FD,WRITE_FD', not {fds!r}")
    rf = os.fdopen(rfd, "r")
    wf = os.fdopen(wfd, "w", buffering=1)
    wf.write(json.dumps({"ready": True, **(info or {})}) + "\n")
    for line in rf:
        words = line.split()
        if not words or words[0] == "stop":
            break
        if words[0] != "go" or len(words) != 2 or words[1] not in workloads:
            wf.write(json.dumps({"error": f"unknown request {line.strip()!r}"}) + "\n")
            break
        try:
            metrics = workloads[words[1]]()
        except Exception as e:  # the coordinator reports it as the round's failure
            wf.write(json.dumps({"error": f"{words[1]}: {type(e).__name__}: {e}"}) + "\n")
            break
        wf.write(json.dumps(metrics) + "\n")


def busy_main(argv):
    iters, slower = 50000, {}
    it = iter(argv)
    for a in it:
        if a == "--iters":
            iters = int(next(it))
        elif a == "--slower":
            name, _, factor = next(it).partition("=")
            slower[name] = float(factor)
        else:
            raise SystemExit(f"busy: unknown argument {a}")
    # the work, not a time, is fixed (and scaled): every process of the group runs the same count
    n = int(iters * slower.get(os.environ.get("LOCKSTEP_VARIANT", ""), 1.0))

    def rep():
        t0, c0 = time.perf_counter(), time.thread_time()
        x = 0
        for i in range(n):
            x += i
        wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
        return {"s": wall, "wall_s": wall, "cpu_s": cpu}

    rep()
    serve({w: rep for w in ("train", "decode1", "decode8", "launch", "busy")}, {"iterations": n})


# ---- coordinator side ------------------------------------------------------------------------
class Worker:
    """One process of the group: its pipes, and a line reader with a deadline."""

    def __init__(self, name, cmd):
        self.name = name
        go_r, self.go_w = os.pipe()
        self.res_r, res_w = os.pipe()
        env = dict(os.environ, LOCKSTEP_FDS=f"{go_r},{res_w}", LOCKSTEP_VARIANT=name)
        try:
            self.proc = subprocess.Popen(cmd, env=env, pass_fds=(go_r, res_w), stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno())
        except OSError as e:
            for fd in (go_r, res_w, self.go_w, self.res_r):
                os.close(fd)
            raise RuntimeError(f"{name}: cannot start {cmd[0]}: {e.strerror}")
        os.close(go_r)
        os.close(res_w)
        self.buf = b""

    def send(self, text):
        try:
            os.write(self.go_w, (text + "\n").encode())
        except BrokenPipeError:
            raise RuntimeError(f"{self.name}: exited (status {self.proc.poll()})")

    def receive(self, timeout):
        """The next JSON line from the worker, or RuntimeError (exit, timeout, an error it sent)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: no answer within {timeout:g}s")
            ready, _, _ = select.select([self.res_r], [], [], left)
            if ready:
                chunk = os.read(self.res_r, 65536)
                if not chunk:
                    self.proc.wait()
                    raise RuntimeError(f"{self.name}: exited (status {self.proc.returncode}) without answering")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            msg = json.loads(line)
        except ValueError:
            raise RuntimeError(f"{self.name}: unreadable answer {line[:120]!r}")
        if not isinstance(msg, dict):
            raise RuntimeError(f"{self.name}: answer is not an object: {line[:120]!r}")
        if "error" in msg:
            raise RuntimeError(f"{self.name}: {msg['error']}")
        return msg

    def close(self, grace):
        for fd in (self.go_w, self.res_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def schedule(variants, cycles, offset):
    """The turns of one workload: per cycle every process once, C (the control) and the variants,
    in an order drawn at random per cycle (seeded by offset: the same round and workload give the
    same turns), never starting with the process that ended the cycle before; so who runs before
    whom, and whether the control runs before or after a variant, varies from cycle to cycle.
    With one variant the order stays C v (two processes cannot change order without one running
    twice in a row), and one more C ends it (the odd cycles' pair)."""
    names = ["C"] + list(variants)
    if len(names) == 2:
        return names * cycles + ["C"]
    rng = random.Random(offset)
    seq = []
    for _ in range(cycles):
        order = names[:]
        rng.shuffle(order)
        while seq and order[0] == seq[-1]:
            rng.shuffle(order)
        seq += order
    return seq


def pairs_of(seq, variant):
    """Per repetition of variant in seq, the index of its own repetition and of the control
    repetition it is paired with: the control's of the same cycle (with one variant, C v C v ...
    C: the one before it for even repetitions, after it for odd). Indices count each process's
    repetitions."""
    names = []
    for name in seq:
        if name in names:
            break
        names.append(name)
    k = sum(1 for name in seq if name == variant)
    if len(names) == 2:
        return [[i, i if i % 2 == 0 else i + 1] for i in range(k)]
    return [[i, i] for i in range(k)]


def run_main(argv):
    opts = {"--workloads": None, "--pairs": "10", "--warmup": "1", "--timeout": "120", "--round": "0"}
    i = 0
    while i < len(argv) and argv[i] in opts:
        if i + 1 == len(argv):
            return fail(f"{argv[i]} needs a value")
        opts[argv[i]] = argv[i + 1]
        i += 2
    procs, cur = [], []
    for a in argv[i:] + [":::"]:
        if a == ":::":
            if len(cur) < 2:
                return fail("each process needs a NAME and a command")
            procs.append((cur[0], cur[1:]))
            cur = []
        else:
            cur.append(a)
    if not opts["--workloads"]:
        return fail("--workloads is required")
    names = [n for n, _ in procs]
    if len(procs) < 2 or len(set(names)) != len(names) or "C" in names[1:]:
        return fail(f"need a control and at least one variant, each named once (and no variant named C): {names}")
    workloads = opts["--workloads"].split(",")
    try:
        pairs, warmup, timeout, rnd = int(opts["--pairs"]), int(opts["--warmup"]), float(opts["--timeout"]), int(opts["--round"])
    except ValueError:
        return fail("--pairs, --warmup and --round take whole numbers, --timeout seconds")
    control, variants = names[0], names[1:]
    if pairs < 2 or warmup < 0 or timeout <= 0:
        return fail("--pairs must be at least 2, --warmup at least 0, --timeout above 0")

    workers = {}
    out = {"control": control, "variants": variants, "workloads": workloads, "pairs_per_variant": pairs, "reps": {}, "pairs": {}}
    t_start = time.monotonic()
    try:
        for name, cmd in procs:
            workers[name] = Worker(name, cmd)
        # the processes start together and warm up side by side (their start-up is not measured)
        out["ready"] = {n: workers[n].receive(timeout) for n in names}
        out["ready_s"] = round(time.monotonic() - t_start, 2)
        def one(name, workload):
            """One repetition of workload by the process named (C: the control): its metrics."""
            wk = workers[control if name == "C" else name]
            wk.send(f"go {workload}")
            return wk.receive(timeout)

        for w, workload in enumerate(workloads):
            if warmup:
                for name in schedule(variants, warmup, rnd):  # warm-up turns, not recorded
                    one(name, workload)
            seq = schedule(variants, pairs, rnd + w)
            reps = {n: [] for n in names}
            for name in seq:
                at = round(time.monotonic() - t_start, 4)
                m = one(name, workload)
                m["at_s"] = at
                reps[control if name == "C" else name].append(m)
            out["reps"][workload] = reps
            out["pairs"][workload] = {v: pairs_of(seq, v) for v in variants}
        for wk in workers.values():
            wk.send("stop")
    except RuntimeError as e:
        for wk in workers.values():
            wk.proc.kill()
        for wk in workers.values():
            wk.close(5)
        print(json.dumps({"error": str(e), "control": control, "variants": variants}))
        return 1
    for wk in workers.values():
        wk.close(30)
    out["wall_s"] = round(time.monotonic() - t_start, 2)
    out["brief"] = brief(out)
    print(json.dumps(out))
    return 0


def brief(out):
    """A progress line: per workload and variant, the median pair ratio of the first metric."""
    parts = []
    for w in out["workloads"]:
        reps = out["reps"][w]
        key = next(iter(k for k in reps[out["control"]][0] if k != "at_s"))
        cells = []
        for v in out["variants"]:
            r = [reps[v][i][key] / reps[out["control"]][j][key] for i, j in out["pairs"][w][v]]
            cells.append(f"{v} {100 * (statistics.median(r) - 1):+.2f}%")
        parts.append(f"{w}: " + " ".join(cells))
    return "; ".join(parts)


def fail(msg):
    print(json.dumps({"error": msg}))
    return 2


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        sys.exit(run_main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "busy":
        busy_main(sys.argv[2:])
        sys.exit(0)
    print(__doc__, file=sys.stderr)
    sys.exit(2)
