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
from cerebro.taskqueue.publisher import (BrokerUnavailable, TaskPublisher, origin_nodename,
                                         task_message)
from cerebro.names import Names
from cerebro.taskqueue.celery_app import RUN_TASK, make_app
from cerebro.clients.redis import RedisPipe
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
            channel.queue_delete(Names.from_settings(settings).task_queue(module))
            channel.exchange_delete(Names.from_settings(settings).task_queue(module))


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_message_is_what_celery_send_task_publishes(rabbit_url, redis_url, queue_type):
    settings = _settings(rabbit_url, redis_url, CEREBRO_QUEUE_TYPE=queue_type)
    app = make_app(settings)
    queue = Names.from_settings(settings).task_queue("jobs")
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

        asyncio.run(publish())  # declares the queue as Celery did: else PRECONDITION_FAILED
        ours = _get(rabbit_url, queue)
        assert _declared_type(rabbit_url, queue) == queue_type
    finally:
        _cleanup(rabbit_url, settings, "jobs")

    # same queue: we publish straight to it (default exchange, the queue's name as routing
    # key); so does Celery for a classic queue (direct exchange), while for a quorum queue it
    # goes through the queue's topic exchange (native delayed delivery needs one)
    assert (ours[0]["exchange"], ours[0]["routing_key"]) == ("", queue)
    celery_exchange = queue if queue_type == "quorum" else ""
    assert (celery[0]["exchange"], celery[0]["routing_key"]) == (celery_exchange, queue)
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


def _declared_type(url, queue):
    """``quorum`` or ``classic``: which ``x-queue-type`` the broker accepts for ``queue``
    (redeclaring an existing queue with another type is a 406 PRECONDITION_FAILED)."""
    for kind in ("quorum", "classic"):
        with Connection(url) as conn:
            try:
                conn.channel().queue_declare(queue, durable=True, auto_delete=False,
                                             arguments={"x-queue-type": kind})
                return kind
            except Exception as exc:  # noqa: BLE001 - the 406 closes the channel
                assert "PRECONDITION_FAILED" in str(exc) or "inequivalent" in str(exc), exc
    raise AssertionError(f"{queue}: neither quorum nor classic")


def test_countdowns_are_whole_seconds_on_quorum_queues():
    from cerebro.taskqueue.celery_app import countdown
    quorum, classic = load_settings({}), load_settings({"CEREBRO_QUEUE_TYPE": "classic"})
    assert quorum.queue_type == "quorum"
    # native delayed delivery truncates to whole seconds and refuses less than one: round up
    assert [countdown(quorum, s) for s in (0.2, 1, 1.01, 4.5)] == [1, 1, 2, 5]
    assert [countdown(classic, s) for s in (0.2, 1.01)] == [0.2, 1.01]
    with pytest.raises(ValueError, match="CEREBRO_QUEUE_TYPE"):
        load_settings({"CEREBRO_QUEUE_TYPE": "stream"})


def test_a_message_no_queue_takes_is_an_error_not_a_silent_loss(rabbit_url, redis_url):
    settings = _settings(rabbit_url, redis_url)
    app = make_app(settings)
    queue = Names.from_settings(settings).task_queue("jobs")

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
    call = SimpleNamespace(endpoint=SimpleNamespace(module=module, name=function), sticky_key=None)
    return handler, call, headers


