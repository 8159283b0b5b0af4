"""The submitter's outcome policy on the path without a coroutine (the confirm's future calls it
back), driven step by step: the AMQP connection and Redis are replaced by futures the test
settles, so every order of events can be forced. The real broker and Redis are in
test_submit_path.py and test_async_e2e.py."""

import asyncio
import logging
from types import SimpleNamespace

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from cerebro.api.submit import Submitter
from cerebro.errors import Unavailable
from cerebro.settings import load_settings
from cerebro.taskqueue.celery_app import make_app


class _Publisher:
    """A connected publisher with the queue declared: publish_now hands out a future the test
    settles (or raises, as a bug would)."""

    def __init__(self, raises=None):
        self.raises, self.confirms, self.forgotten = raises, [], []

    def usable(self):
        """Always connected."""
        return True

    def publish_now(self, queue, task_id, headers, body):
        """The confirm's future (or the bug)."""
        if self.raises is not None:
            raise self.raises
        confirm = asyncio.get_running_loop().create_future()
        self.confirms.append(confirm)
        return confirm

    def failure(self, queue, exc):
        """What the real publisher maps a lost connection to (see TaskPublisher.failure)."""
        from cerebro.taskqueue.publisher import BrokerUnavailable
        self.forgotten.append(queue)
        return BrokerUnavailable(f"{type(exc).__name__}: {exc}")

    async def close(self):
        """Nothing to close."""


class _Redis:
    """A Redis whose answers the test settles."""

    def __init__(self):
        self.sent = []

    def send(self, *command):
        """The future of the command's answer."""
        answer = asyncio.get_running_loop().create_future()
        self.sent.append(answer)
        return answer

    def close(self):
        """Nothing to close."""


def _submitter(publisher):
    """A submitter on ``publisher`` and a controllable Redis, Redis proven healthy."""
    settings = load_settings({"CEREBRO_BROKER_URL": "amqp://guest:guest@127.0.0.1:9//",
                              "CEREBRO_RESULT_BACKEND": "redis://127.0.0.1:9/0"})
    submitter = Submitter(settings, make_app(settings))  # no loop yet: nothing connects
    submitter.publisher, submitter.redis = publisher, _Redis()
    submitter._redis_down = False
    return submitter


def _call():
    """A handler and a prepared call, as EndpointCall passes them."""
    headers = {}
    handler = SimpleNamespace(request_id="r", set_header=headers.__setitem__)
    call = SimpleNamespace(endpoint=SimpleNamespace(module="jobs", name="noop"), sticky_key=None)
    return handler, call, headers


def _submitted():
    """One submit on the controlled path: (publisher, submitter, the call's future, the
    answer's headers)."""
    publisher, (handler, call, headers) = _Publisher(), _call()
    submitter = _submitter(publisher)
    return publisher, submitter, submitter(handler, call, {}), headers


def _run(scenario):
    """Run ``scenario`` on a loop that records what it was never told (unretrieved errors)."""
    unretrieved = []

    async def main():
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: unretrieved.append(context["message"]))
        await scenario()
        await asyncio.sleep(0.01)  # the background outcomes run

    asyncio.run(main())
    assert not unretrieved, unretrieved


def test_confirmed_then_marker_stored_is_a_202_with_its_location():
    async def scenario():
        publisher, submitter, accepted, headers = _submitted()
        publisher.confirms[0].set_result(None)
        await asyncio.sleep(0)
        assert not accepted.done(), "the marker's answer is not in yet"
        submitter.redis.sent[0].set_result(None)  # SET NX answered (nil: a worker wrote first)
        status, _ = await accepted
        assert status == 202 and headers["Location"].startswith("/v1/tasks/")

    _run(scenario)


def test_a_lost_connection_is_a_503_and_the_marker_failure_is_still_noted():
    async def scenario():
        publisher, submitter, accepted, _ = _submitted()
        submitter.redis.sent[0].set_exception(RedisConnectionError("gone"))
        publisher.confirms[0].set_exception(ConnectionError("connection lost"))
        with pytest.raises(Unavailable, match="RabbitMQ"):
            await accepted
        await asyncio.sleep(0.01)
        assert publisher.forgotten == [submitter._queues["jobs"]]
        assert submitter._redis_down, "the marker's failure counts even on a 503"

    _run(scenario)


def test_a_caller_giving_up_leaves_no_error_unretrieved_and_the_outcomes_still_count():
    async def scenario():
        publisher, submitter, accepted, _ = _submitted()
        accepted.cancel()  # e.g. asyncio.wait_for timing out
        publisher.confirms[0].set_exception(ConnectionError("connection lost"))
        submitter.redis.sent[0].set_exception(RedisConnectionError("gone"))
        await asyncio.sleep(0.01)
        assert submitter._redis_down
        assert publisher.forgotten, "the failed publish was still mapped (queue declared again)"

    _run(scenario)


def test_confirmed_but_marker_lost_is_still_a_202_and_logged(caplog):
    async def scenario():
        publisher, submitter, accepted, _ = _submitted()
        publisher.confirms[0].set_result(None)
        submitter.redis.sent[0].cancel()  # the Redis connection torn down
        assert (await accepted)[0] == 202

    with caplog.at_level(logging.ERROR, logger="cerebro.api.submit"):
        _run(scenario)
    assert "accepted without its queued marker" in caplog.text


def test_a_publish_that_cannot_start_leaves_no_marker_behind():
    async def scenario():
        submitter = _submitter(_Publisher(raises=RuntimeError("a bug")))
        with pytest.raises(RuntimeError):
            submitter(*_call()[:2], {})
        assert submitter.redis.sent == []

    _run(scenario)


def test_a_bug_after_the_confirm_fails_the_call_instead_of_leaving_it_unanswered():
    async def scenario():
        publisher, (handler, call, _) = _Publisher(), _call()
        handler.set_header = None  # answering the 202 raises TypeError
        submitter = _submitter(publisher)
        accepted = submitter(handler, call, {})
        submitter.redis.sent[0].set_result(b"OK")
        publisher.confirms[0].set_result(None)
        with pytest.raises(TypeError):
            await asyncio.wait_for(accepted, 1)

    _run(scenario)
