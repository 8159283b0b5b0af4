"""The lean submit path on real RabbitMQ and Redis: hand-built Celery messages, the Redis pipe."""

import asyncio
import json
import time
import uuid
from types import SimpleNamespace

import pytest
from kombu import Connection

from cerebro import jsonio
from cerebro.settings import load_settings
from cerebro.tasks.amqp import BrokerUnavailable, TaskPublisher, origin_nodename, task_message
from cerebro.tasks.celery_app import RUN_TASK, make_app, queue_name
from cerebro.tasks.redispipe import RedisPipe
from support import free_port


def _settings(rabbit_url, redis_url, **extra):
    """Settings on the test broker and Redis with a fresh queue prefix."""
    env = {"CEREBRO_BROKER_URL": rabbit_url, "CEREBRO_RESULT_BACKEND": redis_url,
           "CEREBRO_QUEUE_PREFIX": f"cerebro-test-submit-{uuid.uuid4().hex[:8]}", **extra}
    return load_settings(env)


def _get(url, queue):
    """Take one message from ``queue``: (delivery info, properties, headers, body bytes)."""
    with Connection(url) as conn:
        channel = conn.channel()
        deadline = time.monotonic() + 5
        while (message := channel.basic_get(queue, no_ack=True)) is None:
            assert time.monotonic() < deadline, f"no message in {queue}"
            time.sleep(0.05)
        return message.delivery_info, message.properties, message.headers, message.body


def _cleanup(url, settings, *modules):
    """Delete the queues and exchanges a test declared."""
    with Connection(url) as conn:
        channel = conn.channel()
        for module in modules:
            channel.queue_delete(queue_name(settings, module))
            channel.exchange_delete(queue_name(settings, module))


def test_message_is_what_celery_send_task_publishes(rabbit_url, redis_url):
    settings = _settings(rabbit_url, redis_url)
    app = make_app(settings)
    queue = queue_name(settings, "jobs")
    args = ["jobs", "square", {"x": 7}, {"callback_url": None, "submitted_at": 1.5,
                                         "request_id": "r-1"}]
    try:
        app.send_task(RUN_TASK, args=args, task_id="celery-id", queue=queue)
        celery = _get(rabbit_url, queue)

        async def publish():
            publisher = TaskPublisher(rabbit_url, app.amqp.queues.__getitem__)
            raw = jsonio.dumps(args)
            headers, body = task_message("our-id", RUN_TASK, raw, raw.decode(), origin_nodename())
            try:
                await publisher.publish(queue, "our-id", headers, body)
            finally:
                await publisher.close()

        asyncio.run(publish())
        ours = _get(rabbit_url, queue)
    finally:
        _cleanup(rabbit_url, settings, "jobs")

    # same route: the default exchange, the queue's name as routing key
    assert ours[0]["exchange"] == celery[0]["exchange"] == ""
    assert ours[0]["routing_key"] == celery[0]["routing_key"] == queue
    # same properties (reply_to is only for the rpc:// backend; message_id is ours)
    for name in ("content_type", "content_encoding", "delivery_mode", "priority"):
        assert ours[1][name] == celery[1][name], name
    assert (celery[1]["correlation_id"], ours[1]["correlation_id"]) == ("celery-id", "our-id")
    # same headers, ids and display strings aside
    skip = {"id", "root_id", "argsrepr", "origin"}
    assert {k: v for k, v in ours[2].items() if k not in skip} == \
        {k: v for k, v in celery[2].items() if k not in skip}
    assert ours[2]["id"] == ours[2]["root_id"] == "our-id"
    assert ours[2]["origin"].startswith("gen") and json.loads(ours[2]["argsrepr"]) == args
    # same body: [args, kwargs, embed]
    assert json.loads(ours[3]) == json.loads(celery[3]) == [args, {}, {
        "callbacks": None, "errbacks": None, "chain": None, "chord": None}]


def test_a_message_no_queue_takes_is_an_error_not_a_silent_loss(rabbit_url, redis_url):
    settings = _settings(rabbit_url, redis_url)
    app = make_app(settings)
    queue = queue_name(settings, "jobs")

    async def scenario():
        publisher = TaskPublisher(rabbit_url, app.amqp.queues.__getitem__)
        headers, body = task_message("t-1", RUN_TASK, b"[]", "[]", "o")
        try:
            await publisher.publish(queue, "t-1", headers, body)  # declares, confirmed
            _cleanup(rabbit_url, settings, "jobs")  # the queue disappears behind our back
            with pytest.raises(BrokerUnavailable):
                await publisher.publish(queue, "t-2", headers, body)
            # the publisher forgets its declaration and the next publish declares again
            await publisher.publish(queue, "t-3", headers, body)
        finally:
            await publisher.close()

    try:
        asyncio.run(scenario())
        assert _get(rabbit_url, queue)[1]["correlation_id"] == "t-3"
    finally:
        _cleanup(rabbit_url, settings, "jobs")


