"""Fixtures of the async-path tests: real RabbitMQ, Redis, worker processes and a callback
receiver."""

import os
import signal
import subprocess
import sys
import time

import pytest

from rabbit import (celery_shared_topology, private_rabbit, queue_prefix,  # noqa: F401 (fixtures)
                    rabbit_url, redis_url)
from receiver import Receiver
from support import REPO, TESTS, cerebro_env, free_port

SECRET = "test-callback-secret"


@pytest.fixture
def receiver():
    """A signed-callback receiver standing in for the main app."""
    rec = Receiver(SECRET)
    yield rec
    rec.stop()


@pytest.fixture
def async_env(rabbit_url, redis_url, tmp_path, request, celery_shared_topology):  # noqa: F811
    """Environment of API and worker processes for one test: its own queues and volume (both
    removed afterwards, with the exchanges of the same names)."""
    prefix = f"cerebro-test-{request.node.name[:30]}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    env = {
        # the repository first: tests/sherlock would otherwise shadow the sherlock package
        "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]),
        "CEREBRO_MODULES_PACKAGE": "fixture_modules",
        "CEREBRO_MODULES": "jobs",
        "CEREBRO_BROKER_URL": rabbit_url,
        "CEREBRO_RESULT_BACKEND": redis_url,
        "CEREBRO_QUEUE_PREFIX": prefix,
        "CEREBRO_CALLBACK_SECRET": SECRET,
        "CEREBRO_MAIN_APP_URL": f"http://127.0.0.1:{free_port()}",
        "CEREBRO_CALLBACK_RETRY_WINDOW": "30",
        "CEREBRO_CALLBACK_BACKOFF": "0.2",
        "CEREBRO_CALLBACK_BACKOFF_MAX": "1",
        "CEREBRO_CALLBACK_TIMEOUT": "2",
        "CEREBRO_DATA_VOLUME": str(tmp_path / "volume"),
        "SHERLOCK_DIR": str(tmp_path / "sherlock"),
        "CEREBRO_RELOAD_INTERVAL": "0.5",
    }
    yield env
    _delete_queues(rabbit_url, [f"{prefix}.{m}" for m in ("jobs", "listing_enrichment", "default")])


def _delete_queues(url, names):
    """Remove a test's durable queues and their exchanges from the (possibly shared) broker."""
    from cerebro.taskqueue.topology import delete
    try:
        delete(url, names, names)
    except OSError:
        pass  # the broker is gone (private node already stopped): nothing left to clean


class Worker:
    """A real `cerebro worker` process (its own process group)."""

    def __init__(self, env, log_path, concurrency=1, queues=""):
        self.env = cerebro_env(**env)
        self.log_path = log_path
        self.args = [sys.executable, "-m", "cerebro", "worker", "--concurrency", str(concurrency),
                     "--loglevel", "INFO"] + (["--queues", queues] if queues else [])
        self.proc = None

    def start(self, timeout=60):
        """Start and wait for Celery's "ready." line."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        out = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}: "
                                   f"{self.log()[-3000:]}")
            if " ready." in self.log()[offset:]:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready after {timeout}s: {self.log()[-3000:]}")

    def log(self):
        """The worker's log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self):
        """SIGKILL the whole worker (main process and pool children)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        """Warm shutdown (SIGTERM), then SIGKILL if it lingers."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def worker_factory(tmp_path):
    """Start real workers; all are stopped at teardown."""
    workers = []

    def start(env, concurrency=1, queues="", wait=True):
        """Start one worker with ``env``."""
        worker = Worker(env, tmp_path / f"worker-{len(workers)}.log", concurrency, queues)
        workers.append(worker)
        return worker.start() if wait else worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate, timeout=30, interval=0.1, what="condition"):
    """Poll ``predicate`` until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met in {timeout}s")
