"""Driving a swap task by hand, shared by swap_check.py and move_check.py: swap_task.py under
libgpushare with its JSON lines read as they come, and the daemon's side of the library's
control socket (native/shim/SWAP.md, "The control socket")."""
import json
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class Task:
    """swap_task.py STEPS BALLAST_GIB under LIB, its stdout kept in OUT/task-NAME.log."""

    def __init__(self, name, env, lib, out, steps, ballast):
        self.name = name
        self.log = open(os.path.join(out, f"task-{name}.log"), "w")
        self.err = open(os.path.join(out, f"task-{name}.stderr"), "w")
        full = dict(os.environ, LD_PRELOAD=lib, PYTHONUNBUFFERED="1", **env)
        full.pop("PYTORCH_CUDA_ALLOC_CONF", None)  # plain cudaMalloc segments: the swappable kind
        cmd = [sys.executable, os.path.join(HERE, "swap_task.py"), str(steps), str(ballast)]
        self.p = subprocess.Popen(cmd, env=full, stdout=subprocess.PIPE, stderr=self.err, text=True, cwd=HERE)
        self.lines = []

    def next_event(self, want):
        for line in self.p.stdout:
            self.log.write(line)
            self.log.flush()
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            self.lines.append(ev)
            if ev.get("event") == want:
                return ev
        return None

    def finish(self):
        ev = self.next_event("final")
        self.p.wait()
        return ev


class Control:
    """The daemon's side of the library's control socket. The library also sends lines nobody
    asked for (`{"event":"wants-in"}` when a held thread wants to launch while out): they are
    kept in `events`, never taken for an answer."""

    def __init__(self, path):
        for _ in range(200):
            if os.path.exists(path):
                break
            time.sleep(0.05)
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("r")
        self.events = []

    def ask(self, cmd):
        t0 = time.perf_counter()
        self.s.sendall((cmd + "\n").encode())
        while True:
            ans = json.loads(self.f.readline())
            if "event" not in ans:
                break
            self.events.append(dict(ans, after_s=time.perf_counter() - t0, during=cmd))
        ans["wall_s"] = time.perf_counter() - t0
        return ans
