"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Kafka consumer throughput, end to end: produce -> consume -> vigilante -> main-app call.
Tagline: Count the letters through the whole post office, not just the sorting desk.

Starts a real broker (tansu), a real main-app receiver (Tornado, verifying
every signature and counting idempotency keys) and one ``cerebro consume``
process serving ``vigilante``; waits until the consumer has joined its group,
then produces N listing events as fast as kafka-python can and measures until
the receiver has seen every event's call. Prints events per second end to end
(first produce to last main-app call) and for the consumer alone (first to
last main-app call), and compares them with the 5,000 events/s target::

    .venv/bin/python bench/kafka_throughput.py --events 50000
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from kafka_broker import KafkaBroker, fresh_name  # noqa: E402

TARGET = 5000
SECRET = "bench-secret"


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000, help="events to produce")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of `listings`")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="consumer threads (CEREBRO_CONSUMER_CONCURRENCY)")
    parser.add_argument("--max-poll-records", type=int, default=1000,
                        help="batch size (CEREBRO_KAFKA_MAX_POLL_RECORDS)")
    parser.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work folder with the logs")
    return parser.parse_args()


def env_for(**extra):
    """The environment of a child process: the tests folder importable, one BLAS thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def stats(url):
    """The receiver's counters."""
    with urllib.request.urlopen(url + "/stats", timeout=10) as response:
        return json.loads(response.read())


def wait(predicate, timeout, what, interval=0.05):
    """Poll until ``predicate()`` is truthy; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


def listing_events(count):
    """``count`` JSON-encoded listing events (generated before the clock starts)."""
    from modules.vigilante.src.extract import extract

    frame = extract(count, seed=99).drop(columns=["kind"])
    records = frame.to_dict("records")
    out = []
    for i, record in enumerate(records):
        record = {k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()}
        record["event_id"] = f"listing-{i}"
        out.append(json.dumps(record).encode())
    return out


def main():
    """Run the benchmark and print the result."""
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="cerebro-kafka-bench-"))
    procs = []
    broker = KafkaBroker(log_path=work / "tansu.log")
    try:
        volume = work / "volume"
        subprocess.run([sys.executable, str(REPO / "modules/vigilante/src/build.py"), "--rows", "8000"],
                       check=True, env=env_for(CEREBRO_DATA_VOLUME=volume),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        broker.start()
        broker.create_topics("listings", partitions=args.partitions)
        from support import free_port
        port = free_port()
        main_app = f"http://127.0.0.1:{port}"
        receiver = subprocess.Popen([sys.executable, str(REPO / "tests/mainapp_receiver.py"),
                                     "--port", str(port), "--secret", SECRET], env=env_for(),
                                    stdout=open(work / "receiver.log", "wb"), stderr=subprocess.STDOUT)
        procs.append(receiver)
        wait(lambda: _answers(main_app), 20, "the receiver")
        consumer_log = work / "consumer.log"
        consumer = subprocess.Popen(
            [sys.executable, "-m", "cerebro", "consume", "listings"], cwd=REPO,
            env=env_for(CEREBRO_DATA_VOLUME=volume, CEREBRO_MODULES="vigilante",
                        CEREBRO_KAFKA_BOOTSTRAP=broker.bootstrap,
                        CEREBRO_KAFKA_GROUP=fresh_name("bench"),
                        CEREBRO_KAFKA_SESSION_TIMEOUT_MS=6000, CEREBRO_KAFKA_HEARTBEAT_MS=1000,
                        CEREBRO_KAFKA_MAX_POLL_RECORDS=args.max_poll_records,
                        CEREBRO_CONSUMER_CONCURRENCY=args.concurrency,
                        CEREBRO_MAIN_APP_URL=main_app, CEREBRO_CALLBACK_SECRET=SECRET,
                        SHERLOCK_DIR=work / "sherlock"),
            stdout=open(consumer_log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(consumer)
        wait(lambda: "partitions assigned: listings" in consumer_log.read_text(errors="replace"),
             60, "the consumer to join its group")
        print(f"generating {args.events:,} listing events ...", flush=True)
        payloads = listing_events(args.events)

        producer = broker.producer(acks=1, linger_ms=20, batch_size=256 * 1024)
        t0 = time.monotonic()
        for value in payloads:
            producer.send("listings", value=value)
        producer.flush(120)
        produced = time.monotonic() - t0
        producer.close()
        first = wait(lambda: stats(main_app)["calls"] > 0 and time.monotonic(), args.timeout,
                     "the first main-app call", 0.01)
        last_count, last_change = 0, time.monotonic()
        while True:
            now_stats = stats(main_app)
            if now_stats["unique"] >= args.events:
                done = time.monotonic()
                break
            if now_stats["calls"] != last_count:
                last_count, last_change = now_stats["calls"], time.monotonic()
            elif time.monotonic() - last_change > 30:
                raise SystemExit(f"stalled at {last_count} calls; see {consumer_log}")
            if time.monotonic() - t0 > args.timeout:
                raise SystemExit(f"only {now_stats['unique']} of {args.events} after {args.timeout}s")
            time.sleep(0.02)
        final = stats(main_app)
        end_to_end = args.events / (done - t0)
        consumer_rate = args.events / (done - first)
        print(f"produced {args.events:,} events in {produced:.2f}s ({args.events / produced:,.0f}/s)")
        print(f"main-app calls: {final['calls']:,} ({final['unique']:,} unique, "
              f"{final['duplicates']} duplicates, {final['signature_errors']} bad signatures), "
              f"by status {final['by_status']}")
        print(f"end to end (first produce -> last main-app call): {done - t0:.2f}s = "
              f"{end_to_end:,.0f} events/s")
        print(f"consumer (first -> last main-app call):            {done - first:.2f}s = "
              f"{consumer_rate:,.0f} events/s")
        verdict = "MEETS" if end_to_end >= TARGET else "BELOW"
        print(f"target {TARGET:,} events/s on one consumer process: {verdict} "
              f"({end_to_end / TARGET:.0%} of target end to end)")
        _cpu_report(procs, broker)
        return 0
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM) if proc is procs[-1] else proc.terminate()
                    proc.wait(20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    proc.kill()
        broker.stop()
        if args.keep:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _answers(url):
    """True once the receiver answers."""
    try:
        stats(url)
        return True
    except OSError:
        return False


def _cpu_report(procs, broker):
    """CPU seconds used so far by the receiver, the consumer and the broker (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {"receiver": procs[0].pid, "consumer": procs[1].pid}
    if broker.proc is not None:
        names["tansu"] = broker.proc.pid
    parts = []
    for name, pid in names.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            parts.append(f"{name} {(int(fields[11]) + int(fields[12])) / tick:.1f}s")
        except (OSError, IndexError, ValueError):
            continue
    print("CPU used: " + ", ".join(parts) + f" (on {os.cpu_count()} cores)")


if __name__ == "__main__":
    raise SystemExit(main())