def test_unreachable_broker_fails_fast_and_the_publisher_keeps_trying(rabbit_url, redis_url):
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    settings = _settings(dead, redis_url)
    app = make_app(settings)

    async def scenario():
        publisher = TaskPublisher(dead, app.amqp.queues.__getitem__, timeout=1.0,
                                  backoff=0.05, max_backoff=0.2)
        publisher.start()
        headers, body = task_message("t", RUN_TASK, b"[]", "[]", "o")
        started = time.perf_counter()
        with pytest.raises(BrokerUnavailable):  # waits for the first attempt only
            await publisher.publish("q", "t", headers, body)
        assert time.perf_counter() - started < 1.5
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        for _ in range(20):  # while it is down: refused at once, no waiting
            assert not publisher.usable() or publisher._attempt is not None
            with pytest.raises(BrokerUnavailable):
                await publisher.publish("q", "t", headers, body)
        assert time.perf_counter() - started < 1.2
        assert "ConnectionRefused" in publisher.down_reason or "Errno" in publisher.down_reason
        await publisher.close()

    asyncio.run(scenario())


def _submit_call(module="jobs", function="square"):
    """A stand-in for a prepared call and its Tornado handler."""
    headers = {}
    handler = SimpleNamespace(request_id="req-1", set_header=headers.__setitem__)
    call = SimpleNamespace(endpoint=SimpleNamespace(module=module, name=function))
    return handler, call, headers


def test_submitter_marks_queued_publishes_and_reads_the_state(rabbit_url, redis_url):
    from cerebro.tasks.submit import Submitter
    settings = _settings(rabbit_url, redis_url)
    app = make_app(settings)

    async def scenario():
        submitter = Submitter(settings, app)
        handler, call, headers = _submit_call()
        try:
            status, body = await submitter(handler, call, {"x": 3})
            task_id = json.loads(body)["task_id"]
            assert status == 202 and headers["Location"] == f"/v1/tasks/{task_id}"
            meta = await submitter.task_meta(task_id)
            assert meta["status"] == "PENDING"
            assert meta["result"]["module"] == "jobs" and meta["result"]["function"] == "square"
            # second call: marker and message at once (Redis proven healthy)
            status, body = await submitter(handler, call, {"x": 4})
            assert status == 202
            second = json.loads(body)["task_id"]
            assert (await submitter.task_meta(second))["status"] == "PENDING"
            assert (await submitter.task_meta(str(uuid.uuid4())))["result"] is None
            return task_id, second
        finally:
            await submitter.close()

    try:
        first, second = asyncio.run(scenario())
        ids = [_get(rabbit_url, queue_name(settings, "jobs"))[2]["id"] for _ in range(2)]
        assert ids == [first, second]
    finally:
        _cleanup(rabbit_url, settings, "jobs")


def test_submitter_answers_503_at_once_when_redis_is_down_and_publishes_nothing(
        rabbit_url, redis_url):
    from cerebro.errors import Unavailable
    from cerebro.tasks.submit import Submitter
    settings = _settings(rabbit_url, f"redis://127.0.0.1:{free_port()}/0")
    app = make_app(settings)

    async def scenario():
        submitter = Submitter(settings, app)
        handler, call, _ = _submit_call()
        try:
            for _ in range(5):
                started = time.perf_counter()
                with pytest.raises(Unavailable) as error:
                    await submitter(handler, call, {"x": 3})
                assert "Redis" in error.value.message
                assert time.perf_counter() - started < 1.5
        finally:
            await submitter.close()

    try:
        asyncio.run(scenario())
        with Connection(rabbit_url) as conn:  # nothing was published (the queue may not exist)
            channel = conn.channel()
            try:
                assert channel.queue_declare(queue_name(settings, "jobs"),
                                             passive=True).message_count == 0
            except Exception as exc:  # not even declared: fine, nothing was published
                assert "NOT_FOUND" in str(exc)
    finally:
        _cleanup(rabbit_url, settings, "jobs")


def test_redis_pipe_pipelines_reports_errors_and_reconnects(redis_url):
    import redis

    async def scenario():
        pipe = RedisPipe(redis_url)
        key = f"cerebro-test-pipe-{uuid.uuid4().hex}"
        try:
            replies = await asyncio.gather(
                pipe.execute("SET", key, "v1", "EX", 60, "NX"),
                pipe.execute("SET", key, "v2", "EX", 60, "NX"),
                pipe.execute("GET", key), pipe.execute("INCR", key + "-n"))
            assert replies == ["OK", None, b"v1", 1]
            with pytest.raises(redis.exceptions.ResponseError):
                await pipe.execute("INCR", key)  # not an integer
            # the server drops us: the next command reconnects
            client_id = await pipe.execute("CLIENT", "ID")
            sync = redis.Redis.from_url(redis_url)
            sync.client_kill_filter(_id=client_id)
            await asyncio.sleep(0.05)
            assert await pipe.execute("GET", key) == b"v1"
            await pipe.execute("DEL", key, key + "-n")
        finally:
            pipe.close()

    asyncio.run(scenario())

    async def refused():
        pipe = RedisPipe(f"redis://127.0.0.1:{free_port()}/0")
        started = time.perf_counter()
        with pytest.raises(redis.exceptions.ConnectionError):
            await pipe.execute("PING")
        assert time.perf_counter() - started < 1.0

    asyncio.run(refused())
