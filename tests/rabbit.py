"""Real RabbitMQ (and Redis) for tests: the machine's node when reachable, else a private one.

A private node gets its own node name, ports, epmd, Erlang cookie and data directory, so it never
touches the shared node; stopping and restarting it (same data directory) is how the "broker down"
tests take RabbitMQ away without disturbing anything else.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from support import free_port

RABBIT_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBIT_CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
SHARED_URL = "amqp://guest:guest@127.0.0.1:5672//"
SHARED_REDIS = "redis://127.0.0.1:6379/0"


def reachable(host, port, timeout=0.5):
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class RabbitNode:
    """A private RabbitMQ node on free ports with its own data directory."""

    def __init__(self, base_dir):
        if not Path(RABBIT_SERVER).exists():
            pytest.skip("no RabbitMQ reachable on 127.0.0.1:5672 and rabbitmq-server is not "
                        "installed (run scripts/ensure-rabbitmq.sh)")
        self.dir = Path(base_dir)
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.name = f"cerebro-test-{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.proc = None
        self.epmd = None
        home = self.dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
        (self.dir / "rabbitmq.conf").write_text("loopback_users = none\n")
        (self.dir / "enabled_plugins").write_text("[].\n")
        erl_args = "-kernel inet_dist_use_interface {127,0,0,1}"
        ctl_min = free_port()
        self.env = dict(os.environ, HOME=str(home), RABBITMQ_NODENAME=self.name,
                        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1", RABBITMQ_NODE_PORT=str(self.port),
                        RABBITMQ_DIST_PORT=str(self.dist_port), ERL_EPMD_PORT=str(self.epmd_port),
                        ERL_EPMD_ADDRESS="127.0.0.1",
                        RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"),
                        RABBITMQ_LOG_BASE=str(self.dir / "log"),
                        RABBITMQ_CONFIG_FILE=str(self.dir / "rabbitmq.conf"),
                        RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "enabled_plugins"),
                        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=erl_args,
                        RABBITMQ_CTL_ERL_ARGS=erl_args,
                        RABBITMQ_CTL_DIST_PORT_MIN=str(ctl_min),
                        RABBITMQ_CTL_DIST_PORT_MAX=str(ctl_min + 10))

    def start(self, timeout=60):
        """Start epmd (once) and the node; wait until it accepts AMQP connections."""
        if self.epmd is None:
            self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port), "-address",
                                          "127.0.0.1"], env=self.env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        log = open(self.dir / "server.out", "ab")
        self.proc = subprocess.Popen([RABBIT_SERVER], env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"private RabbitMQ exited with {self.proc.returncode}; "
                                   f"see {self.dir / 'server.out'}")
            if reachable("127.0.0.1", self.port):
                time.sleep(0.5)  # the listener opens a moment before the node accepts logins
                return self
            time.sleep(0.2)
        raise RuntimeError(f"private RabbitMQ not listening on {self.port} after {timeout}s")

    def stop(self, timeout=30):
        """Stop the node (SIGTERM, then SIGKILL); its data directory is kept for a restart."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        deadline = time.monotonic() + 10
        while reachable("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def close(self):
        """Stop the node and its epmd, and remove the data directory."""
        self.stop()
        if self.epmd and self.epmd.poll() is None:
            os.killpg(self.epmd.pid, signal.SIGTERM)
            self.epmd.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisNode:
    """A private, memory-only Redis on a free port."""

    def __init__(self, base_dir):
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("no Redis reachable on 127.0.0.1:6379 and redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(base_dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while not reachable("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise RuntimeError("private Redis did not start")
            time.sleep(0.05)

    def close(self):
        """Stop Redis."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="session")
def rabbit_url(tmp_path_factory):
    """A reachable RabbitMQ: the machine's node on 127.0.0.1:5672, else a private node."""
    if reachable("127.0.0.1", 5672):
        yield SHARED_URL
        return
    node = RabbitNode(tmp_path_factory.mktemp("rabbit")).start()
    yield node.url
    node.close()


@pytest.fixture
def private_rabbit(tmp_path_factory):
    """A private RabbitMQ node this test may stop and restart at will."""
    node = RabbitNode(tmp_path_factory.mktemp("rabbit-private")).start()
    yield node
    node.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A reachable Redis for Celery results: 127.0.0.1:6379 when up, else a private one."""
    if reachable("127.0.0.1", 6379):
        yield SHARED_REDIS
        return
    node = RedisNode(tmp_path_factory.mktemp("redis"))
    yield node.url
    node.close()


@pytest.fixture(scope="session")
def celery_shared_topology(rabbit_url):
    """Celery's shared objects (event and pidbox exchanges, the native delayed-delivery queues and
    exchanges) that this session's workers create on the broker are removed at its end; those
    that existed before are left alone."""
    if rabbit_url == SHARED_URL and os.environ.get("PYTEST_XDIST_WORKER"):
        # one of several test processes: the others' workers may still use these objects,
        # so the controller snapshots and restores them around the whole run (conftest.py)
        yield None
        return
    from cerebro.taskqueue.topology import SharedSnapshot
    snapshot = SharedSnapshot(rabbit_url)
    yield snapshot
    snapshot.restore()


@pytest.fixture(scope="session")
def queue_prefix():
    """A queue prefix unique to this test session, so runs never share queues."""
    return f"cerebro-test-{uuid.uuid4().hex[:8]}"