def test_submitter_marks_queued_publishes_and_reads_the_state(rabbit_url, redis_url):
    from cerebro.api.submit import Submitter
    settings = _settings(rabbit_url, redis_url)
    app = make_app(settings)

    async def scenario():
        submitter = Submitter(settings, app)
        handler, call, headers = _submit_call()
        try:
            status, body = await submitter(handler, call, {"x": 3})
            task_id = json.loads(body)["task_id"]
            assert status == 202 and headers["Location"] == f"/v1/tasks/{task_id}"
            assert str(uuid.UUID(task_id)) == task_id and uuid.UUID(task_id).version == 4
            meta = await submitter.task_meta(task_id)
            assert meta["status"] == "PENDING"
            assert meta["result"]["module"] == "jobs" and meta["result"]["function"] == "square"
            # the marker is written as JSON by the submitter itself: Celery's own backend
            # (what a worker and Flower use) reads it back as the same state
            raw = await submitter.redis.execute("GET", app.backend.get_key_for_task(task_id))
            assert app.backend.serializer == "json"
            assert app.backend.decode_result(raw) == meta
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
        queue = Names.from_settings(settings).task_queue("jobs")
        ids = [_get(rabbit_url, queue)[2]["id"] for _ in range(2)]
        assert ids == [first, second]
    finally:
        _cleanup(rabbit_url, settings, "jobs")


def test_a_submit_whose_message_is_returned_answers_503_and_the_next_one_is_accepted(
        rabbit_url, redis_url):
    """The submit's own path (no coroutine while connected): a queue deleted behind the API's
    back returns the message, which is a 503 (Unavailable), never a 202; the queue is declared
    again and the next submit is accepted and lands in it."""
    from cerebro.api.submit import Submitter
    from cerebro.errors import Unavailable
    settings = _settings(rabbit_url, redis_url)
    app = make_app(settings)
    queue = Names.from_settings(settings).task_queue("jobs")

    async def scenario():
        submitter = Submitter(settings, app)
        handler, call, _ = _submit_call()
        try:
            assert (await submitter(handler, call, {"x": 1}))[0] == 202  # declares the queue
            probe = submitter.publisher.publish_now(queue, "probe", *task_message(
                "probe", RUN_TASK, b"[]", "[]", "o"))
            assert probe is not None, "connected and declared: the coroutine-free path"
            await probe
            _cleanup(rabbit_url, settings, "jobs")
            with pytest.raises(Unavailable, match="RabbitMQ"):
                await submitter(handler, call, {"x": 2})
            status, body = await submitter(handler, call, {"x": 3})
            assert status == 202
            return json.loads(body)["task_id"]
        finally:
            await submitter.close()

    try:
        accepted = asyncio.run(scenario())
        assert _get(rabbit_url, queue)[2]["id"] == accepted
    finally:
        _cleanup(rabbit_url, settings, "jobs")


def test_task_ids_are_random_version_4_uuids_in_their_usual_form():
    """new_task_id() gives what str(uuid.uuid4()) gives: the RFC 4122 variant, version 4, the
    rest random (every one of 2000 differs, and every free hex digit takes many values)."""
    from cerebro.api.submit import new_task_id
    ids = [new_task_id() for _ in range(2000)]
    for task_id in ids:
        parsed = uuid.UUID(task_id)
        assert str(parsed) == task_id and parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert len(set(ids)) == len(ids)
    for position in (0, 9, 15, 20, 35):
        assert len({task_id[position] for task_id in ids}) == 16


