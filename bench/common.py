"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Shared benchmark plumbing: free ports, process start/stop, wrk runs and parsing.
Tagline: Measure twice, in the same run, on the same box.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port():
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(cmd, env=None, log=None, cwd=REPO):
    """Start a process in its own session (so its children are stopped with it), from ``cwd``
    (the source tree whose ``cerebro`` a ``python -m cerebro`` runs)."""
    out = open(log, "wb") if log else subprocess.DEVNULL
    return subprocess.Popen(cmd, env=dict(os.environ, **(env or {})), stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)


def baseline_env(tree):
    """The environment that makes ``python -m cerebro`` run the source tree ``tree`` (an
    earlier commit checked out with ``git worktree add``): its packages first on the path."""
    return {"PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")])
            .rstrip(os.pathsep)}


def stop(proc):
    """SIGTERM a process group, then SIGKILL if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_http(url, body=None, timeout=60):
    """Wait until ``url`` answers 200 (POSTing ``body`` when given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, data=body, method="POST" if body else "GET",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 in {timeout}s")


def _seconds(text):
    """Convert a wrk duration such as 1.23ms / 850.00us / 1.2s to seconds."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk(url, body, connections, duration=10, threads=2):
    """Run wrk with a POST body; return req/s, p50 and p99 (ms) and errors."""
    threads = max(1, min(threads, connections))
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency",
         "-s", str(REPO / "bench" / "wrk_post.lua"), url],
        capture_output=True, text=True, env=dict(os.environ, BENCH_BODY=body), check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _seconds(re.search(r"\s50%\s+(\S+)", out).group(1)) * 1000
    p99 = _seconds(re.search(r"\s99%\s+(\S+)", out).group(1)) * 1000
    errors = 0
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(match.group(1)) if match else 0
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors += sum(int(g) for g in match.groups()) if match else 0
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors}


def start_py_spy(pid, out):
    """py-spy sampling the GIL holders of process ``pid`` (CPU in Python) into ``out`` (raw
    format) until :func:`report_py_spy` stops it."""
    return subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--rate", "200", "--gil",
                             "--nonblocking", "--format", "raw", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PATH=os.pathsep.join(
                                [str(Path(sys.executable).parent), os.environ.get("PATH", "")])))


def report_py_spy(profiler, out, stages, title, top=8, innermost=False):
    """Stop py-spy and print its samples by stage (``stages``: ``(name, marks)`` pairs, the
    first whose mark is in a frame of a sample wins; with ``innermost``, the stage of the
    innermost frame matching any mark wins: self time by layer) and the top functions by self
    time."""
    import collections
    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(30)
    except subprocess.TimeoutExpired:
        profiler.kill()
    path = Path(out)
    if not path.is_file():
        print("profile: py-spy wrote nothing (is it installed? pip install py-spy)")
        return
    by_stage, leaves, total = collections.Counter(), collections.Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        count, frames = int(count), stack.split(";")
        total += count
        leaves[re.sub(r":\d+\)$", ")", frames[-1])] += count
        if innermost:
            stage = next((name for frame in reversed(frames) for name, marks in stages
                          if any(mark in frame for mark in marks)), "other")
        else:
            stage = next((name for name, marks in stages
                          if any(mark in frame for frame in frames for mark in marks)), "other")
        by_stage[stage] += count
    if not total:
        print("profile: no samples")
        return
    print(f"{title} (py-spy, {total} samples holding the GIL), by stage:")
    for name, count in by_stage.most_common():
        print(f"  {count / total:6.1%}  {name}")
    print("  top functions (self time):")
    for name, count in leaves.most_common(top):
        print(f"  {count / total:6.1%}  {name[:110]}")
