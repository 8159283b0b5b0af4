"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Kafka consumer throughput, end to end: produce -> consume -> vigilante -> main-app call.
Tagline: Count the letters through the whole post office, not just the sorting desk.

Starts a real broker (tansu), a real main-app receiver (tests/mainapp_receiver.py,
asyncio, verifying every signature and counting idempotency keys) and one (or
``--consumers N``) ``cerebro consume`` processes in one group serving
``vigilante``; waits until they have joined, then produces N listing events as
fast as kafka-python can and measures until the receiver has seen every
event's call. Prints events per second end to end (first produce to last
main-app call) and for the consumers alone (first to last main-app call),
compares them with the 5,000 events/s target, and says where the CPU went:
CPU seconds and microseconds per event of every process during the run and,
with ``--profile``, a py-spy profile of the (first) consumer by stage::

    .venv/bin/python bench/kafka_throughput.py --events 50000
    .venv/bin/python bench/kafka_throughput.py --events 50000 --consumers 2
    .venv/bin/python bench/kafka_throughput.py --events 50000 --profile
    .venv/bin/python bench/kafka_throughput.py --baseline-tree /tmp/before  # vs an older commit
"""

import argparse
import json
import os
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

from common import report_py_spy, start_py_spy  # noqa: E402
from kafka_broker import KafkaBroker, fresh_name  # noqa: E402

TARGET = 5000
SECRET = "bench-secret"


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000, help="events to produce per round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of --events each (the median round is the result)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of `listings`")
    parser.add_argument("--consumers", type=int, default=1,
                        help="consumer processes in the group")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="consumer handler threads (CEREBRO_CONSUMER_CONCURRENCY)")
    parser.add_argument("--connections", type=int, default=None,
                        help="main-app connections per consumer "
                             "(CEREBRO_CONSUMER_HTTP_CONNECTIONS)")
    parser.add_argument("--pipeline", type=int, default=None,
                        help="calls pipelined per connection (CEREBRO_CONSUMER_HTTP_PIPELINE)")
    parser.add_argument("--profile", action="store_true",
                        help="profile the first consumer with py-spy (pip install py-spy)")
    parser.add_argument("--max-poll-records", type=int, default=1000,
                        help="batch size (CEREBRO_KAFKA_MAX_POLL_RECORDS)")
    parser.add_argument("--timeout", type=float, default=300,
                        help="give up after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work folder with the logs")
    parser.add_argument("--baseline-tree", default=None,
                        help="a source tree of an earlier commit (git worktree): its consumer "
                             "runs the same rounds, interleaved, on a broker of its own, and "
                             "the ratio of the medians is printed")
    return parser.parse_args()


def env_for(**extra):
    """The environment of a child process: the tests folder importable, one BLAS thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"),
                                         env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
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


