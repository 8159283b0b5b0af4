"""The shipped supervisord.conf brought up by `cerebro up` on test ports with a temporary volume:
every program really ready, one smoke through every path (sync REST, async + callback, Kafka event
+ main-app call, an exception reaching Sherlock's file), the worker killed and restarted by
Supervisor then the smoke again, `cerebro status`, and a clean `cerebro down` leaving no process.

One bring-up for the whole module (tests run in file order and share it).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from procs import wait_for
from support import REPO, TESTS, cerebro_env, free_port, http

SECRET = "e2e-callback-secret"
CEREBRO = [sys.executable, "-m", "cerebro"]


class Amenities:
    """A real amenities service for listing_enrichment; latitude 0 gets a broken answer ({})."""

    def __init__(self):
        from modules.listing_enrichment.src.utilities import neighbourhood

        class Handler(BaseHTTPRequestHandler):
            """GET /amenities?lat=&lon=."""

            def do_GET(self):
                """Answer the deterministic neighbourhood (or {} for latitude 0)."""
                query = parse_qs(urlsplit(self.path).query)
                lat, lon = float(query["lat"][0]), float(query["lon"][0])
                data = json.dumps({} if lat == 0 else neighbourhood(lat, lon)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def _descendants(pid):
    """Every process below ``pid`` (from /proc)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid):
    """True when ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Stack:
    """Everything one bring-up needs: ports, directories, environment, helpers."""

    def __init__(self, tmp, volume):
        self.tmp = tmp
        self.state = tmp / "state"
        self.sherlock = tmp / "sherlock"
        self.amenities = Amenities()
        self.main_port = free_port()
        self.kafka = f"127.0.0.1:{free_port()}"
        self.env = cerebro_env(
            PYTHONPATH=str(REPO), CEREBRO_DATA_VOLUME=volume, CEREBRO_STATE_DIR=self.state,
            CEREBRO_LOG_DIR=tmp / "logs", SHERLOCK_DIR=self.sherlock,
            CEREBRO_PORT=free_port(), CEREBRO_PROCESSES=1, CEREBRO_WORKER_CONCURRENCY=1,
            CEREBRO_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}//",
            CEREBRO_RABBITMQ_DIST_PORT=free_port(), CEREBRO_EPMD_PORT=free_port(),
            CEREBRO_RABBITMQ_MANAGEMENT_PORT=free_port(),
            CEREBRO_RESULT_BACKEND=f"redis://127.0.0.1:{free_port()}/0",
            CEREBRO_KAFKA_BOOTSTRAP=self.kafka, CEREBRO_KAFKA_GROUP=f"e2e-{uuid.uuid4().hex[:6]}",
            CEREBRO_KAFKA_SESSION_TIMEOUT_MS=2000, CEREBRO_KAFKA_HEARTBEAT_MS=500,
            CEREBRO_SUPERVISOR_PORT=free_port(), CEREBRO_FLOWER_PORT=free_port(),
            CEREBRO_CALLBACK_SECRET=SECRET,
            CEREBRO_MAIN_APP_URL=f"http://127.0.0.1:{self.main_port}",
            CEREBRO_CALLBACK_BACKOFF=0.2, CEREBRO_RELOAD_INTERVAL=0.5,
            LISTING_ENRICHMENT_AMENITIES_URL=self.amenities.url)
        for var in ("CEREBRO_FLOWER_PASSWORD", "CEREBRO_SUPERVISOR_PASSWORD", "CEREBRO_MODULES",
                    "CEREBRO_PROGRAMS"):
            self.env.pop(var, None)
        self.api = f"http://127.0.0.1:{self.env['CEREBRO_PORT']}"
        self.receiver = subprocess.Popen(
            [sys.executable, str(TESTS / "mainapp_receiver.py"), "--port", str(self.main_port),
             "--secret", SECRET], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_for(lambda: http("GET", f"http://127.0.0.1:{self.main_port}/stats")[0] == 200
                 if self._port_open(self.main_port) else False, 10, what="main-app receiver")

    @staticmethod
    def _port_open(port):
        """True when 127.0.0.1:port accepts connections."""
        import socket
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def cerebro(self, *args, timeout=240):
        """Run a `cerebro` command with the stack's environment."""
        return subprocess.run([*CEREBRO, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=self.tmp)

    def supervisor(self):
        """supervisord's XML-RPC proxy (over its unix socket)."""
        from cerebro.ops.supervise import Supervisor
        from cerebro.settings import load_settings
        return Supervisor(load_settings(self.env))

    def calls(self):
        """``{idempotency key: [count, status, path]}`` seen by the main app."""
        return http("GET", f"http://127.0.0.1:{self.main_port}/stats?keys=1")[2]["keys"]

    def sherlock_records(self):
        """Every record in Sherlock's exception file."""
        path = self.sherlock / "sherlock.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def close(self):
        """Stop the helpers (the stack itself is stopped by the tests / the fixture)."""
        self.amenities.stop()
        os.killpg(self.receiver.pid, signal.SIGTERM)
        self.receiver.wait(10)


@pytest.fixture(scope="module")
def stack(built_volume, tmp_path_factory):
    """`cerebro up` on test ports; torn down with `cerebro down` (and a hard stop if needed)."""
    tmp = tmp_path_factory.mktemp("ops-e2e")
    volume = tmp / "volume"
    shutil.copytree(built_volume, volume)
    stack = Stack(tmp, volume)
    started = time.monotonic()
    result = stack.cerebro("up", "--no-build", "--timeout", "150")
    stack.up_seconds = time.monotonic() - started
    print(f"\ncerebro up: ready in {stack.up_seconds:.1f}s\n{result.stdout}")
    try:
        assert result.returncode == 0, f"cerebro up failed:\n{result.stdout}\n{result.stderr}"
        yield stack
    finally:
        sup = stack.supervisor()
        pid = sup.pid()
        if pid and _alive(pid):  # a failed test left it running: stop it, then make sure
            below = _descendants(pid)
            stack.cerebro("down")
            for leftover in [p for p in below | {pid} if _alive(p)]:
                os.kill(leftover, signal.SIGKILL)
        stack.close()


def smoke(stack):
    """One pass through every path at once; returns what it sent."""
    tag = uuid.uuid4().hex[:8]
    from kafka import KafkaProducer
    modules = http("GET", stack.api + "/v1/modules")[2]["modules"]
    examples = {(m["name"], f["name"]): f["example"] for m in modules for f in m["functions"]}

    # 1. sync REST call
    status, _, body = http("POST", stack.api + "/v1/rent_predictor/predict",
                           examples[("rent_predictor", "predict")])
    assert status == 200 and body["rent"] > 0 and body["model_version"], body

    # 2. async call: 202, then the signed callback reaches the main app
    listing = dict(examples[("listing_enrichment", "enrich")], listing_id=f"L-{tag}")
    status, _, accepted = http("POST", stack.api + "/v1/listing_enrichment/enrich", listing)
    assert status == 202, accepted
    ok_task = accepted["task_id"]

    # 3. an exception: the amenities service answers garbage, the task fails and Sherlock has it
    status, _, accepted = http("POST", stack.api + "/v1/listing_enrichment/enrich",
                               dict(listing, latitude=0.0))
    assert status == 202, accepted
    bad_task = accepted["task_id"]

    # 4. a Kafka event: vigilante screens it and the consumer calls the main app
    event_id = f"ev-{tag}"
    event = dict(examples[("vigilante", "screen")], event_id=event_id)
    producer = KafkaProducer(bootstrap_servers=stack.kafka)
    producer.send("listings", json.dumps(event).encode()).get(timeout=10)
    producer.close()

    calls = wait_for(lambda: (lambda c: c if {ok_task, bad_task, event_id} <= set(c) else None)(
        stack.calls()), 60, what="callbacks and the event's main-app call")
    assert calls[ok_task][1] == "succeeded" and "/cerebro/callbacks/listing_enrichment/enrich" \
        in calls[ok_task][2]
    assert calls[bad_task][1] == "failed"
    assert calls[event_id][1] == "ok" and calls[event_id][2] == "/cerebro/events/vigilante/screen"
    record = wait_for(lambda: [r for r in stack.sherlock_records() if r.get("task_id") == bad_task],
                      20, what="the task's exception in Sherlock's file")[0]
    assert record["type"] == "KeyError" and record["service"] == "worker"
    assert record["module"] == "listing_enrichment"
    return tag


def test_every_program_is_running_and_ready(stack):
    """After `cerebro up` every program supervisord was told to start is RUNNING."""
    infos = stack.supervisor().processes()
    expected = {"epmd", "rabbitmq", "redis", "kafka", "api", "worker", "beat", "flower",
                "consumer", "subscriber"}
    assert {n for n, i in infos.items() if i["statename"] == "RUNNING"} == expected
    assert infos["bootstrap"]["statename"] == "EXITED" and infos["bootstrap"]["exitstatus"] == 0
    assert stack.up_seconds < 150
    assert http("GET", stack.api + "/readyz")[0] == 200


def test_smoke_through_every_path(stack):
    """Sync REST, async + callback, Kafka event + main-app call, exception -> Sherlock."""
    smoke(stack)


def test_killed_worker_is_restarted_and_smoke_passes_again(stack):
    """kill -9 of the worker: Supervisor starts a new one; everything works again."""
    sup = stack.supervisor()
    old = sup.processes()["worker"]["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: (lambda i: i["statename"] == "RUNNING" and i["pid"] not in (0, old))(
        sup.processes()["worker"]), 30, what="the worker restarted")
    result = stack.cerebro("up", "--no-build", "--timeout", "60")   # waits for readiness again
    assert result.returncode == 0, result.stdout + result.stderr
    assert "already running" in result.stdout
    smoke(stack)


