"""The worker's round trips: a state stored in one Redis call, task events sent without
waiting for a publisher confirm (and still reaching Flower's exchange), on the real services."""

import socket
import threading
import time
import uuid

import pytest
import redis
from celery import states

from cerebro.settings import load_settings
from cerebro.taskqueue.backend import RedisBackend
from cerebro.taskqueue.celery_app import make_app
from cerebro.taskqueue.events import EventDispatcher
from conftest import SECRET, wait_for
from receiver import Receiver


@pytest.fixture
def app(rabbit_url, redis_url, tmp_path):
    """Cerebro's Celery app on the real broker and Redis."""
    settings = load_settings({"CEREBRO_BROKER_URL": rabbit_url,
                              "CEREBRO_RESULT_BACKEND": redis_url,
                              "CEREBRO_DATA_VOLUME": str(tmp_path / "volume")})
    app = make_app(settings, schedules=False)
    yield app
    app.close()


class Monitor:
    """Redis's MONITOR on a connection of its own: every command a client sends, as text
    (the commands a script runs inside Redis are not round trips, and are left out)."""

    def __init__(self, url):
        self.client = redis.Redis.from_url(url)
        self.lines = []
        self._monitor = self.client.monitor().__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        """Collect commands until the connection closes."""
        try:
            for command in self._monitor.listen():
                if command.get("client_type") != "lua":
                    self.lines.append(command["command"])
        except (redis.ConnectionError, ValueError, AttributeError, OSError):
            pass

    def about(self, key):
        """The commands that named ``key`` so far (a script call names its key too)."""
        return [line for line in self.lines if key in line]

    def close(self):
        """Stop monitoring."""
        try:
            self._monitor.connection.disconnect()
        except OSError:
            pass
        self.client.close()


def test_a_state_is_stored_in_one_call_and_never_over_a_success(app, redis_url):
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    task_id = f"round-trip-{uuid.uuid4()}"
    key = backend.get_key_for_task(task_id).decode()
    # the script is in Redis's cache before MONITOR starts: on a Redis that never ran it (a
    # fresh machine), the first call is EVALSHA, refused (NOSCRIPT), then EVAL: two calls
    backend.store_result(f"warm-up-{uuid.uuid4()}", None, states.STARTED)
    monitor = Monitor(redis_url)
    try:
        time.sleep(0.2)  # MONITOR is on before the first write
        backend.store_result(task_id, {"pid": 1}, states.STARTED)
        wait_for(lambda: monitor.about(key), timeout=5, what="the STARTED write")
        time.sleep(0.2)
        assert len(monitor.about(key)) == 1, monitor.about(key)  # one call: no GET first
        assert monitor.about(key)[0].startswith(("EVALSHA", "EVAL"))

        backend.store_result(task_id, {"square": 49}, states.SUCCESS)
        backend.store_result(task_id, None, states.STARTED)  # a redelivery after a lost worker
        backend.store_result(task_id, "boom", states.FAILURE)
        wait_for(lambda: len(monitor.about(key)) >= 4, timeout=5, what="four writes")
    finally:
        monitor.close()
    assert not [line for line in monitor.about(key) if line.startswith("GET ")]
    backend._cache.clear()
    meta = backend.get_task_meta(task_id)
    assert meta["status"] == states.SUCCESS and meta["result"] == {"square": 49}
    client = redis.Redis.from_url(redis_url)
    ttl = client.ttl(key)
    assert 0 < ttl <= app.conf.result_expires  # stored with the result's expiry, as Celery does
    client.delete(key)


def test_a_stored_state_is_published_as_celery_publishes_it(app, redis_url):
    backend = app.backend
    task_id = f"published-{uuid.uuid4()}"
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(backend.get_key_for_task(task_id))
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    backend.store_result(task_id, {"square": 4}, states.SUCCESS)
    message = pubsub.get_message(timeout=5)
    pubsub.close()
    assert message is not None and message["type"] == "message"
    published = backend.decode_result(message["data"])
    assert published["status"] == states.SUCCESS and published["result"] == {"square": 4}
    client.delete(backend.get_key_for_task(task_id))


def test_task_events_skip_the_confirm_and_task_messages_keep_it(app):
    connection = app.connection_for_write()
    try:
        dispatcher = app.events.Dispatcher(connection, hostname="round-trips@test")
        assert isinstance(dispatcher, EventDispatcher)
        events_channel = dispatcher.producer.channel
        dispatcher.send("task-started", uuid="t-1")
        assert not events_channel._confirm_selected  # never put in confirm mode
        tasks_channel = connection.channel()
        assert tasks_channel.basic_publish == tasks_channel.basic_publish_confirm
        tasks_channel.close()
        dispatcher.close()
    finally:
        connection.close()


def test_a_workers_task_events_reach_the_event_exchange(async_env, worker_factory,
                                                        server_factory, app):
    """What Flower sees: a real worker's task-received/started/succeeded events arrive."""
    port = int(async_env["CEREBRO_MAIN_APP_URL"].rsplit(":", 1)[1])
    rec = Receiver(SECRET, port=port)
    seen = []
    try:
        server = server_factory(async_env)
        worker_factory(async_env)
        with app.connection_for_read() as connection:
            receiver = app.events.Receiver(connection, handlers={"*": seen.append})
            ready = threading.Event()

            def capture():
                """Consume events until a task succeeded (or the time is up)."""
                ready.set()
                try:
                    for _ in receiver.itercapture(limit=None, timeout=20, wakeup=False):
                        if any(event["type"] == "task-succeeded" for event in seen):
                            return
                except (socket.timeout, TimeoutError):
                    return

            thread = threading.Thread(target=capture, daemon=True)
            thread.start()
            ready.wait(5)
            time.sleep(0.5)  # the receiver's queue is bound
            status, _, body = server.post("/v1/jobs/square", {"x": 3})
            assert status == 202, body
            rec.wait(1)
            thread.join(25)
    finally:
        rec.stop()
    types = {event["type"] for event in seen if event.get("uuid") == body["task_id"]}
    assert {"task-received", "task-started", "task-succeeded"} <= types, types


@pytest.mark.parametrize("prefetch,reserved", [("1", 0), ("2", 1)])
def test_a_worker_process_holds_as_many_tasks_as_worker_prefetch_says(
        async_env, worker_factory, server_factory, prefetch, reserved):
    """CEREBRO_WORKER_PREFETCH: 1 (the default) takes the next task only once one is done; 2
    holds the next one while a task runs. Either way nothing is acknowledged before it ran."""
    env = dict(async_env, CEREBRO_WORKER_PREFETCH=prefetch)
    server = server_factory(env)
    worker = worker_factory(env, concurrency=1)
    for tag in ("a", "b", "c"):
        status, _, body = server.post("/v1/jobs/nap", {"seconds": 4, "tag": tag})
        assert status == 202, body
    settings = load_settings({"CEREBRO_BROKER_URL": env["CEREBRO_BROKER_URL"],
                              "CEREBRO_RESULT_BACKEND": env["CEREBRO_RESULT_BACKEND"]})
    app = make_app(settings, schedules=False)
    try:
        def held():
            """(running, reserved) once the worker runs a task, else None."""
            inspect = app.control.inspect(timeout=1.0)
            active, waiting = inspect.active() or {}, inspect.reserved() or {}
            running = sum(len(tasks) for tasks in active.values())
            return (running, sum(len(tasks) for tasks in waiting.values())) if running else None

        wait_for(held, timeout=20, what="a running task")
        time.sleep(0.5)  # the broker has delivered what the prefetch allows
        assert held() == (1, reserved), worker.log()[-2000:]
    finally:
        app.close()