class Contender:
    """One consumer setup under test: its broker, main-app receiver and consumer processes,
    running the ``cerebro`` of one source tree (this one, or an earlier commit's)."""

    def __init__(self, name, tree, work, volume, args):
        self.name = name
        self.tree = tree
        self.work = work / name
        self.work.mkdir(parents=True)
        self.args = args
        self.broker = KafkaBroker(log_path=self.work / "tansu.log")
        self.procs = []
        self.volume = volume
        self.main_app = None
        self.logs = []
        self.producer = None

    def start(self):
        """Broker, receiver and consumers up; returns once the consumers share the partitions."""
        from support import free_port
        args = self.args
        self.broker.start()
        self.broker.create_topics("listings", partitions=args.partitions)
        port = free_port()
        self.main_app = f"http://127.0.0.1:{port}"
        self.procs.append(subprocess.Popen(
            [sys.executable, str(REPO / "tests/mainapp_receiver.py"), "--port", str(port),
             "--secret", SECRET], env=env_for(), stdout=open(self.work / "receiver.log", "wb"),
            stderr=subprocess.STDOUT))
        wait(lambda: _answers(self.main_app), 20, "the receiver")
        group = fresh_name("bench")
        extra = {}
        if args.connections:
            extra["CEREBRO_CONSUMER_HTTP_CONNECTIONS"] = args.connections
        if args.pipeline:
            extra["CEREBRO_CONSUMER_HTTP_PIPELINE"] = args.pipeline
        if self.tree != REPO:  # the earlier commit's packages first
            extra["PYTHONPATH"] = os.pathsep.join([str(self.tree), str(REPO / "tests")])
        for index in range(args.consumers):
            self.logs.append(self.work / f"consumer-{index}.log")
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "cerebro", "consume", "listings"], cwd=self.tree,
                env=env_for(CEREBRO_DATA_VOLUME=self.volume, CEREBRO_MODULES="vigilante",
                            CEREBRO_KAFKA_BOOTSTRAP=self.broker.bootstrap,
                            CEREBRO_KAFKA_GROUP=group,
                            CEREBRO_KAFKA_SESSION_TIMEOUT_MS=6000, CEREBRO_KAFKA_HEARTBEAT_MS=1000,
                            CEREBRO_KAFKA_MAX_POLL_RECORDS=args.max_poll_records,
                            CEREBRO_CONSUMER_CONCURRENCY=args.concurrency,
                            CEREBRO_MAIN_APP_URL=self.main_app, CEREBRO_CALLBACK_SECRET=SECRET,
                            SHERLOCK_DIR=self.work / "sherlock", **extra),
                stdout=open(self.logs[-1], "wb"), stderr=subprocess.STDOUT,
                start_new_session=True))
        wait(lambda: _settled(self.logs, args.partitions), 90,
             f"the {self.name} consumers to share the partitions")
        self.producer = self.broker.producer(acks=1, linger_ms=20, batch_size=256 * 1024)
        return self

    def round(self, index, payloads):
        """One measured round of ``payloads``; returns events per second end to end."""
        print(f"[{self.name}] ", end="")
        return _round(index, payloads, self.producer, self.main_app, self.procs, self.broker,
                      self.args, self.logs[0])

    def report(self):
        """The receiver's final counters."""
        final = stats(self.main_app)
        print(f"[{self.name}] main-app calls: {final['calls']:,} ({final['unique']:,} unique, "
              f"{final['duplicates']} duplicates, {final['signature_errors']} bad signatures), "
              f"by status {final['by_status']}")

    def stop(self):
        """Stop every process of this contender."""
        if self.producer is not None:
            self.producer.close()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    if proc is not self.procs[0]:
                        os.killpg(proc.pid, signal.SIGTERM)
                    else:
                        proc.terminate()
                    proc.wait(20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    proc.kill()
        self.broker.stop()


def main():
    """Run the benchmark and print the result."""
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="cerebro-kafka-bench-"))
    volume = work / "volume"
    contenders = [Contender("current", REPO, work, volume, args)]
    if args.baseline_tree:
        contenders.append(Contender("baseline", Path(args.baseline_tree).resolve(), work,
                                    volume, args))
    try:
        subprocess.run([sys.executable, str(REPO / "modules/vigilante/src/build.py"),
                        "--rows", "8000"],
                       check=True, env=env_for(CEREBRO_DATA_VOLUME=volume),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for contender in contenders:
            contender.start()
        total = args.events * args.rounds
        print(f"generating {total:,} listing events ...", flush=True)
        payloads = listing_events(total)
        first = contenders[0]
        profiler = _start_profiler(first.procs[1].pid, work) if args.profile else None
        where = "one consumer process" if args.consumers == 1 else \
            f"{args.consumers} consumer processes"
        rates = {contender.name: [] for contender in contenders}
        for index in range(args.rounds):
            chunk = payloads[index * args.events:(index + 1) * args.events]
            for contender in contenders:  # interleaved: noise hits both alike
                rates[contender.name].append(contender.round(index, chunk))
        for contender in contenders:
            contender.report()
        medians = {}
        for name, runs in rates.items():
            best, median = max(runs), sorted(runs)[len(runs) // 2]
            medians[name] = median
            verdict = "MEETS" if median >= TARGET else "BELOW"
            print(f"[{name}] end to end over {args.rounds} round(s) of {args.events:,} events on "
                  f"{where}: median {median:,.0f} events/s (best {best:,.0f}); target "
                  f"{TARGET:,}/s: {verdict} ({median / TARGET:.0%} of target)")
        if "baseline" in medians:
            print(f"current / baseline (medians): {medians['current'] / medians['baseline']:.3f}")
        if profiler is not None:
            _profile_report(profiler, work)
        return 0
    finally:
        for contender in contenders:
            contender.stop()
        if args.keep:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _round(index, payloads, producer, main_app, procs, broker, args, consumer_log):
    """Produce one round of events while the consumers run; wait for every main-app call;
    print and return the end-to-end rate (first produce to last main-app call)."""
    events = len(payloads)
    expected = stats(main_app)["unique"] + events
    cpu_before = _cpu(procs, broker)
    t0 = time.monotonic()
    for value in payloads:
        producer.send("listings", value=value)
    producer.flush(120)
    produced = time.monotonic() - t0
    backlog = expected - stats(main_app)["unique"]
    last_count, last_change = 0, time.monotonic()
    while True:
        now_stats = stats(main_app)
        if now_stats["unique"] >= expected:
            done = time.monotonic()
            break
        if now_stats["calls"] != last_count:
            last_count, last_change = now_stats["calls"], time.monotonic()
        elif time.monotonic() - last_change > 30:
            raise SystemExit(f"stalled at {last_count} calls; see {consumer_log}")
        if time.monotonic() - t0 > args.timeout:
            raise SystemExit(f"only {now_stats['unique']} of {expected} after {args.timeout}s")
        time.sleep(0.01)
    cpu_after = _cpu(procs, broker)
    rate = events / (done - t0)
    drain = backlog / max(done - t0 - produced, 1e-9)
    print(f"round {index + 1}: produced {events:,} in {produced:.2f}s "
          f"({events / produced:,.0f}/s); "
          f"end to end {done - t0:.2f}s = {rate:,.0f} events/s; backlog of {backlog:,} left at "
          f"the last produce drained at {drain:,.0f} events/s")
    _cpu_report(cpu_before, cpu_after, done - t0, events)
    return rate


def _answers(url):
    """True once the receiver answers."""
    try:
        stats(url)
        return True
    except OSError:
        return False


def _settled(logs, partitions):
    """True once every consumer's last assignment is non-empty and together they cover every
    partition of ``listings`` exactly once."""
    seen = []
    for log in logs:
        lines = [line for line in log.read_text(errors="replace").splitlines()
                 if "partitions assigned:" in line]
        if not lines:
            return False
        names = lines[-1].split("partitions assigned:", 1)[1].strip()
        seen.append(set() if names == "none" else {n.strip() for n in names.split(",")})
    return all(seen) and sum(map(len, seen)) == partitions and len(set().union(*seen)) == partitions


def _cpu(procs, broker):
    """CPU seconds used so far by every process of the run, by name (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {"receiver": procs[0].pid}
    names.update({f"consumer-{i}" if len(procs) > 2 else "consumer": p.pid
                  for i, p in enumerate(procs[1:])})
    if broker.proc is not None:
        names["tansu"] = broker.proc.pid
    names["bench (producer)"] = os.getpid()
    used = {}
    for name, pid in names.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used[name] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return used


def _cpu_report(before, after, seconds, events):
    """Print the CPU each process used during the run, per event and as cores busy."""
    parts = []
    for name, end in after.items():
        spent = end - before.get(name, 0.0)
        parts.append(f"{name} {spent:.1f}s ({spent / events * 1e6:.0f} us/event, "
                     f"{spent / seconds:.0%} of a core)")
    print(f"  CPU ({os.cpu_count()} cores): " + ", ".join(parts))


#: Profile stages: the first rule matching a frame of a sample's stack names its stage.
STAGES = (
    ("model (vigilante.screen)", ("modules/vigilante/",)),
    ("validation (schema)", ("cerebro/schema.py",)),
    ("JSON decode + routing", ("cerebro/consumer/router.py",)),
    ("outcome bodies (JSON)", ("note (cerebro/consumer/notify.py",)),
    ("main-app calls (MainAppClient, asyncio)", ("cerebro/clients/http.py", "asyncio/")),
    ("kafka-python (fetch, records, commit)", ("kafka/",)),
    ("dispatch/processor glue", ("cerebro/",)),
)


def _start_profiler(pid, work):
    """py-spy sampling the consumer (see :func:`common.start_py_spy`)."""
    return start_py_spy(pid, work / "profile.txt")


def _profile_report(profiler, work):
    """Stop py-spy; print the consumer's samples by stage and its top functions."""
    report_py_spy(profiler, work / "profile.txt", STAGES, "consumer profile")


if __name__ == "__main__":
    raise SystemExit(main())
