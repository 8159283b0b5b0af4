"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Pub-sub round trip on RabbitMQ: publish -> cerebro subscribe -> rent_predictor -> result.
Tagline: Time the letter there and the answer back, not just the stamp.

Builds ``rent_predictor`` into a temporary data volume (or uses ``--volume``),
starts one ``cerebro subscribe`` process on RabbitMQ (``--broker-url``,
default the machine's node) with exchange and queue names of its own, and
plays the main app with pika: for each window size it keeps at most that many
requests outstanding (window 1 is the bare round-trip latency; a large window
measures throughput), publishing persistent requests with correlation ids
and reading the results from a queue bound to the results exchange. Prints
requests per second round trip (first publish to last result) and latency
percentiles, then removes its exchanges and queues::

    .venv/bin/python bench/pubsub_roundtrip.py --requests 5000 --windows 1,32,256,1024
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pika

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = {"city": "mumbai", "locality": "Andheri West", "bhk": 2, "area_sqft": 950,
           "bathrooms": 2, "floor": 7, "total_floors": 14, "age_years": 6, "furnishing": "semi",
           "parking": "four_wheeler", "amenities": ["lift", "security"]}


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000, help="requests per window size")
    parser.add_argument("--windows", default="1,32,256,1024",
                        help="comma-separated numbers of outstanding requests to measure")
    parser.add_argument("--broker-url", default="amqp://guest:guest@127.0.0.1:5672/%2F",
                        help="RabbitMQ URL")
    parser.add_argument("--prefetch", type=int, default=128, help="subscriber prefetch")
    parser.add_argument("--volume", default=None,
                        help="data volume with rent_predictor built (default: build one now)")
    parser.add_argument("--rows", type=int, default=20000, help="rows of the build when building")
    return parser.parse_args()


def build_volume(rows):
    """A temporary data volume with rent_predictor built."""
    root = Path(tempfile.mkdtemp(prefix="cerebro-bench-volume-"))
    print(f"building rent_predictor ({rows} rows) into {root} ...", flush=True)
    subprocess.run([sys.executable, str(REPO / "modules/rent_predictor/src/build.py"),
                    "--rows", str(rows)], check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, CEREBRO_DATA_VOLUME=str(root)))
    return root


def start_subscriber(args, volume, names, log_path):
    """Start ``cerebro subscribe`` for rent_predictor and wait until it consumes."""
    env = dict(os.environ, CEREBRO_DATA_VOLUME=str(volume), CEREBRO_MODULES="rent_predictor",
               CEREBRO_BROKER_URL=args.broker_url, CEREBRO_PUBSUB_PREFETCH=str(args.prefetch),
               CEREBRO_PUBSUB_REQUESTS_EXCHANGE=names["requests"],
               CEREBRO_PUBSUB_RESULTS_EXCHANGE=names["results"],
               CEREBRO_PUBSUB_DLX=names["dlx"], OMP_NUM_THREADS="1",
               SHERLOCK_DIR=str(log_path.parent / "sherlock"))
    proc = subprocess.Popen([sys.executable, "-m", "cerebro", "subscribe"], env=env, cwd=REPO,
                            stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while "session: consuming" not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"cerebro subscribe did not start; see {log_path}")
        time.sleep(0.1)
    return proc


class MainApp:
    """Publishes requests and reads results on one blocking connection."""

    def __init__(self, url, names):
        self.names = names
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(names["results"], "topic", durable=True)
        self.queue = names["results"] + ".bench"
        self.channel.queue_declare(self.queue, durable=True)
        self.channel.queue_bind(self.queue, names["results"], "#")
        self.channel.basic_qos(prefetch_count=2000)
        self.sent_at = {}
        self.latencies = []
        self.failed = 0
        self.channel.basic_consume(self.queue, self.on_result)

    def on_result(self, channel, method, props, body):
        """A result: record its latency."""
        sent = self.sent_at.pop(props.correlation_id, None)
        if sent is not None:
            self.latencies.append(time.perf_counter() - sent)
            if json.loads(body)["status"] != "succeeded":
                self.failed += 1
        channel.basic_ack(method.delivery_tag, multiple=False)

    def run(self, count, window):
        """Send ``count`` requests keeping at most ``window`` outstanding; returns seconds."""
        self.latencies = []
        props_base = dict(content_type="application/json", delivery_mode=2)
        sent = 0
        started = time.perf_counter()
        while len(self.latencies) < count:
            while sent < count and sent - len(self.latencies) < window:
                cid = uuid.uuid4().hex
                body = json.dumps(dict(EXAMPLE, area_sqft=600 + (sent % 80) * 10)).encode()
                self.sent_at[cid] = time.perf_counter()
                self.channel.basic_publish(
                    self.names["requests"], "rent_predictor.predict", body,
                    pika.BasicProperties(correlation_id=cid, message_id=cid, **props_base))
                sent += 1
            self.connection.process_data_events(time_limit=None)
        return time.perf_counter() - started

    def cleanup(self):
        """Delete the bench's queues and exchanges."""
        for queue in (self.queue, self.names["dlx"], self.names["requests"] + ".rent_predictor",
                      self.names["requests"] + ".rent_predictor.retry"):
            self.channel.queue_delete(queue)
        for exchange in ("requests", "results", "dlx"):
            self.channel.exchange_delete(self.names[exchange])
        self.connection.close()


def percentile(values, q):
    """The q-th percentile (0-100) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main():
    """Run the benchmark and print the table."""
    args = parse_args()
    volume = Path(args.volume) if args.volume else build_volume(args.rows)
    prefix = f"cerebro-bench-{uuid.uuid4().hex[:8]}"
    names = {"requests": f"{prefix}.requests", "results": f"{prefix}.results",
             "dlx": f"{prefix}.dlx"}
    log_path = Path(tempfile.mkdtemp(prefix="cerebro-bench-")) / "subscriber.log"
    proc = start_subscriber(args, volume, names, log_path)
    app = MainApp(args.broker_url, names)
    try:
        app.run(200, 64)  # warm-up: model loaded, caches and connections hot
        print(f"\none `cerebro subscribe` process (prefetch {args.prefetch}), "
              f"rent_predictor.predict, "
              f"{args.requests} requests per row, persistent messages, publisher confirms\n")
        print(f"{'window':>7} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
              f"{'max ms':>8} {'failed':>6}")
        for window in [int(w) for w in args.windows.split(",")]:
            app.failed = 0
            seconds = app.run(args.requests, window)
            lat = [x * 1000 for x in app.latencies]
            print(f"{window:>7} {args.requests / seconds:>8.0f} {percentile(lat, 50):>8.2f} "
                  f"{percentile(lat, 90):>8.2f} {percentile(lat, 99):>8.2f} {max(lat):>8.2f} "
                  f"{app.failed:>6}", flush=True)
        print(f"\nmean latency at the last window: {statistics.mean(lat):.2f} ms; "
              f"subscriber log: {log_path}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        app.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
