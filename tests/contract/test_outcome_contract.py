"""The outcome contract: every error kind means the same on every transport.

One real stack (a `cerebro serve`, a `cerebro worker` on RabbitMQ with Redis, a `cerebro consume`
on a Kafka-wire broker, a `cerebro subscribe` on RabbitMQ, a signature-checking main app) serves
the `outcomes` fixture module, whose functions fail with the kind a call names. Every kind of
``cerebro.errors.KINDS`` (and a plain bug) is sent through every transport at once, and each
outcome is checked against what the kind itself declares:

* REST answers the kind's ``http_status`` with its ``type``;
* queued work (a Celery task, a Kafka event, a pub-sub request) ends failed with that type
  (a failed callback, a dead-lettered event told to the main app, a failed result), after
  exactly one attempt for a final kind, ``1 + CEREBRO_RETRIES`` attempts for a retryable one,
  and, for a model that is not ready, attempts every ``CEREBRO_MODEL_RETRY_DELAY`` seconds for
  about ``CEREBRO_MODEL_WAIT`` seconds.
"""

import json
import os
import time
import uuid

import pika
import pytest

from cerebro import errors
from kafka_broker import FAST_GROUP, KafkaBroker, fresh_name
from rabbit import celery_shared_topology, rabbit_url, redis_url  # noqa: F401 (fixtures)
from receiver import Receiver
from support import REPO, TESTS, CerebroProcess, CerebroServer, cerebro_env, free_port

SECRET = "contract-secret"
RETRIES = 2
MODEL_WAIT = 2.5
MODEL_RETRY_DELAY = 0.5
KINDS = {kind.type: kind for kind in errors.KINDS}
KINDS["bug"] = errors.InternalError  # a plain exception in the function is typed as internal
TRANSPORTS = ("celery", "kafka", "pubsub")


def _expected_attempts(kind):
    """How many attempts the policy allows a kind (None: 'about MODEL_WAIT seconds')."""
    disposition = KINDS[kind].queued
    if disposition is errors.FINAL:
        return 1
    if disposition is errors.RETRY:
        return 1 + RETRIES
    return None