def test_submitter_answers_503_at_once_when_redis_is_down_and_publishes_nothing(
        rabbit_url, redis_url):
    from cerebro.errors import Unavailable
    from cerebro.api.submit import Submitter
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
                assert channel.queue_declare(Names.from_settings(settings).task_queue("jobs"),
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
            first = pipe.send("PING")  # not connected yet: a task connects, then sends
            assert isinstance(first, asyncio.Task) and await first == "PONG"
            sent = pipe.send("PING")  # connected: written at once, a plain future, no task
            assert not isinstance(sent, asyncio.Task) and await sent == "PONG"
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

    async def silent():
        """A server that accepts and never answers: the sent command times out."""
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pipe = RedisPipe(f"redis://127.0.0.1:{port}/0", timeout=0.2)
        try:
            await pipe._connect()
            started = time.perf_counter()
            with pytest.raises(redis.exceptions.TimeoutError):
                await asyncio.wait_for(pipe.send("PING"), 2)
            # cut by the sweep: between the timeout and the timeout plus a quarter of it
            assert 0.2 <= time.perf_counter() - started < 0.2 * 1.25 + 0.15
        finally:
            pipe.close()
            server.close()

    asyncio.run(silent())


def test_queues_delete_keeps_queues_holding_messages_unless_forced(rabbit_url, redis_url):
    """`cerebro queues delete` (the migration between queue types): empty queues and their
    exchanges go, a queue still holding tasks stays (exit 1) unless --force."""
    import subprocess
    import sys

    from cerebro.taskqueue.topology import existing
    from support import cerebro_env
    settings = _settings(rabbit_url, redis_url, CEREBRO_QUEUE_TYPE="classic")
    app = make_app(settings)
    names = [Names.from_settings(settings).task_queue(m) for m in ("jobs", "default")]
    env = cerebro_env(CEREBRO_BROKER_URL=rabbit_url, CEREBRO_QUEUE_PREFIX=settings.queue_prefix,
                      CEREBRO_MODULES_PACKAGE="fixture_modules", CEREBRO_MODULES="jobs")

    def cli(*extra):
        """Run the command; (exit code, stdout)."""
        proc = subprocess.run([sys.executable, "-m", "cerebro", "queues", "delete", *extra],
                              env=env, capture_output=True, text=True, timeout=60)
        return proc.returncode, proc.stdout

    try:
        app.send_task(RUN_TASK, args=[], queue=names[0])  # declares queue and exchange
        with Connection(rabbit_url) as conn:
            app.amqp.queues[names[1]].bind(conn.channel()).declare()
        assert existing(rabbit_url, names, names) == (names, names)
        code, out = cli()
        assert code == 1 and f"{names[0]}  kept: it still holds 1 message(s)" in out, out
        assert existing(rabbit_url, names, names) == (names[:1], names[:1])
        code, out = cli("--queues", "jobs", "--force")
        assert code == 0 and f"{names[0]}  removed" in out, out
        assert existing(rabbit_url, names, names) == ([], [])
        # now quorum queues (on topic exchanges) of the same names can be declared
        quorum = make_app(settings.replace(queue_type="quorum"))
        with Connection(rabbit_url) as conn:
            quorum.amqp.queues[names[0]].bind(conn.channel()).declare()
        assert _declared_type(rabbit_url, names[0]) == "quorum"
    finally:
        _cleanup(rabbit_url, settings, "jobs", "default")


def test_a_loop_torn_down_under_the_publisher_never_hangs(rabbit_url, redis_url):
    """asyncio.run's teardown cancels every task and closes the loop's transports, in any
    order. When the connection went first (with aiormq, its reader task was cancelled), the
    publisher's supervisor could take the closed connection for an outage, swallow its own
    cancellation while tidying up and reconnect: the teardown then waited forever for it
    (`cerebro serve` ignored SIGTERM about one stop in twenty). Whatever the number of loop
    turns between the connection dropping and the cancellation, the supervisor must end."""
    app = make_app(_settings(rabbit_url, redis_url))

    async def teardown(turns):
        publisher = TaskPublisher(rabbit_url, app.amqp.queues.__getitem__)
        publisher.start()
        assert await asyncio.shield(publisher._attempt), "connected"
        supervisor, connection = publisher._supervisor, publisher._connection
        connection.transport.abort()  # the connection goes first
        while not connection.closing.done():
            await asyncio.sleep(0)
        for _ in range(turns):  # the supervisor sees the connection closed, tidies up...
            await asyncio.sleep(0)
        supervisor.cancel()  # ... and is cancelled meanwhile
        done, _ = await asyncio.wait([supervisor], timeout=3)
        await publisher.close()
        return bool(done)

    for turns in range(7):
        assert asyncio.run(asyncio.wait_for(teardown(turns), 15)), \
            f"the supervisor went on after it was cancelled ({turns} turns in)"
