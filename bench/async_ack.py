"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Benchmark of the async path: 202 ack latency under open-loop load, and worker throughput.
Tagline: How fast do we say "got it", and how fast do we get it done.

Starts its own ``cerebro serve``, ``cerebro worker`` and callback receiver
against the RabbitMQ on ``CEREBRO_BROKER_URL`` (default 127.0.0.1:5672) and
the Redis result backend, with a fresh queue prefix, then prints:

* ack latency p50/p99/max of ``POST /v1/jobs/noop`` at each rate (open loop:
  requests are sent on a fixed schedule whatever the answers do; latency is
  measured from the scheduled send time, so a stall is never hidden);
* completed tasks per second of one worker process (queue pre-filled, worker
  started, time from first to last callback).

    python bench/async_ack.py --rates 200,500 --seconds 10 --tasks 2000
"""

import argparse
import http.client
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"


class CountingReceiver:
    """A callback receiver counting deliveries with their arrival times."""

    def __init__(self):
        self.times = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            """Count one callback."""

            protocol_version = "HTTP/1.1"

            def do_POST(self):
                """Read, count, answer 204."""
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.times.append(time.perf_counter())
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def free_port():
    """A free TCP port on 127.0.0.1."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(args, env, log):
    """Start a cerebro sub-command in its own process group."""
    return subprocess.Popen([sys.executable, "-m", "cerebro", *args], env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc):
    """SIGTERM a process group and wait."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def wait_http(port, path, timeout=60):
    """Wait until GET path answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port}")


def wait_log(path, text, timeout=60):
    """Wait until ``text`` appears in a log file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{text!r} not in {path} after {timeout}s")


def open_loop(port, rate, seconds, threads=48):
    """Send POSTs at ``rate``/s for ``seconds``; return (latencies in ms, non-202 count)."""
    total = int(rate * seconds)
    jobs = queue.Queue()
    latencies, errors = [], [0]
    lock = threading.Lock()

    def client():
        """One keep-alive connection sending scheduled requests."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            due = jobs.get()
            if due is None:
                return
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            conn.request("POST", "/v1/jobs/noop", body=b"{}",
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            elapsed = (time.perf_counter() - due) * 1000
            with lock:
                latencies.append(elapsed)
                if response.status != 202:
                    errors[0] += 1

    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    start = time.perf_counter() + 0.2
    for i in range(total):
        jobs.put(start + i / rate)
    for _ in workers:
        jobs.put(None)
    for w in workers:
        w.join()
    return latencies, errors[0]


def percentile(values, q):
    """The q-th percentile (0-100) of values."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main(argv=None):
    """Run the benchmark and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rates", default="200,500", help="comma-separated request rates (req/s)")
    parser.add_argument("--seconds", type=float, default=10, help="duration of each rate")
    parser.add_argument("--tasks", type=int, default=2000, help="tasks for the worker throughput run")
    parser.add_argument("--processes", type=int, default=1, help="API processes")
    args = parser.parse_args(argv)

    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"cerebro-bench-{uuid.uuid4().hex[:6]}"
    work.mkdir(parents=True)
    receiver = CountingReceiver()
    port = free_port()
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'tests'}",
               CEREBRO_MODULES_PACKAGE="fixture_modules", CEREBRO_MODULES="jobs",
               CEREBRO_QUEUE_PREFIX=f"bench-{uuid.uuid4().hex[:8]}",
               CEREBRO_CALLBACK_SECRET=SECRET,
               CEREBRO_MAIN_APP_URL=f"http://127.0.0.1:{receiver.port}",
               CEREBRO_DATA_VOLUME=str(work / "volume"), SHERLOCK_DIR=str(work / "sherlock"),
               CEREBRO_LOG_LEVEL="WARNING")
    server = spawn(["serve", "--port", str(port), "--processes", str(args.processes)], env,
                   work / "serve.log")
    worker = None
    try:
        wait_http(port, "/healthz")
        print(f"# ack latency of POST /v1/jobs/noop (202), {args.processes} API process(es), "
              f"open loop, {args.seconds:g}s per rate")
        open_loop(port, 100, 1)  # warm-up: connections, queue declaration
        for rate in (float(r) for r in args.rates.split(",")):
            lat, bad = open_loop(port, rate, args.seconds)
            print(f"rate {rate:>5.0f} req/s  n={len(lat):>5}  p50 {percentile(lat, 50):6.2f} ms  "
                  f"p99 {percentile(lat, 99):6.2f} ms  max {max(lat):7.2f} ms  "
                  f"mean {statistics.mean(lat):6.2f} ms  non-202: {bad}")

        # Throughput: pre-fill the queue, then one worker process drains it.
        backlog = len(receiver.times)
        open_loop(port, 1000, args.tasks / 1000)
        expected = backlog + args.tasks + int(100 * 1)
        for r in args.rates.split(","):
            expected += int(float(r) * args.seconds)
        receiver.times.clear()
        worker = spawn(["worker", "--concurrency", "1", "--loglevel", "WARNING"], env,
                       work / "worker.log")
        deadline = time.monotonic() + 600
        total = expected - backlog
        while len(receiver.times) < total + backlog and time.monotonic() < deadline:
            time.sleep(0.2)
        times = sorted(receiver.times)
        if len(times) > 100:
            tail = times[len(times) // 10:]  # skip the worker's start-up
            rate = (len(tail) - 1) / (tail[-1] - tail[0])
            print(f"# worker throughput: {len(times)} tasks completed (function + signed callback) "
                  f"by 1 worker process: {rate:.0f} tasks/s")
        else:
            print(f"# worker throughput: only {len(times)} callbacks arrived; see {work}")
    finally:
        if worker:
            stop(worker)
        stop(server)
        _delete_queue(env)
    return 0


def _delete_queue(env):
    """Remove the benchmark's durable queue from the broker."""
    from kombu import Connection
    url = env.get("CEREBRO_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    with Connection(url, connect_timeout=2) as conn:
        conn.channel().queue_delete(f"{env['CEREBRO_QUEUE_PREFIX']}.jobs")


if __name__ == "__main__":
    raise SystemExit(main())