def _wait(predicate, timeout, what):
    """Poll until ``predicate()`` is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Stack:
    """Every transport of one platform, serving the `outcomes` module, and its main app."""

    def __init__(self, tmp_path, rabbit, redis):
        self.tmp = tmp_path
        self.rabbit = rabbit
        self.calls = tmp_path / "calls.txt"
        self.calls.touch()
        self.main_app = Receiver(SECRET)
        self.kafka = KafkaBroker(log_path=tmp_path / "tansu.log").start()
        unique = uuid.uuid4().hex[:8]
        self.requests, self.results, self.dlx = (f"contract-{unique}.{part}"
                                                 for part in ("requests", "results", "dlx"))
        self.prefix = f"contract-{unique}"
        self.env = cerebro_env(**{
            "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]),
            "CEREBRO_MODULES_PACKAGE": "fixture_modules", "CEREBRO_MODULES": "outcomes",
            "CEREBRO_DATA_VOLUME": tmp_path / "volume", "SHERLOCK_DIR": tmp_path / "sherlock",
            "OUTCOMES_CALLS": self.calls,
            "CEREBRO_RETRIES": RETRIES, "CEREBRO_RETRY_BACKOFF": 0.05, "CEREBRO_MAX_BACKOFF": 0.2,
            "CEREBRO_MODEL_WAIT": MODEL_WAIT, "CEREBRO_MODEL_RETRY_DELAY": MODEL_RETRY_DELAY,
            "CEREBRO_BROKER_URL": rabbit, "CEREBRO_RESULT_BACKEND": redis,
            "CEREBRO_QUEUE_PREFIX": self.prefix, "CEREBRO_CALLBACK_SECRET": SECRET,
            "CEREBRO_MAIN_APP_URL": self.main_app.url,
            "CEREBRO_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "CEREBRO_KAFKA_GROUP": fresh_name("contract"), **FAST_GROUP,
            "CEREBRO_PUBSUB_REQUESTS_EXCHANGE": self.requests,
            "CEREBRO_PUBSUB_RESULTS_EXCHANGE": self.results, "CEREBRO_PUBSUB_DLX": self.dlx})
        self.processes = []
        self.server = None
        self.tasks = {}            # Celery task id -> the kind it was sent with
        self.pubsub_results = {}   # message id -> error type of its failed result

    def start(self):
        """Start every transport; wait until each one takes work."""
        self.server = CerebroServer({k: v for k, v in self.env.items() if k.startswith(
            ("CEREBRO_", "OUTCOMES_", "SHERLOCK_", "PYTHONPATH"))},
            log_path=self.tmp / "serve.log").start()
        for command in ("worker", "consume", "subscribe"):
            self.processes.append(CerebroProcess(command, self.env, self.tmp / f"{command}.log"))
        _wait(lambda: all(self._started(p) for p in self.processes), 90, "every transport")
        self._declare_results_queue()
        return self

    def _started(self, process):
        """True once ``process`` logged that it takes work (fails if it died)."""
        if not process.alive():
            raise AssertionError(f"{process.log_path.name} exited:\n{process.log()[-3000:]}")
        text = process.log()
        return (" ready." in text or "partitions assigned: contract-" in text
                or "cerebro.pubsub.session: consuming" in text)

    def _channel(self):
        """A blocking pika channel on the test's RabbitMQ."""
        url = self.rabbit[:-2] + "/%2F" if self.rabbit.endswith("//") else self.rabbit
        connection = pika.BlockingConnection(pika.URLParameters(url))
        return connection, connection.channel()

    def _declare_results_queue(self):
        """A durable queue of every result of the test's results exchange."""
        connection, channel = self._channel()
        channel.exchange_declare(self.results, "topic", durable=True)
        channel.queue_declare(self.results + ".all", durable=True)
        channel.queue_bind(self.results + ".all", self.results, "#")
        connection.close()

    # -- sending every kind through every transport --

    def send_all(self):
        """One call per kind per transport; returns the REST answers."""
        rest = {kind: self.server.post("/v1/outcomes/fail", {"kind": kind, "key": f"rest:{kind}"})
                for kind in KINDS}
        for kind in KINDS:
            status, _, body = self.server.post("/v1/outcomes/fail_later",
                                               {"kind": kind, "key": f"celery:{kind}"})
            assert status == 202, body
            self.tasks[body["task_id"]] = kind
        producer = self.kafka.producer(acks="all")
        for kind in KINDS:
            producer.send(f"contract-{kind}", json.dumps(
                {"event_id": f"kafka:{kind}", "kind": kind, "key": f"kafka:{kind}"}).encode())
        producer.flush(30)
        producer.close()
        connection, channel = self._channel()
        channel.confirm_delivery()
        for kind in KINDS:
            channel.basic_publish(self.requests, "outcomes.fail", json.dumps(
                {"kind": kind, "key": f"pubsub:{kind}"}).encode(), pika.BasicProperties(
                    content_type="application/json", delivery_mode=2,
                    correlation_id=f"pubsub:{kind}", message_id=f"pubsub:{kind}"),
                mandatory=True)
        connection.close()
        return rest

    # -- what came out --

    def attempts(self):
        """``{key: [unix times of its attempts]}`` from the fixture module's call log."""
        found = {}
        for line in self.calls.read_text().splitlines():
            key, at = line.rsplit(" ", 1)
            found.setdefault(key, []).append(float(at))
        return found

    def final_outcomes(self):
        """``{key: error type}`` of every queued call that ended failed (told to the main app
        or published as a failed result)."""
        found = {}
        for call in self.main_app.received:
            body = call["body"]
            if body.get("task_id") and body["status"] == "failed":        # Celery's callback
                found[f"celery:{self.tasks[body['task_id']]}"] = body["error"]["type"]
            elif body.get("event_id") and body["status"] == "dead_lettered":  # Kafka's note
                found[body["event_id"]] = body["error"]["type"]
        connection, channel = self._channel()
        while True:
            method, _props, raw = channel.basic_get(self.results + ".all", auto_ack=True)
            if method is None:
                break
            body = json.loads(raw)
            if body["status"] == "failed":
                self.pubsub_results[body["message_id"]] = body["error"]["type"]
        connection.close()
        found.update(self.pubsub_results)
        return found

    def close(self):
        """Stop every process and remove the broker objects of the test."""
        for process in self.processes:
            if process.alive():
                process.terminate()
        if self.server:
            self.server.stop()
        self.kafka.stop()
        self.main_app.stop()
        from cerebro.taskqueue.topology import delete
        queues = [f"{self.prefix}.outcomes", f"{self.prefix}.default", self.results + ".all",
                  f"{self.requests}.outcomes", f"{self.requests}.outcomes.retry", self.dlx]
        delete(self.rabbit, queues, queues[:2] + [self.requests, self.results, self.dlx])


@pytest.fixture(scope="module")
def stack(tmp_path_factory, rabbit_url, redis_url, celery_shared_topology):  # noqa: F811
    """The running stack, with every kind sent through every transport."""
    built = Stack(tmp_path_factory.mktemp("contract"), rabbit_url, redis_url)
    try:
        built.start()
        built.rest = built.send_all()
        expected = {f"{t}:{kind}" for t in TRANSPORTS for kind in KINDS}
        _wait(lambda: expected <= set(built.final_outcomes()), 90,
              "a final outcome of every kind on every transport")
        yield built
    finally:
        built.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_rest_answers_the_kinds_http_status(stack, kind):
    """A synchronous call answers the kind's own status and type, and runs once."""
    status, _, body = stack.rest[kind]
    assert status == KINDS[kind].http_status, body
    assert body["error"]["type"] == KINDS[kind].type
    assert len(stack.attempts()[f"rest:{kind}"]) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_queued_work_ends_as_the_policy_says(stack, transport, kind):
    """The same kind ends the same way on every queue: its type, after the policy's attempts."""
    key = f"{transport}:{kind}"
    assert stack.final_outcomes()[key] == KINDS[kind].type
    attempts = stack.attempts()[key]
    expected = _expected_attempts(kind)
    if expected is not None:
        assert len(attempts) == expected, attempts
    else:  # waited for the model: tried again and again for about CEREBRO_MODEL_WAIT seconds
        assert len(attempts) >= 3, attempts
        span = attempts[-1] - attempts[0]
        assert MODEL_WAIT - 0.5 <= span <= MODEL_WAIT + 2.5, attempts
