"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The API's submitter: validate the callback URL, record the task, publish it, answer 202.
Tagline: Say "got it" in a blink, and mean it.

Everything runs on the IOLoop, with no thread hand-off: the Celery task
message is built here (protocol 2, JSON) and published by
:class:`~cerebro.taskqueue.publisher.TaskPublisher` on this process's one
long-lived AMQP channel, while the "queued" marker goes to Redis in one
``SET NX`` on a pipelined connection (:class:`~cerebro.clients.redis.RedisPipe`,
the process's one Redis client, which also reads task states), at the same
time; while connected, with no coroutine or task: the confirm's future calls
the submitter back. With ``CEREBRO_PUBLISH_CONFIRM`` (the default) the 202 is sent only
after RabbitMQ confirmed the persistent
message, so an acknowledged task survives a broker restart and will run.

When RabbitMQ is down the client gets a 503 at once: the publisher knows the
connection is gone and reconnects by itself with backoff (no restart). When
Redis fails, the next second of async calls answer 503 without trying, then
one request checks Redis *before* publishing (as the first request does). A task whose message was
confirmed but whose marker failed (Redis died during that very request) is
still answered 202, since it will run, and logged as an error.

A misconfiguration is not an outage: :meth:`Submitter.from_settings` logs in
to RabbitMQ and Redis once before the API serves, and a refused password, user,
virtual host or Redis database raises
:class:`~cerebro.settings.ConfigurationError` naming the setting (``cerebro
serve`` exits 2, instead of answering 503 to every async call forever). A
refusal found later (the broker was down at start-up, or a reconnection is
refused) stops the process with exit 2 as well. An unreachable broker or Redis
is an outage: retried as before.

Module folders added while the API runs (:meth:`cerebro.core.Core.on_modules_changed`)
have their queue declared at once (:meth:`Submitter.modules_changed`), so their
first async call costs no declaration; a removed module's queue is declared again
if it comes back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, cast

from celery import states
from redis.exceptions import RedisError

from cerebro import jsonio
from cerebro.callbacks import CallbackURLs
from cerebro.clients.rabbitmq import check_broker
from cerebro.clients.redis import RedisPipe, RedisRefused, check_redis
from cerebro.clients.redis import refused as redis_refused
from cerebro.errors import Unavailable
from cerebro.names import Names
from cerebro.taskqueue.celery_app import RUN_TASK, make_app
from cerebro.taskqueue.publisher import (BrokerUnavailable, TaskPublisher, origin_nodename,
                                         task_message)

if TYPE_CHECKING:
    from celery import Celery
    from celery.backends.redis import RedisBackend
    from pamqp.common import FieldTable

    from cerebro.clients.amqpcodec import EncodedTable

    from cerebro.api.endpoint_route import EndpointCall
    from cerebro.dispatch import Call
    from cerebro.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)

_ARGSREPR_BYTES = 1024
REDIS_RETRY_SECONDS = 1.0  # after a Redis failure, answer 503 without trying for this long
EXIT_GRACE_SECONDS = 1.0  # a refused configuration found while serving: calls in flight finish


class _Task(NamedTuple):
    """What the steps of one submit share: its handler, queue, id and call."""

    handler: EndpointCall
    queue: str
    task_id: str
    module: str
    function: str


