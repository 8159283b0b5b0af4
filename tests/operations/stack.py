"""A whole Cerebro stack brought up by `cerebro up` on test ports, for the end-to-end and chaos
tests: a private RabbitMQ, Redis, Kafka (tansu), supervisord and every program, a temporary data
volume, and a main app (the test's own receiver and amenities service, or Cerebro's main-app
simulator under supervisord)."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from procs import wait_for
from support import REPO, TESTS, AmenitiesServer, cerebro_env, free_port, http

SECRET = "e2e-callback-secret"
CEREBRO = [sys.executable, "-m", "cerebro"]


def descendants(pid):
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


def alive(pid):
    """True when ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def port_open(port):
    """True when 127.0.0.1:port accepts connections."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Stack:
    """Everything one bring-up needs: ports, directories, environment, helpers.

    With ``simulator`` the main app is Cerebro's simulator, run by supervisord
    (it also serves the amenities); otherwise the test's own receiver
    (``tests/mainapp_receiver.py``) and :class:`Amenities`. ``env`` overrides.
    """

    def __init__(self, tmp, volume, simulator=False, **env):
        self.tmp = tmp
        self.state = tmp / "state"
        self.sherlock = tmp / "sherlock"
        self.simulator = simulator
        self.amenities = None if simulator else AmenitiesServer(broken_at_zero=True)
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
            CEREBRO_RUN_SIMULATOR="true" if simulator else "false")
        if not simulator:
            self.env["LISTING_ENRICHMENT_AMENITIES_URL"] = self.amenities.url
        for var in ("CEREBRO_FLOWER_PASSWORD", "CEREBRO_SUPERVISOR_PASSWORD", "CEREBRO_MODULES",
                    "CEREBRO_PROGRAMS", "LISTING_ENRICHMENT_AMENITIES_URL" if simulator else ""):
            self.env.pop(var, None)
        self.env.update({k: str(v) for k, v in env.items()})
        self.api = f"http://127.0.0.1:{self.env['CEREBRO_PORT']}"
        self.main_url = f"http://127.0.0.1:{self.main_port}"
        self.receiver = None
        self.up_seconds = None
        if not simulator:
            self.receiver = subprocess.Popen(
                [sys.executable, str(TESTS / "mainapp_receiver.py"), "--port",
                 str(self.main_port), "--secret", SECRET], stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT, start_new_session=True)
            wait_for(lambda: port_open(self.main_port)
                     and http("GET", self.main_url + "/stats")[0] == 200, 10,
                     what="main-app receiver")

    def cerebro(self, *args, timeout=240):
        """Run a `cerebro` command with the stack's environment."""
        return subprocess.run([*CEREBRO, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=self.tmp)

    def up(self, timeout=150):
        """`cerebro up --no-build`; fails the test when it does not get ready."""
        started = time.monotonic()
        result = self.cerebro("up", "--no-build", "--timeout", str(timeout))
        self.up_seconds = time.monotonic() - started
        print(f"\ncerebro up: ready in {self.up_seconds:.1f}s\n{result.stdout}")
        assert result.returncode == 0, f"cerebro up failed:\n{result.stdout}\n{result.stderr}"
        return result

    def supervisor(self):
        """supervisord's XML-RPC proxy (over its unix socket)."""
        from cerebro.ops.supervise import Supervisor
        from cerebro.settings import load_settings
        return Supervisor(load_settings(self.env))

    def calls(self):
        """``{idempotency key: [count, status, path]}`` seen by the test's receiver."""
        return http("GET", self.main_url + "/stats?keys=1")[2]["keys"]

    def received(self, keys=False):
        """What the simulator received (``GET /simulator/received``)."""
        return http("GET", self.main_url + "/simulator/received" + ("?keys=1" if keys else ""),
                    timeout=30)[2]

    def received_keys(self):
        """Every idempotency key the simulator received a well-signed call for."""
        return {key for keys in self.received(keys=True)["keys"].values() for key in keys}

    def reset_received(self):
        """Make the simulator count from zero."""
        assert http("POST", self.main_url + "/simulator/reset", {})[0] == 200

    def sherlock_records(self):
        """Every record in Sherlock's exception file."""
        path = self.sherlock / "sherlock.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def teardown(self):
        """Stop whatever a failed test left running (`cerebro down`, then SIGKILL), and the
        test's own helpers."""
        pid = self.supervisor().pid()
        if pid and alive(pid):
            below = descendants(pid)
            self.cerebro("down")
            for leftover in [p for p in below | {pid} if alive(p)]:
                os.kill(leftover, signal.SIGKILL)
        if self.amenities is not None:
            self.amenities.stop()
        if self.receiver is not None:
            os.killpg(self.receiver.pid, signal.SIGTERM)
            self.receiver.wait(10)


@contextlib.contextmanager
def running_stack(built_volume, tmp, simulator=False, **env):
    """A :class:`Stack` on a copy of ``built_volume``, up and ready; torn down after."""
    volume = tmp / "volume"
    shutil.copytree(built_volume, volume)
    stack = Stack(tmp, volume, simulator=simulator, **env)
    try:
        stack.up()
        yield stack
    finally:
        stack.teardown()