def test_status_shows_everything(stack):
    """`cerebro status --json`: programs, modules with versions, queues, Kafka group, Sherlock."""
    result = stack.cerebro("status", "--json", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["healthy"] and not report["errors"]
    assert {p["name"] for p in report["programs"] if p["state"] == "RUNNING"} >= {"api", "worker"}
    assert {m["name"] for m in report["modules"] if m["ready"] and m["models"]} == \
        {"listing_enrichment", "locality_score", "rent_predictor", "vigilante"}
    assert any(q["queue"].endswith(".listing_enrichment") and q["consumers"] >= 1
               for q in report["queues"])
    assert report["kafka"]["topics"] == ["listings"] and report["kafka"]["total_lag"] == 0
    assert report["sherlock"]["exceptions"] >= 2
    text = stack.cerebro("status", timeout=60).stdout
    assert "Programs (supervisord):" in text and "Kafka group" in text and "Sherlock:" in text


def test_down_stops_everything_and_leaves_no_process(stack):
    """`cerebro down`: supervisord and every process it started (children included) are gone."""
    pid = stack.supervisor().pid()
    below = _descendants(pid)
    assert len(below) >= 10
    result = stack.cerebro("down", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    left = [p for p in below | {pid} if _alive(p)]
    assert not left, [Path(f"/proc/{p}/cmdline").read_bytes() for p in left]
    assert not stack.supervisor().alive()
