"""Fixtures of the Kafka consumer tests: a real broker (a fresh tansu per test, or the external
broker CEREBRO_TEST_KAFKA_BOOTSTRAP names: see tests/kafka_broker.py), a real main-app
receiver, and real `cerebro consume` processes on a topic and group of the test's own."""

import json
import subprocess
import sys
import time
import urllib.request

import pytest

from kafka_broker import GROUP_SETTINGS, STATIC, fresh_name, test_broker
from support import TESTS, CerebroProcess, cerebro_env, free_port

SECRET = "kafka-tests-secret"


def wait_for(predicate, timeout, interval=0.2, message="condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


class Receiver:
    """The main-app stand-in (tests/mainapp_receiver.py) in its own process."""

    def __init__(self, log_path, secret=SECRET, fail_first=0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, str(TESTS / "mainapp_receiver.py"), "--port", str(self.port),
             "--secret", secret, "--fail-first", str(fail_first)],
            env=cerebro_env(), stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
        wait_for(self._up, 20, 0.05, "the receiver to listen")

    def _up(self):
        """True once /stats answers."""
        try:
            self.stats()
            return True
        except OSError:
            return False

    def stats(self, keys=False):
        """The receiver's counters (and every key when ``keys``)."""
        with urllib.request.urlopen(self.url + "/stats" + ("?keys=1" if keys else ""),
                                    timeout=5) as response:
            return json.loads(response.read())

    def stop(self):
        """Stop the process."""
        self.proc.terminate()
        self.proc.wait(10)


class Consumer(CerebroProcess):
    """One `cerebro consume` process."""

    def __init__(self, env, log_path):
        super().__init__("consume", env, log_path)

    def assigned(self):
        """The partitions of the last assignment logged."""
        lines = [line for line in self.log().splitlines() if "partitions assigned:" in line]
        if not lines:
            return None
        names = lines[-1].split("partitions assigned:", 1)[1].strip()
        return set() if names == "none" else {n.strip() for n in names.split(",")}


@pytest.fixture
def broker(tmp_path):
    """The test's broker: a fresh tansu on a free port (memory only: empty every test), or the
    external one (shared: tests use fresh topic and group names)."""
    kafka = test_broker(log_path=tmp_path / "tansu.log")
    yield kafka
    kafka.close()


@pytest.fixture
def topic():
    """The topic the fixture module ``events`` handles in this test (a fresh name)."""
    return fresh_name("events")


@pytest.fixture
def receiver(tmp_path):
    """A started main-app receiver."""
    started = []

    def start(**kwargs):
        """Start one receiver (``fail_first=N`` answers 503 to the first N calls)."""
        rec = Receiver(tmp_path / f"receiver-{len(started)}.log", **kwargs)
        started.append(rec)
        return rec

    yield start
    for rec in started:
        rec.stop()


@pytest.fixture
def consumers(tmp_path, broker, topic):
    """Start `cerebro consume` processes against ``broker`` handling ``topic``; all are killed
    at teardown."""
    started = []
    group = fresh_name("group")

    def start(main_app_url, **env):
        """Start one consumer in this test's group with ``env`` on top of the defaults."""
        base = {"CEREBRO_MODULES_PACKAGE": "kafka_fixtures",
                "CEREBRO_KAFKA_BOOTSTRAP": broker.bootstrap,
                "CEREBRO_KAFKA_GROUP": group,
                "CEREBRO_TEST_EVENTS_TOPIC": topic,
                "CEREBRO_MAIN_APP_URL": main_app_url,
                "CEREBRO_CALLBACK_SECRET": SECRET,
                "CEREBRO_CONSUMER_RETRY_BACKOFF": "0.05",
                "CEREBRO_CONSUMER_MAX_BACKOFF": "1.0",
                "CEREBRO_DATA_VOLUME": tmp_path / "volume",
                "SHERLOCK_DIR": tmp_path / "sherlock",
                **GROUP_SETTINGS}
        base.update(env)
        consumer = Consumer(cerebro_env(**base), tmp_path / f"consumer-{len(started)}.log")
        started.append(consumer)
        return consumer

    start.group = group
    yield start
    for consumer in started:
        if consumer.alive():
            consumer.kill()


def produce(broker, topic, values, partition=None, keys=None):
    """Produce raw ``values`` (bytes, or JSON-able objects) and wait for every ack."""
    producer = broker.producer(acks="all")
    try:
        for i, value in enumerate(values):
            data = value if isinstance(value, bytes) else json.dumps(value).encode()
            key = keys[i].encode() if keys else None
            producer.send(topic, value=data, key=key, partition=partition)
        producer.flush(30)
    finally:
        producer.close()


def events(count, start=0, **extra):
    """``count`` valid events ``{"event_id": "e<i>", "n": i}``."""
    return [{"event_id": f"e{i}", "n": i, **extra} for i in range(start, start + count)]