class Submitter:
    """``await submitter(handler, call, payload, callback_url=None)`` -> ``(202, body)``
    (a future, no coroutine: see :meth:`__call__`).

    One per API process (built after the fork, on the IOLoop); it also reads
    task states for ``GET /v1/tasks/<id>`` (:meth:`task_meta`).
    """

    def __init__(self, settings: Settings, app: Celery) -> None:
        self.settings = settings
        self.app = app
        # Celery types app.backend as any Backend; ours is the Redis one of CEREBRO_RESULT_BACKEND
        self.backend: RedisBackend = app.backend  # type: ignore[assignment]
        self.names = Names.from_settings(settings)
        # a task's key in the result backend is this prefix and its id (get_key_for_task's)
        sample: str | bytes = self.backend.get_key_for_task("0")  # bytes, for Redis
        self._key_prefix = (sample if isinstance(sample, bytes) else sample.encode())[:-1]
        self.urls = CallbackURLs.from_settings(settings)
        self.redis = RedisPipe(settings.result_backend.get_secret_value(),
                               connect_timeout=settings.broker_timeout,
                               timeout=max(2.0, settings.broker_timeout))
        self.publisher = TaskPublisher(settings.broker_url.get_secret_value(),
                                       app.amqp.queues.__getitem__,
                                       confirm=settings.publish_confirm,
                                       timeout=settings.broker_timeout,
                                       on_refused=self._misconfigured)
        self.origin = origin_nodename()
        self._redis_down = True  # unproven: check Redis before publishing until it answers
        self._redis_outage_logged = False
        self._redis_retry_at = 0.0
        self._queues: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._declaring: set[asyncio.Future[bool]] = set()  # kept until done (asyncio: weak)
        try:
            self.publisher.start()  # connect now, before the first request
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            pass  # no running loop yet: the first request starts it

    @classmethod
    def from_settings(cls, settings: Settings) -> Submitter:
        """A submitter with its own Celery app (the worker's configuration, no tasks).

        Logs in to RabbitMQ and Redis once first: raises :class:`ConfigurationError`
        (naming ``CEREBRO_BROKER_URL`` or ``CEREBRO_RESULT_BACKEND``) when either
        refuses its URL; one that cannot be reached now is retried as before.
        """
        check_broker(settings.broker_url.get_secret_value(), settings.broker_timeout)
        check_redis(settings.result_backend.get_secret_value(), settings.broker_timeout)
        return cls(settings, make_app(settings, schedules=False))

    def modules_changed(self, added: Iterable[str], removed: Iterable[str]) -> None:
        """Module folders were added or removed (thread-safe: the core's reloader calls it):
        declare the new modules' queues now, forget the removed ones'."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._apply_modules, list(added), list(removed))

    def _apply_modules(self, added: list[str], removed: list[str]) -> None:
        """:meth:`modules_changed` on the IOLoop."""
        for module in removed:
            self.publisher.forget(self._queues.pop(module, self.names.task_queue(module)))
        for module in added:
            queue = self._queues[module] = self.names.task_queue(module)
            declaring = asyncio.ensure_future(self.publisher.prepare(queue))
            self._declaring.add(declaring)
            declaring.add_done_callback(self._declaring.discard)

    def __call__(self, handler: EndpointCall, call: Call, payload: object,
                 callback_url: object = None) -> asyncio.Future[tuple[int, bytes]]:
        """Queue ``call`` for a worker: the future of ``(202, JSON body bytes)``, settled once
        RabbitMQ confirmed the message and Redis answered the marker.

        Raises :class:`InvalidPayload` for a callback URL off the allow-list, and
        :class:`Unavailable` when the broker or the result backend is known to be
        unreachable, at once; the future fails with :class:`Unavailable` when the message is
        not confirmed.
        """
        if callback_url is not None:
            self.urls.check(callback_url)
        module, function = call.endpoint.module, call.endpoint.name
        queue = self._queues.get(module) or self._queues.setdefault(
            module, self.names.task_queue(module))
        task_id = new_task_id()
        submitted_at = time.time()
        meta = {"callback_url": callback_url, "submitted_at": submitted_at,
                "request_id": getattr(handler, "request_id", None)}
        if call.sticky_key is not None:
            meta["sticky_key"] = call.sticky_key
        args_json = jsonio.dumps([module, function, payload, meta])
        headers, body = task_message(task_id, RUN_TASK, args_json,
                                     args_json[:_ARGSREPR_BYTES].decode(errors="ignore"),
                                     self.origin)
        if not self.publisher.usable():  # fail fast, and leave no marker behind
            raise self._broker_down(self.publisher.down_reason)
        task = _Task(handler, queue, task_id, module, function)
        if self._redis_down:
            # Redis failed lately (or never answered yet): make sure it answers before
            # anything is published
            if time.monotonic() < self._redis_retry_at:
                raise self._redis_unavailable()
            return asyncio.ensure_future(self._submit_checked(task, submitted_at, headers, body))
        # The message and the marker (SET NX: it never overwrites a worker's state, whatever
        # the order) travel at once: one wait on the critical path, not two; no coroutine or
        # task while the connection is open and the queue declared. The message goes first:
        # a publish that cannot even start leaves no marker behind.
        confirmed = self.publisher.publish_now(queue, task_id, headers, body)
        marker = self._send_marker(task_id, module, function, submitted_at)
        if confirmed is None:
            confirmed = asyncio.ensure_future(self.publisher.publish(queue, task_id, headers,
                                                                     body))
        # the confirm's loop is this one (get_loop, not get_running_loop: no getpid call)
        accepted: asyncio.Future[tuple[int, bytes]] = confirmed.get_loop().create_future()
        confirmed.add_done_callback(partial(self._confirmed, accepted, task, marker))
        return accepted

    def _confirmed(self, accepted: asyncio.Future[tuple[int, bytes]], task: _Task,
                   marker: asyncio.Future[Any], confirmed: asyncio.Future[None]) -> None:
        """The message is confirmed (or failed): answer once the marker's answer is in too.
        Whatever happens, the marker's outcome is read (a Redis outage is noted), a failed
        publish is mapped (a queue gone is declared again) and ``accepted`` is settled,
        unless its caller gave up on it."""
        try:
            error = None if confirmed.cancelled() else confirmed.exception()
            if error is None and not confirmed.cancelled() and not accepted.done():
                if marker.done():
                    self._answer(accepted, task, marker)
                else:
                    marker.add_done_callback(partial(self._answer, accepted, task))
                return
            outcome = asyncio.ensure_future(self._marker_written(marker))
            outcome.add_done_callback(_retrieve)
            if error is not None:
                error = self.publisher.failure(task.queue, error)
            if not accepted.done():
                accepted.set_exception(error if error is not None and not isinstance(
                    error, BrokerUnavailable) else self._broker_down(error or "cancelled"))
        except Exception as exc:  # noqa: BLE001 - a bug: the call's 500, never left unanswered
            _settle(accepted, exception=exc)

    def _answer(self, accepted: asyncio.Future[tuple[int, bytes]], task: _Task,
                marker: asyncio.Future[Any]) -> None:
        """Settle ``accepted`` with the 202 (the message is confirmed; ``marker`` answered)."""
        try:
            # a marker cancelled (the connection torn down) is a marker not stored
            stored = not marker.cancelled() and self._marker_outcome(marker)
            if not stored:
                # RabbitMQ has the task (it will run), so the answer is still 202; its state
                # shows once Redis is back and the worker reports. Never silently:
                log.error("task %s (%s.%s) accepted without its queued marker: GET "
                          "/v1/tasks/%s answers 404 until a worker reports it", task.task_id,
                          task.module, task.function, task.task_id)
            if not accepted.done():
                accepted.set_result(self._accepted(task))
        except Exception as exc:  # noqa: BLE001 - Redis refused us (503), or a bug (500)
            _settle(accepted, exception=exc)

    async def _submit_checked(self, task: _Task, submitted_at: float,
                              headers: EncodedTable | FieldTable,
                              body: bytes) -> tuple[int, bytes]:
        """The submit while Redis is in doubt: the marker first, then the message."""
        if not await self._mark_queued(task.task_id, task.module, task.function, submitted_at):
            raise self._redis_unavailable()
        try:
            await self.publisher.publish(task.queue, task.task_id, headers, body)
        except BrokerUnavailable as exc:
            raise self._broker_down(exc) from None
        return self._accepted(task)

    @staticmethod
    def _accepted(task: _Task) -> tuple[int, bytes]:
        """The 202 of an accepted task (its ``Location`` header set on the handler)."""
        status_url = f"/v1/tasks/{task.task_id}"
        task.handler.set_header("Location", status_url)
        return 202, jsonio.dumps({"task_id": task.task_id, "status": "queued",
                                  "module": task.module, "function": task.function,
                                  "status_url": status_url})

    @staticmethod
    def _redis_unavailable() -> Unavailable:
        """The 503 while the result backend (Redis) is unreachable."""
        return Unavailable("the result backend (Redis) is unreachable: async calls are "
                           "unavailable, retry later")

    async def _mark_queued(self, task_id: str, module: str, function: str,
                           submitted_at: float) -> bool:
        """One ``SET NX`` of a PENDING state naming the call; False when Redis failed (logged).

        The worker's states overwrite it; with NX it can never overwrite theirs.
        """
        return await self._marker_written(self._send_marker(task_id, module, function,
                                                            submitted_at))

    def _send_marker(self, task_id: str, module: str, function: str,
                     submitted_at: float) -> asyncio.Future[Any]:
        """Send the marker's ``SET NX`` now; the future of Redis's answer."""
        marker: dict[str, object] = {"status": states.PENDING, "task_id": task_id,
                                     "traceback": None, "children": [], "date_done": None,
                                     "result": {"module": module, "function": function,
                                                "submitted_at": submitted_at}}
        # the result backend's JSON (result_serializer "json"), encoded by orjson: what
        # Celery's encode writes, at a fraction of its cost on this hot path
        return self.redis.send("SET", self._key_prefix + task_id.encode(),
                               jsonio.dumps(marker), "EX", self.settings.result_expires, "NX")

    async def _marker_written(self, answer: asyncio.Future[Any]) -> bool:
        """True once Redis stored the marker; False when it failed (logged, and async calls
        answer 503 for :data:`REDIS_RETRY_SECONDS`)."""
        try:
            await answer
        except Exception:  # noqa: BLE001 - read below (a cancellation still propagates)
            pass
        return self._marker_outcome(answer)

    def _marker_outcome(self, answer: asyncio.Future[Any]) -> bool:
        """:meth:`_marker_written` for an answer already in (the usual case by the time
        RabbitMQ confirmed: no coroutine for it)."""
        exc = answer.exception()
        if isinstance(exc, RedisRefused):
            self._redis_refused(exc)
        if isinstance(exc, (RedisError, OSError)):
            if not self._redis_outage_logged:
                self._redis_outage_logged = True
                log.error("result backend (Redis) unreachable, async calls answer 503: %s: %s",
                          type(exc).__name__, exc, exc_info=exc)
            self._redis_down = True
            self._redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
            return False
        if exc is not None:
            raise exc
        if self._redis_outage_logged:
            log.warning("result backend (Redis) reachable again")
            self._redis_outage_logged = False
        self._redis_down = False
        return True

    def _redis_refused(self, exc: RedisRefused) -> NoReturn:
        """Redis refused the URL's password or database: stop (see :meth:`_misconfigured`)."""
        error = redis_refused(str(exc), self.settings.result_backend.get_secret_value())
        self._misconfigured(error)
        raise Unavailable("the result backend (Redis) refused this server's configuration")

    def _misconfigured(self, error: ConfigurationError) -> None:
        """RabbitMQ or Redis refused this server's configuration after it started serving:
        retrying cannot fix it, so the process stops with exit 2 (as a refusal at start-up
        does), loudly, rather than answer 503 to every async call forever. The calls in
        flight get :data:`EXIT_GRACE_SECONDS` to finish (async ones answer 503 meanwhile)."""
        if self._stopping:
            return
        self._stopping = True
        log.critical("stopping the API process in %gs (exit 2): %s", EXIT_GRACE_SECONDS, error)
        loop = self._loop or asyncio.get_running_loop()
        loop.call_later(EXIT_GRACE_SECONDS, _exit_misconfigured)

    def _broker_down(self, reason: object) -> Unavailable:
        """The 503 for an unreachable or refusing RabbitMQ (the publisher logged the outage)."""
        log.debug("async call refused: RabbitMQ unavailable: %s", reason)
        return Unavailable("the task queue (RabbitMQ) is unreachable: async calls are "
                           "unavailable, retry later")

    async def task_meta(self, task_id: str) -> dict[str, Any]:
        """The result-backend state of ``task_id`` (Celery's meta dict; PENDING when unknown)."""
        try:
            raw = await self.redis.execute("GET", self._key_prefix + task_id.encode())
        except RedisRefused as exc:
            self._redis_refused(exc)
        if not isinstance(raw, bytes) or not raw:  # nil (GET answers bytes or nil)
            return {"status": states.PENDING, "result": None}
        return self.backend.decode_result(raw)

    async def close(self) -> None:
        """Close the AMQP connection and the Redis connection."""
        await self.publisher.close()
        self.redis.close()


def new_task_id() -> str:
    """A random (version 4) UUID in its usual text form, as ``str(uuid.uuid4())`` gives,
    without building a :class:`uuid.UUID` on the way."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _settle(future: asyncio.Future[Any], *, exception: BaseException) -> None:
    """Fail ``future`` with ``exception``, unless it is settled already (or given up)."""
    if not future.done():
        future.set_exception(exception)


def _retrieve(future: asyncio.Future[bool]) -> None:
    """Consume a background marker's outcome (it logs its own failure)."""
    if not future.cancelled():
        future.exception()


def _exit_misconfigured() -> NoReturn:
    """Leave the IOLoop and the process with exit code 2 (``SystemExit`` is the one
    exception asyncio lets out of a running loop)."""
    raise SystemExit(2)
