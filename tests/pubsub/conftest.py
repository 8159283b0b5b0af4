"""Fixtures of the pub-sub tests: a real RabbitMQ, real `cerebro subscribe` processes and a
pika client playing the main app (publishing requests, reading results and dead letters)."""

import json
import os
import time
import uuid

import pika
import pytest

from rabbit import private_rabbit, rabbit_url  # noqa: F401 (fixtures)
from support import REPO, TESTS, CerebroProcess, cerebro_env


def wait_for(predicate, timeout, interval=0.1, message="condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


class Names:
    """Exchange and queue names unique to one test."""

    def __init__(self):
        prefix = f"cerebro-test-ps-{uuid.uuid4().hex[:8]}"
        self.requests = f"{prefix}.requests"
        self.results = f"{prefix}.results"
        self.dlx = f"{prefix}.dlx"
        self.results_queue = f"{prefix}.results.all"
        self.extra_queues = []  # queues a test's own client declared

    def env(self):
        """The settings that point a subscriber at these names."""
        return {"CEREBRO_PUBSUB_REQUESTS_EXCHANGE": self.requests,
                "CEREBRO_PUBSUB_RESULTS_EXCHANGE": self.results,
                "CEREBRO_PUBSUB_DLX": self.dlx}


class Client:
    """The main app's side over a blocking pika connection (confirms on)."""

    def __init__(self, url, names):
        self.url = url
        self.names = names
        self.connect()

    def connect(self):
        """(Re)connect; declare the results exchange and this test's durable results queue."""
        self.connection = pika.BlockingConnection(pika.URLParameters(url_for_pika(self.url)))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.channel.exchange_declare(self.names.results, "topic", durable=True)
        self.channel.queue_declare(self.names.results_queue, durable=True)
        self.channel.queue_bind(self.names.results_queue, self.names.results, "#")

    def publish(self, key, payload, correlation_id, message_id=None, reply_to=None,
                headers=None):
        """Publish one request (``payload`` bytes or JSON-able), persistent and confirmed."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                     correlation_id=correlation_id,
                                     message_id=message_id or correlation_id, reply_to=reply_to,
                                     headers=headers)
        self.channel.basic_publish(self.names.requests, key, body, props, mandatory=True)

    def drain(self, queue, into, until=None, timeout=60.0):
        """Move messages of ``queue`` into the dict ``into`` (correlation id -> list of
        (routing key, headers, body)) until ``until(into)`` or the queue stays empty."""
        deadline = time.monotonic() + timeout
        for method, props, body in self.channel.consume(queue, inactivity_timeout=0.5):
            if method is not None:
                into.setdefault(props.correlation_id, []).append(
                    (method.routing_key, props.headers or {}, _decode(body)))
                self.channel.basic_ack(method.delivery_tag)
            if (until and until(into)) or time.monotonic() > deadline or \
                    (method is None and until is None):
                break
        self.channel.cancel()
        return into

    def results(self, count, timeout=60.0, into=None):
        """Read results until ``count`` distinct correlation ids arrived."""
        return self.drain(self.names.results_queue, {} if into is None else into,
                          lambda got: len(got) >= count, timeout)

    def dead_letters(self, count, timeout=30.0):
        """Read the dead-letter queue until ``count`` messages arrived."""
        return self.drain(self.names.dlx, {}, lambda got: sum(map(len, got.values())) >= count,
                          timeout)

    def cleanup(self, modules):
        """Delete every exchange and queue of the test (on a fresh connection)."""
        try:
            connection = pika.BlockingConnection(pika.URLParameters(url_for_pika(self.url)))
        except pika.exceptions.AMQPError:
            return
        channel = connection.channel()
        for queue in [self.names.results_queue, self.names.dlx, *self.names.extra_queues,
                      *[f"{self.names.requests}.{m}" for m in modules],
                      *[f"{self.names.requests}.{m}.retry" for m in modules]]:
            channel.queue_delete(queue)
        for exchange in (self.names.requests, self.names.results, self.names.dlx):
            channel.exchange_delete(exchange)
        connection.close()
        self.close()

    def close(self):
        """Close the connection when still open."""
        if self.connection.is_open:
            try:
                self.connection.close()
            except pika.exceptions.AMQPError:
                pass


def _decode(body):
    """A JSON body decoded, or the raw bytes of one that is not JSON (a dead letter's)."""
    try:
        return json.loads(body)
    except ValueError:
        return body


def url_for_pika(url):
    """pika reads kombu's ``//`` (vhost "/") as an empty vhost: spell it out."""
    return url[:-2] + "/%2F" if url.endswith("//") else url


class Subscriber(CerebroProcess):
    """One `cerebro subscribe` process."""

    def __init__(self, env, log_path):
        super().__init__("subscribe", env, log_path, append=True)

    def consuming(self, times=1, timeout=60):
        """Wait until the log says "consuming" ``times`` times."""
        wait_for(lambda: self.log().count("cerebro.pubsub.session: consuming") >= times
                 or not self.alive() and _fail(self), timeout, message="the subscriber to consume")
        return self


def _fail(subscriber):
    """Raise with the log of a subscriber that exited."""
    raise AssertionError(f"subscriber exited with {subscriber.proc.returncode}:\n"
                         f"{subscriber.log()[-3000:]}")


@pytest.fixture
def names():
    """Exchange and queue names unique to this test."""
    return Names()


@pytest.fixture
def pubsub(rabbit_url, names, tmp_path):  # noqa: F811
    """Start subscribers and clients on the shared RabbitMQ; everything is removed after."""
    harness = _Harness(rabbit_url, names, tmp_path)
    yield harness
    harness.close()


@pytest.fixture
def harness_factory(names, tmp_path):
    """Like ``pubsub`` for a broker URL the test chooses (a private node)."""
    made = []

    def make(url):
        """A harness on ``url``."""
        made.append(_Harness(url, names, tmp_path))
        return made[-1]

    yield make
    for harness in made:
        harness.close()


class _Harness:
    """Subscribers and clients of one test, stopped and cleaned up at teardown."""

    def __init__(self, url, names, tmp_path):
        self.url = url
        self.names = names
        self.tmp_path = tmp_path
        self.subscribers = []
        self.clients = []
        self.modules = set()

    def subscriber(self, package="fixture_modules", modules="echo", **env):
        """Start `cerebro subscribe` serving ``modules`` of ``package``."""
        self.modules.update(modules.split(","))
        base = {"PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]),
                "CEREBRO_MODULES_PACKAGE": package, "CEREBRO_MODULES": modules,
                "CEREBRO_BROKER_URL": self.url, "CEREBRO_PUBSUB_RETRY_BACKOFF": "0.05",
                "CEREBRO_PUBSUB_RECONNECT_BACKOFF": "0.2", "CEREBRO_PUBSUB_MAX_BACKOFF": "1.0",
                "CEREBRO_DATA_VOLUME": self.tmp_path / "volume",
                "SHERLOCK_DIR": self.tmp_path / "sherlock", **self.names.env()}
        base.update(env)
        log_path = self.tmp_path / f"subscriber-{len(self.subscribers)}.log"
        sub = Subscriber(cerebro_env(**base), log_path)
        self.subscribers.append(sub)
        return sub

    def client(self):
        """A main-app client."""
        self.clients.append(Client(self.url, self.names))
        return self.clients[-1]

    def close(self):
        """Kill subscribers, delete the test's exchanges and queues."""
        for sub in self.subscribers:
            if sub.alive():
                sub.kill()
        for client in self.clients:
            client.close()
        try:
            Client(self.url, self.names).cleanup(self.modules)
        except pika.exceptions.AMQPError:
            pass
